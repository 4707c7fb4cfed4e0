import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { EXT, FIXTURES, openNamespace, type Namespace } from "../helpers/namespace.js";
import { OFFLINE_NIX_CONFIG } from "../helpers/nix-env.js";
import { ensureBuilt } from "../helpers/build.js";

// A normal user changes the system through real sudo (Debian's, set-user-ID root), asked once
// (docs/elevation.md). The users, their passwords, the sudoers rule and root's nix.conf live in this
// namespace's own copy of /etc, bound over /etc: the host's /etc is never touched. Every sudo asks
// (timestamp_timeout=0), through an askpass helper that counts how often it was asked; the user runs
// without a terminal (setsid), as from a launcher.

const ADMIN = 4301; // in the group sudo
const PLAIN = 4302; // in no admin group
const PASSWORD = "ext-test-password";

let ns: Namespace;
beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
  const setup = ns.run(["sh", "-euc", `
    cp -a /etc /run/ext-etc
    hash=$(openssl passwd -6 -salt extsalt '${PASSWORD}')
    for u in extadmin:${ADMIN} extuser:${PLAIN}; do
      name=\${u%:*}; id=\${u#*:}
      echo "$name:x:$id:$id::/run/home/$name:/bin/sh" >> /run/ext-etc/passwd
      echo "$name:$hash:19000:0:99999:7:::" >> /run/ext-etc/shadow
      echo "$name:x:$id:" >> /run/ext-etc/group
      mkdir -p /run/home/$name && chown $id:$id /run/home/$name
    done
    sed -i -E 's/^(sudo:x:27:)(.*)$/\\1\\2,extadmin/; s/^(sudo:x:27:),/\\1/' /run/ext-etc/group
    printf 'Defaults lecture=never\\nDefaults timestamp_timeout=0\\n' > /run/ext-etc/sudoers.d/ext-test
    chmod 0440 /run/ext-etc/sudoers.d/ext-test
    mkdir -p /run/ext-etc/nix && printf '%s\\n' "$NIX_SETTINGS" >> /run/ext-etc/nix/nix.conf
    printf '#!/bin/sh\\necho "$*" >> /run/ext-asked\\necho '"'${PASSWORD}'"'\\n' > /run/ext-askpass
    chmod 755 /run/ext-askpass && : > /run/ext-asked && chmod 666 /run/ext-asked
    mount --bind /run/ext-etc /etc
  `], { env: { ...process.env as Record<string, string>, NIX_SETTINGS: OFFLINE_NIX_CONFIG } });
  expect(setup.status, setup.stderr).toBe(0);
});
afterAll(() => ns?.close());

/** ext as a user: no terminal (its own session), a plain environment as a desktop session has. */
function asUser(uid: number, args: string[], env: Record<string, string> = {}) {
  const name = uid === ADMIN ? "extadmin" : "extuser";
  return ns.run(["setsid", "--wait", "setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--init-groups",
    "env", "-i", `HOME=/run/home/${name}`, `USER=${name}`, "PATH=/usr/bin:/bin", "NO_COLOR=1", "SUDO_ASKPASS=/run/ext-askpass",
    `EXT_SOURCE=${FIXTURES}`, `NIX_CONFIG=${OFFLINE_NIX_CONFIG}`, "LD_PRELOAD=", ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    "node", EXT, ...args]);
}

const asked = () => (ns.read("/run/ext-asked") ?? "").split("\n").filter((l) => l.length > 0).length;

