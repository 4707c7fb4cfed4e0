import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { extOk, EXT, REPO, extEnv, openNamespace, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 12: what broke on today's distributions, checked on every host of the matrix (this file runs
// on Debian 12 and inside the trixie and sid trees: scripts/test-hosts.sh). Defaults only: no
// --compression, no --store; the real CLI in a private namespace.

const HOST = process.env["EXT_TEST_HOST"] ?? "this machine";

let ns: Namespace;
beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
});
afterAll(() => ns?.close());

const ok = (args: string[], env?: Record<string, string>) => extOk(ns, args, env, ` on ${HOST}`);

interface Finding { check: string; status: string; message: string }

describe(`defaults on ${HOST}`, () => {
  it("ext doctor finds no error on a healthy host, and offers compression", () => {
    const doc = JSON.parse(ns.ext(["doctor", "--json"]).stdout) as { findings: Finding[] };
    const errors = doc.findings.filter((f) => f.status === "error");
    expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
    const mkfs = doc.findings.find((f) => f.check === "mkfs.erofs");
    expect(mkfs?.message).toMatch(/compression: lz4hc, lz4/);
  });

  it("ext add with the default compression packs, merges and runs; hello's man output is merged too", () => {
    ok(["add", "jq", "hello"]);
    expect(ns.run(["/usr/bin/jq", "--version"], { hideNix: true }).stdout).toMatch(/jq-1\.6/);
    expect(ns.run(["/usr/bin/hello"], { hideNix: true }).stdout).toMatch(/Hello, world!/);
    // outputsToInstall = out + man: the manual is visible under /usr/share/man.
    expect(ns.run(["test", "-f", "/usr/share/man/man1/hello.1.gz"]).status).toBe(0);
    const list = JSON.parse(ok(["list", "--json"]).stdout) as { name: string; outputs?: string[] }[];
    expect(list.map((p) => p.name).sort()).toEqual(["hello", "jq"]);
    // The image is compressed (the default lz4), not the 'none' fallback.
    const st = JSON.parse(ok(["status", "--json"]).stdout) as { linked: string | null };
    expect(st.linked).not.toBeNull();
    ok(["remove", "jq", "hello"]);
  });

  it("a source that does not exist, or has no flake.nix, says so (not 'could not be evaluated')", () => {
    const missing = ns.ext(["show", "jq", "--source", "path:/nonexistent/ext-src"]);
    expect(missing.status).toBe(6);
    expect(missing.stderr).toMatch(/package source 'path:\/nonexistent\/ext-src' does not exist/);
    const r = ns.run(["mkdir", "-p", "/run/ext-empty-src"]);
    expect(r.status).toBe(0);
    const notFlake = ns.ext(["show", "jq", "--source", "path:/run/ext-empty-src"]);
    expect(notFlake.status).toBe(6);
    expect(notFlake.stderr).toMatch(/is not a flake/);
    expect(notFlake.stderr).not.toMatch(/could not be evaluated/);
  });
});

describe(`the store choice on ${HOST}`, () => {
  it("a private store that only ext build filled does not stick: ext add uses the system store", () => {
    // As after `ext build --store /var/lib/ext/nix …`: the private store exists but no generation uses it.
    expect(ns.run(["mkdir", "-p", "/var/lib/ext/nix/nix/store", "/var/lib/ext/nix/nix/var/nix"]).status).toBe(0);
    const st = JSON.parse(ok(["status", "--json"]).stdout) as { store: { kind: string; reason: string } };
    expect(st.store.kind).toBe("system");
    ok(["add", "jq"]);
    expect(ns.run(["/usr/bin/jq", "--version"], { hideNix: true }).status).toBe(0);
    ok(["remove", "jq"]);
    expect(ns.run(["rm", "-rf", "/var/lib/ext/nix"]).status).toBe(0);
  });

  it("where /nix/store does not exist yet (nix-bin just installed), auto picks the system store and Nix creates it", () => {
    // A fresh, empty, writable /nix for the commands below only (the other tests keep the real one).
    const fresh = (argv: string[]) =>
      ns.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o mode=755 tmpfs /nix && exec "$@"', "sh", ...argv], {
        env: extEnv(),
      });
    const status = fresh(["node", EXT, "status", "--json"]);
    expect(status.status, status.stderr).toBe(0);
    const st = JSON.parse(status.stdout) as { store: { kind: string; reason: string } };
    expect(st.store).toMatchObject({ kind: "system", reason: "Nix can create /nix/store in /nix" });
    const show = fresh(["sh", "-c", `node ${EXT} show hello --json >/dev/null && test -d /nix/store && ls /nix/store | grep -c -- '-hello-2.10'`]);
    expect(show.status, show.stderr).toBe(0);
    expect(Number(show.stdout.trim())).toBeGreaterThan(0);
  });
});

describe(`the demo on ${HOST}`, () => {
  it("npm run demo's script passes where /var/lib/ext/nix already exists (an earlier private store)", () => {
    expect(ns.run(["mkdir", "-p", "/var/lib/ext/nix/nix/store", "/var/lib/ext/nix/nix/var/nix"]).status).toBe(0);
    const env = { ...(process.env as Record<string, string>) };
    delete env["NIX_CONFIG"];
    delete env["EXT_SOURCE"];
    const r = ns.run(["bash", `${REPO}/scripts/demo.sh`], { env });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^merged: +yes$/m);
    expect(r.stdout).toMatch(/^nix store: +system store \/nix\/store/m);
    expect(ns.run(["rm", "-rf", "/var/lib/ext/nix"]).status).toBe(0);
  });
});

describe(`a normal user on ${HOST}`, () => {
  it("ext show and ext build work without root, in the user's own private store", () => {
    // A user in this namespace's copy of /etc/passwd, with a home on a tmpfs over /home.
    const setup = ns.run(["sh", "-c", [
      "cp /etc/passwd /run/ext-passwd && echo 'extuser:x:4242:4242::/home/extuser:/bin/sh' >> /run/ext-passwd",
      "mount --bind /run/ext-passwd /etc/passwd",
      "mkdir -p /home && mount -t tmpfs -o mode=755 tmpfs /home && mkdir /home/extuser && chown 4242:4242 /home/extuser",
    ].join(" && ")]);
    expect(setup.status, setup.stderr).toBe(0);
    const asUser = (args: string[]) => ns.run(["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", "env", "HOME=/home/extuser", "node", EXT, ...args], { env: extEnv() });
    const show = asUser(["show", "jq"]);
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^commands: +\/usr\/bin\/jq$/m);
    const build = asUser(["build", "hello", "-o", "/home/extuser/hello.raw"]);
    expect(build.status, build.stderr).toBe(0);
    expect(ns.run(["test", "-s", "/home/extuser/hello.raw"]).status).toBe(0);
    // No Nix daemon runs on these hosts and /nix is root's: the packages went to the user's own store.
    const status = asUser(["status", "--json"]);
    const store = (JSON.parse(status.stdout) as { store: { kind: string; root: string } }).store;
    expect(store).toMatchObject({ kind: "private", root: "/home/extuser/.cache/ext/nix" });
    expect(ns.run(["test", "-d", "/home/extuser/.cache/ext/nix/nix/store"]).status).toBe(0);
  });
});