describe("a user who can elevate (the group sudo, real sudo)", () => {
  it("ext add jq asks once, says why, and the root part installs it", () => {
    const before = asked();
    const r = asUser(ADMIN, ["add", "jq"]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(asked() - before).toBe(1);
    expect(r.stderr).toMatch(/^ext: installing jq needs root: asking through sudo \(you are in the group sudo\)$/m);
    expect(r.stdout).toMatch(/generation 1 is active/);
    expect(ns.run(["/usr/bin/jq", "--version"]).stdout).toMatch(/jq-1\.6/);
    // The root part ran with the source made an option and without the hidden options in the record.
    const record = JSON.parse(ns.read("/var/lib/ext/generations/1.json") ?? "{}") as { command?: string };
    expect(record.command).toBe(`ext --source ${FIXTURES} --name ext --compression lz4 add jq`);
  });

  it("read-only commands ask nothing", () => {
    const before = asked();
    for (const args of [["list"], ["status"], ["generations"], ["apply", "--dry-run", "/nonexistent/tools.json"]]) {
      const r = asUser(ADMIN, args);
      expect(r.stderr, args.join(" ")).not.toMatch(/needs root/);
    }
    expect(asUser(ADMIN, ["list"]).stdout).toMatch(/^jq\s+1\.6/m);
    // doctor says how ext would ask, without asking.
    const doctor = JSON.parse(asUser(ADMIN, ["doctor", "--json"]).stdout) as { findings: { check: string; message: string }[] };
    expect(doctor.findings.find((f) => f.check === "privileges")?.message).toMatch(/setup ask for root once, through sudo \(you are in the group sudo\)/);
    expect(asked() - before).toBe(0);
  });

  it("ext remove jq, ext rollback and ext gc each ask once", () => {
    for (const [args, why] of [[["remove", "jq"], "removing jq"], [["rollback"], "switching to the previous generation"], [["gc"], "deleting unused images"]] as const) {
      const before = asked();
      const r = asUser(ADMIN, [...args]);
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toContain(`ext: ${why} needs root: asking through sudo`);
      expect(asked() - before).toBe(1);
    }
    // rollback went back to generation 1 (jq), so jq runs again.
    expect(ns.run(["/usr/bin/jq", "--version"]).stdout).toMatch(/jq-1\.6/);
  });

  it("a mistake found before asking costs no password: a bad package name", () => {
    const before = asked();
    const r = asUser(ADMIN, ["add", "../jq"]);
    expect(r.status).toBe(1);
    expect(asked() - before).toBe(0);
  });

  it("a wrong password changes nothing", () => {
    const before = ns.read("/var/lib/ext/current.json");
    const r = ns.run(["sh", "-c", "cp /run/ext-askpass /run/ext-askpass.good && sed -i 's/ext-test-password/wrong/' /run/ext-askpass"]);
    expect(r.status).toBe(0);
    try {
      const add = asUser(ADMIN, ["add", "greet"]);
      expect(add.status).not.toBe(0);
      expect(add.stderr).toMatch(/incorrect password/);
    } finally {
      ns.run(["mv", "/run/ext-askpass.good", "/run/ext-askpass"]);
    }
    expect(ns.read("/var/lib/ext/current.json")).toBe(before);
  });
});

describe("a user's tools.json, applied through sudo", () => {
  it("ext apply asks once; the lock it writes and the edits of ext add stay the user's files", () => {
    const dir = "/run/home/extadmin/dots";
    const made = ns.run(["setpriv", `--reuid=${ADMIN}`, `--regid=${ADMIN}`, "--init-groups", "sh", "-c",
      `mkdir -p ${dir} && printf '%s\\n' '${JSON.stringify({ version: 1, source: FIXTURES, packages: { jq: {} } })}' > ${dir}/tools.json`]);
    expect(made.status, made.stderr).toBe(0);
    const before = asked();
    const apply = asUser(ADMIN, ["apply", `${dir}/tools.json`]);
    expect(apply.status, apply.stderr).toBe(0);
    expect(asked() - before).toBe(1);
    const owners = () => ns.run(["sh", "-c", `stat -c '%n %u:%g %a' ${dir}/* && find ${dir} -user 0 -o -group 0`]).stdout.trim().split("\n");
    expect(owners()).toEqual([`${dir}/tools.json ${ADMIN}:${ADMIN} 644`, `${dir}/tools.lock.json ${ADMIN}:${ADMIN} 644`]);
    // The tracked file is edited by the root part of ext add: still the user's, nothing left beside it.
    const add = asUser(ADMIN, ["add", "greet"]);
    expect(add.status, add.stderr).toBe(0);
    expect(ns.read(`${dir}/tools.json`)).toMatch(/"greet"/);
    expect(owners()).toEqual([`${dir}/tools.json ${ADMIN}:${ADMIN} 644`, `${dir}/tools.lock.json ${ADMIN}:${ADMIN} 644`]);
  });
});

describe("in a terminal (tmux), as a person types it", () => {
  it("ext add hello: sudo asks once on the terminal, after ext said why; the password typed there", async () => {
    const sock = "/run/home/extadmin/tmux.sock";
    const user = ["setpriv", `--reuid=${ADMIN}`, `--regid=${ADMIN}`, "--init-groups", "env", "-i", "HOME=/run/home/extadmin", "USER=extadmin", "PATH=/usr/bin:/bin", "TERM=xterm"];
    const tmux = (...args: string[]) => ns.run([...user, "tmux", "-S", sock, ...args]);
    const screen = () => tmux("capture-pane", "-p", "-J", "-S", "-200").stdout;
    const waitFor = async (what: RegExp) => {
      for (let i = 0; i < 600 && !what.test(screen()); i++) await new Promise((r) => setTimeout(r, 100));
      expect(screen()).toMatch(what);
    };
    const command = [`NO_COLOR=1 EXT_SOURCE=${FIXTURES} NIX_CONFIG='${OFFLINE_NIX_CONFIG}'`, "node", EXT, "add", "hello; echo EXIT=$?; sleep 600"].join(" ");
    const started = tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "200", "-y", "50", "sh", "-c", command);
    expect(started.status, started.stderr).toBe(0);
    try {
      await waitFor(/\[sudo\] password for extadmin: ?$/m);
      expect(screen()).toMatch(/^ext: installing hello needs root: asking through sudo \(you are in the group sudo\)$/m);
      expect(tmux("send-keys", "-t", "t", "-l", PASSWORD).status).toBe(0);
      tmux("send-keys", "-t", "t", "Enter");
      await waitFor(/^EXIT=\d+$/m);
      const out = screen();
      expect(out).toMatch(/^EXIT=0$/m);
      expect(out.match(/password for extadmin/g)).toHaveLength(1);
      expect(out).not.toContain(PASSWORD); // not echoed
      expect(out).toMatch(/generation \d+ is active \(\+hello/);
    } finally {
      tmux("kill-server");
    }
    expect(ns.run(["/usr/bin/hello"]).stdout).toMatch(/Hello, world!/);
  });
});

describe("a user with no way to elevate", () => {
  it("ext add jq: exit 4 with the hint, nobody asked", () => {
    const before = asked();
    const r = asUser(PLAIN, ["add", "jq"]);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/^ext: changing the active extensions needs root$/m);
    expect(r.stderr).toMatch(/none of the groups sudo, wheel, admin/);
    expect(r.stderr).toMatch(/^hint: run it as root: sudo ext add jq/m);
    expect(asked() - before).toBe(0);
  });

  it("ext list works and asks nothing", () => {
    const before = asked();
    const r = asUser(PLAIN, ["list"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^jq\s+1\.6/m);
    expect(r.stderr).toBe("");
    const doctor = JSON.parse(asUser(PLAIN, ["doctor", "--json"]).stdout) as { findings: { check: string; message: string }[] };
    expect(doctor.findings.find((f) => f.check === "privileges")?.message).toMatch(/need root, and there is no way to ask for it \(you are in none of the groups/);
    expect(asked() - before).toBe(0);
  });
});
