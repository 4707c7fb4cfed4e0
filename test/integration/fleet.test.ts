import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { extEnv, openNamespace, EXT, REPO, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { machine, must, Publisher, sh, sha256 } from "../helpers/fleet.js";
import { ensureBuilt } from "../helpers/build.js";
import { expectValid } from "../unit/cli/schemas.js";

// Issue 18, end to end with real tools: `ext publish` (real Nix, mkfs.erofs, gpg) into a directory
// that Python's http.server serves on loopback; a client namespace subscribes and `ext pull` makes
// each published version a generation — through systemd-sysupdate where the host has it (the trixie
// and sid trees), through ext's own gpgv + sha256 pull where it has none (Debian 12). Then the
// failure stories: server down, wrong signature, tampered image, tampered SHA256SUMS, truncated file,
// disk full — each refused with its message, and nothing reaches /var/lib/extensions.

const SYSUPDATE = existsSync("/usr/lib/systemd/systemd-sysupdate");
const VIA = SYSUPDATE ? "sysupdate" : "ext";

let dir: string;
let srv: string;
let gnupg: string;
let pub: Publisher;
let base: string;
let ns: Namespace;
let mx: ReturnType<typeof machine>;
let fixtures: string;
let cutBase: string;
let switchBase: string;

const gpg = (args: string[]) => pub.gpg(args);
/** `ext` on the publishing side: no namespace, no root needed (CI). */
const hostExt = (args: string[]) => pub.ext(args);
const toolsJson = (packages: string[]) => pub.toolsJson(packages);

/** Publishes `packages` as VERSION into srv/CHANNEL, signed by KEY. */
function publish(channel: string, version: string, packages: string[], key = "fleet@example.org"): RunOutput {
  return must(hostExt(["publish", pub.manifest(`${channel}-${version}`, packages), version, "--output", join(srv, channel), "--sign-key", key]), `publish ${channel} ${version}`);
}

const ok = (args: string[]): RunOutput => mx.ok(args);
const json = <T>(args: string[]): T => mx.json<T>(args);

function subscribe(channel: string, opts: { key?: string; base?: string } = {}): void {
  expectValid("subscribe", json(["subscribe", `${opts.base ?? base}/${channel}`, "--key", opts.key ?? join(dir, "fleet.asc")]));
}

/** What a machine's administrator could see change. */
const snapshot = () => mx.snapshot();

/** One byte near the end of the file changed: its sha256 no longer matches the signed list. */
function flipByte(file: string): void {
  const bytes = readFileSync(file);
  bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
  writeFileSync(file, bytes);
}

/** SHA256SUMS in D signed again by KEY, with gpg's clock DAYS away from now. */
function resign(d: string, key: string, days: number): void {
  const at = Math.floor(Date.now() / 1000) + days * 86400;
  gpg(["--yes", "--faked-system-time", `${at}!`, "--local-user", key, "--detach-sign", "--output", join(d, "SHA256SUMS.gpg"), join(d, "SHA256SUMS")]);
}

/** A loopback server like http.server, except that where a directory holds a file CUT it sends a
 *  .raw file's headers (Content-Length: all of it) and half its bytes, then closes the connection. */
const CUT_SERVER = `
import http.server, os, socket, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        path = self.translate_path(self.path)
        if path.endswith(".raw") and os.path.exists(os.path.join(os.path.dirname(path), "CUT")):
            data = open(path, "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        return super().do_GET()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: H(*a, directory=sys.argv[1], **k))
print("port", server.server_address[1], flush=True)
server.serve_forever()
`;

/** A loopback server like http.server, except that in a directory holding SWITCH it serves
 *  SHA256SUMS and SHA256SUMS.gpg from FILE.first on the first request for each and from FILE.then
 *  after it: a server that shows one client's check one list and its download another. */
const SWITCH_SERVER = `
import http.server, os, sys
seen = set()
class H(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, p):
        path = super().translate_path(p)
        name = os.path.basename(path)
        if name in ("SHA256SUMS", "SHA256SUMS.gpg") and os.path.exists(os.path.join(os.path.dirname(path), "SWITCH")):
            which = "then" if path in seen else "first"
            seen.add(path)
            return path + "." + which
        return path
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: H(*a, directory=sys.argv[1], **k))
print("port", server.server_address[1], flush=True)
server.serve_forever()
`;

beforeAll(async () => {
  ensureBuilt();
  pub = new Publisher("/tmp/ext-fleet-");
  ({ dir, srv, gnupg, fixtures } = pub);
  gpg(["--passphrase", "", "--quick-gen-key", "intruder <intruder@example.org>", "ed25519", "sign", "never"]);
  // Two keys whose dates are off: one that expired (made two years ago, valid one year), one made
  // 400 days from now. gpg signs with its clock set (--faked-system-time).
  const ago = Math.floor(Date.now() / 1000) - 730 * 86400;
  gpg(["--faked-system-time", `${ago}!`, "--passphrase", "", "--quick-gen-key", "old <old@example.org>", "ed25519", "sign", "1y"]);
  gpg(["--faked-system-time", `${Math.floor(Date.now() / 1000) + 400 * 86400}!`, "--passphrase", "", "--quick-gen-key", "later <later@example.org>", "ed25519", "sign", "never"]);
  writeFileSync(join(dir, "old.asc"), gpg(["--armor", "--export", "old@example.org"]).stdout);
  // A key whose primary never expires but whose signing subkey did: both made two years ago, the
  // subkey valid for one year (the primary certifies only).
  gpg(["--faked-system-time", `${ago}!`, "--passphrase", "", "--quick-gen-key", "rotated <rotated@example.org>", "ed25519", "cert", "never"]);
  const rotated = gpg(["--with-colons", "--list-keys", "rotated@example.org"]).stdout.split("\n").find((l) => l.startsWith("fpr:"))!.split(":")[9]!;
  gpg(["--faked-system-time", `${ago}!`, "--passphrase", "", "--quick-add-key", rotated, "ed25519", "sign", "1y"]);
  writeFileSync(join(dir, "rotated.asc"), gpg(["--armor", "--export", "rotated@example.org"]).stdout);
  writeFileSync(join(dir, "later.asc"), gpg(["--armor", "--export", "later@example.org"]).stdout);
  // A key with a signing subkey that expired and one that is valid (a rotation done right): the
  // switching server's two lists are signed one by each.
  gpg(["--faked-system-time", `${ago}!`, "--passphrase", "", "--quick-gen-key", "switch <switch@example.org>", "ed25519", "cert", "never"]);
  const switching = gpg(["--with-colons", "--list-keys", "switch@example.org"]).stdout.split("\n").find((l) => l.startsWith("fpr:"))!.split(":")[9]!;
  gpg(["--faked-system-time", `${ago}!`, "--passphrase", "", "--quick-add-key", switching, "ed25519", "sign", "1y"]);
  gpg(["--passphrase", "", "--quick-add-key", switching, "ed25519", "sign", "never"]);
  writeFileSync(join(dir, "switch.asc"), gpg(["--armor", "--export", "switch@example.org"]).stdout);
  // Loopback HTTP from Debian's python3; port 0 lets the kernel choose, -u prints the line at once.
  base = await pub.serve();
  writeFileSync(join(dir, "cut-server.py"), CUT_SERVER);
  cutBase = await pub.serve(join(dir, "cut-server.py"));
  writeFileSync(join(dir, "switch-server.py"), SWITCH_SERVER);
  switchBase = await pub.serve(join(dir, "switch-server.py"));
  ns = openNamespace();
  mx = machine(ns);
  // systemd-pull's keyring is /etc/systemd/import-pubring.gpg: this namespace's own.
  must(ns.run(["mount", "-t", "tmpfs", "tmpfs", "/etc/systemd"]), "tmpfs over /etc/systemd");
}, 120_000);

afterAll(() => {
  ns?.close();
  pub?.close();
});

describe("ext publish", () => {
  it("writes NAME_VERSION.raw, SHA256SUMS and a signature; the same manifest and lock give the same bytes, without root", () => {
    // The lock: `ext apply` writes it beside the tools.json (in a namespace of its own).
    const lockDir = join(dir, "locked");
    mkdirSync(lockDir);
    writeFileSync(join(lockDir, "tools.json"), toolsJson(["hello"]));
    const scratch = openNamespace();
    try {
      must(scratch.ext(["apply", join(lockDir, "tools.json")]), "apply");
    } finally {
      scratch.close();
    }
    expect(existsSync(join(lockDir, "tools.lock.json"))).toBe(true);
    // As nobody, twice: publishing needs no root and no state. Its private Nix store must not be below
    // a world-writable directory (/tmp), so its home is in a namespace's /var/lib (a tmpfs).
    const builder = openNamespace();
    let a: { doc: { file: string; sha256: string; signed: boolean }; out: string } | undefined;
    let b: typeof a;
    try {
      must(builder.run(["sh", "-c", "mkdir -p /var/lib/nobody /var/lib/out-a /var/lib/out-b && chown 65534:65534 /var/lib/nobody /var/lib/out-a /var/lib/out-b"]), "homes");
      [a, b] = ["a", "b"].map((d) => {
        const out = `/var/lib/out-${d}`;
        const r = builder.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/var/lib/nobody", "node", EXT, "publish", join(lockDir, "tools.json"), "7", "--output", out, "--json"], { env: extEnv() });
        must(r, "publish as nobody");
        // The lock pins every package: nothing is resolved anew.
        expect(r.stderr).not.toMatch(/does not pin/);
        const doc = JSON.parse(r.stdout) as { file: string; sha256: string; signed: boolean };
        expectValid("publish", doc);
        return { doc, out: `/proc/${builder.pid}/root${out}` };
      });
      expect(a!.doc.file).toBe("/var/lib/out-a/ext_7.raw");
      expect(a!.doc.sha256).toBe(b!.doc.sha256);
      expect(sha256(join(a!.out, "ext_7.raw"))).toBe(sha256(join(b!.out, "ext_7.raw")));
      expect(readFileSync(join(a!.out, "SHA256SUMS"), "utf8")).toBe(`${a!.doc.sha256}  ext_7.raw\n`);
      expect(a!.doc.signed).toBe(false);
      expect(existsSync(join(a!.out, "SHA256SUMS.gpg"))).toBe(false);
    } finally {
      builder.close();
    }
  }, 600_000);

  it("signs SHA256SUMS with the given key (gpgv verifies it), and refuses to publish other bytes under a published version", () => {
    const r = publish("main", "1", ["hello"]);
    expect(r.stdout).toMatch(/published: .*ext_1\.raw/);
    const keyring = join(dir, "fleet.gpg");
    must(sh(["gpg", "--batch", "--dearmor", "--output", keyring, join(dir, "fleet.asc")], { GNUPGHOME: gnupg }), "dearmor");
    must(sh(["gpgv", "--keyring", keyring, join(srv, "main/SHA256SUMS.gpg"), join(srv, "main/SHA256SUMS")], { GNUPGHOME: gnupg }), "gpgv");
    // The same version again with other packages: machines that have it would never see the change.
    writeFileSync(join(dir, "other.json"), toolsJson(["jq"]));
    const again = hostExt(["publish", join(dir, "other.json"), "1", "--output", join(srv, "main"), "--sign-key", "fleet@example.org"]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/version 1 is already published in .*ext_1\.raw, with other bytes/);
    expect(again.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("ext subscribe and ext pull", () => {
  it(`installs the first version as a generation whose tools run from /usr/bin (via ${VIA})`, () => {
    subscribe("main");
    expect(ns.read("/var/lib/ext/sysupdate.d/ext-ext.transfer")).toContain(`Path=${base}/main`);
    expect(ns.read("/etc/systemd/system/ext-pull.timer")).toContain("OnCalendar=daily");
    expect(ns.run(["readlink", "/etc/systemd/system/timers.target.wants/ext-pull.timer"]).stdout.trim()).toBe("/etc/systemd/system/ext-pull.timer");
    const before = json<{ subscription: { lastCheck: unknown; installedVersion: unknown } }>(["status"]).subscription;
    expect(before).toMatchObject({ lastCheck: null, installedVersion: null });

    const r = ok(["pull"]);
    expect(r.stdout).toMatch(/generation 1 is active \(\+hello 2\.10\)/);
    expectValid("status", json(["status"]));
    if (!SYSUPDATE) expect(r.stderr).toMatch(/systemd-sysupdate is not on this host/);
    // From the merged /usr, with /nix hidden: the relocated closure alone.
    expect(ns.run(["/usr/bin/hello"], { hideNix: true }).stdout).toBe("Hello, world!\n");
    const s = json<{ generation: number; subscription: { installedVersion: string; lastCheck: { result: string; via: string; newest: string; generation: number } } }>(["status"]);
    expect(s.generation).toBe(1);
    expect(s.subscription.installedVersion).toBe("1");
    expect(s.subscription.lastCheck).toMatchObject({ result: "installed", via: VIA, newest: "1", generation: 1 });
    expect(ns.run(["ls", "/var/lib/ext/incoming"]).stdout).toBe("ext_1.raw\n");
  });

  it("a check with nothing new changes nothing", () => {
    const before = snapshot();
    const r = ok(["pull"]);
    expect(r.stdout).toMatch(/nothing to do: version 1 was installed as generation 1/);
    const doc = json<{ transaction: unknown; via: string }>(["pull"]);
    expectValid("pull", doc);
    expect(doc).toMatchObject({ transaction: null, via: VIA });
    expect(snapshot()).toEqual(before);
    expect(json<{ subscription: { lastCheck: { result: string } } }>(["status"]).subscription.lastCheck.result).toBe("up-to-date");
  });

  it("a second published version is picked up; rollback returns to the first, and the next check does not undo it", () => {
    publish("main", "2", ["hello", "jq"]);
    const r = ok(["pull"]);
    expect(r.stdout).toMatch(/generation 2 is active \(\+jq 1\.6\)/);
    expect(ns.run(["sh", "-c", "echo '{\"a\":1}' | /usr/bin/jq -c .a"], { hideNix: true }).stdout).toBe("1\n");
    const gens = json<{ id: number; command: string }[]>(["generations"]);
    expect(gens.map((g) => g.id)).toEqual([1, 2]);

    ok(["rollback"]);
    expect(ns.run(["test", "-e", "/usr/bin/jq"]).status).not.toBe(0);
    expect(ns.run(["/usr/bin/hello"], { hideNix: true }).stdout).toBe("Hello, world!\n");
    const again = ok(["pull"]);
    expect(again.stdout).toMatch(/nothing to do: version 2 was installed as generation 2/);
    const s = json<{ generation: number; subscription: { installedVersion: string; newestImported: { version: string; generation: number } } }>(["status"]);
    expect(s.generation).toBe(1);
    expect(s.subscription).toMatchObject({ installedVersion: "1", newestImported: { version: "2", generation: 2 } });
    expect(ok(["status"]).stdout).toMatch(/rollback --to 2' returns to it/);
    ok(["rollback", "--to", "2"]);
  });

  it("an imported version that never reaches a good boot is reverted at boot, and the next check leaves it so", () => {
    ok(["setup", "--boot-tries", "1"]);
    publish("main", "3", ["hello", "jq", "ripgrep"]);
    expect(ok(["pull"]).stdout).toMatch(/generation 3 is active \(\+ripgrep 13\.0\.0\)/);
    const pending = json<{ id: number; boot: unknown }[]>(["generations"]).map((g) => g.boot);
    expect(pending.at(-1)).toEqual({ state: "pending", triesLeft: 1 });
    // Two boots of this namespace's "machine" with no bless between them (the boot units' commands).
    expect(ok(["boot", "select", "--boot-id", "fleet-b1", "--cmdline", ""]).stdout).toMatch(/this boot: generation 3/);
    expect(ok(["boot", "select", "--boot-id", "fleet-b2", "--cmdline", ""]).stdout).toMatch(/generation 3 did not reach a good boot in 1 try: went back to generation 2/);
    const s = json<{ generation: number; subscription: { installedVersion: string; newestImported: { version: string } } }>(["status"]);
    expect(s.generation).toBe(2);
    expect(s.subscription).toMatchObject({ installedVersion: "2", newestImported: { version: "3" } });
    expect(ok(["pull"]).stdout).toMatch(/nothing to do: version 3 was installed as generation 3/);
    expect(json<{ generation: number }>(["status"]).generation).toBe(2);
  });
});

/** What a run that changed nothing must leave as it was, besides what `snapshot` shows: every path
 *  under /var/lib/ext, the merged /usr (a refresh mounts a new overlay: a new mount id) and the
 *  active image's link in /var/lib/extensions (inode and time). */
function untouched(m: Namespace) {
  return {
    files: m.run(["sh", "-c", "find /var/lib/ext /var/lib/extensions | sort"]).stdout,
    usr: m.run(["sh", "-c", "grep ' /usr ' /proc/self/mountinfo"]).stdout,
    link: m.run(["sh", "-c", "stat -c '%n %i %y' /var/lib/extensions/*"]).stdout,
  };
}

/** Runs what ext-upgrade.service runs: its ExecStart= line, word by word, in the namespace (with the
 *  tests' offline Nix settings; a real unit has the system's). Timings: the transaction's steps. */
function runService(m: Namespace, timings: string): RunOutput {
  const unit = m.read("/etc/systemd/system/ext-upgrade.service")!;
  const line = /^ExecStart=(.*)$/m.exec(unit)![1]!;
  expect(line, "plain words: no quoting to undo").not.toMatch(/["'\\]/);
  m.run(["rm", "-f", timings]);
  return m.run(line.split(" "), { env: extEnv({ EXT_TIMINGS: timings }) });
}

/** Files under /var/lib/ext written since MARKER (a file the test touched in /run). */
function writtenSince(m: Namespace, marker: string): string[] {
  return m.run(["find", "/var/lib/ext", "-newer", marker, "-type", "f"]).stdout.split("\n").filter(Boolean).sort();
}

describe("ext setup --auto-upgrade", () => {
  it("writes ext-upgrade.service and .timer from templates/, enables the timer, and systemd-analyze verify accepts them", () => {
    const doc = json<{ autoUpgrade: { action: string; schedule: string; linked: boolean; units: { unit: string; written: boolean }[] } }>(["setup", "--auto-upgrade", "weekly"]);
    expectValid("setup", doc);
    expect(doc.autoUpgrade).toMatchObject({ action: "on", schedule: "weekly", linked: true });
    expect(doc.autoUpgrade.units.map((u) => [u.unit, u.written])).toEqual([["ext-upgrade.service", true], ["ext-upgrade.timer", true]]);
    const timer = ns.read("/etc/systemd/system/ext-upgrade.timer")!;
    expect(timer).toMatch(/^OnCalendar=weekly$/m);
    expect(timer).toMatch(/^RandomizedDelaySec=1h$/m);
    expect(timer).toMatch(/^Persistent=yes$/m);
    expect(timer).toMatch(/^WantedBy=timers\.target$/m);
    expect(ns.read("/etc/systemd/system/ext-upgrade.service")).toMatch(/^Type=oneshot\nExecStart=\S+ \S+ext\.js upgrade --auto$/m);
    expect(ns.run(["readlink", "/etc/systemd/system/timers.target.wants/ext-upgrade.timer"]).stdout.trim()).toBe("/etc/systemd/system/ext-upgrade.timer");
    const verify = ns.run(["systemd-analyze", "verify", "/etc/systemd/system/ext-upgrade.service", "/etc/systemd/system/ext-upgrade.timer"]);
    expect(verify.status, verify.stderr + verify.stdout).toBe(0);
    expect(verify.stderr + verify.stdout).toBe("");
    // Again: nothing to write, already enabled.
    const again = json<{ autoUpgrade: { linked: boolean; units: { written: boolean }[] } }>(["setup", "--auto-upgrade", "weekly"]);
    expect(again.autoUpgrade.linked).toBe(false);
    expect(again.autoUpgrade.units.map((u) => u.written)).toEqual([false, false]);
    const s = json<{ autoUpgrade: unknown }>(["status"]);
    expectValid("status", s);
    expect(s.autoUpgrade).toEqual({ enabled: true, schedule: "weekly", lastRun: null });
    expect(ok(["status"]).stdout).toMatch(/^auto-upgrade: on, weekly \(ext-upgrade\.timer\)\n  last run:   never/m);
    const bad = ns.ext(["setup", "--auto-upgrade", "daily\nExecStart=/bin/sh"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/is not an OnCalendar= schedule ext accepts/);
  });

  it("with a subscription the service runs its check: a new version is installed; a second run with nothing new changes nothing", () => {
    publish("main", "4", ["hello", "jq"]);
    const timings = "/run/ext-auto-timings";
    const first = runService(ns, timings);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^auto-upgrade \(the subscription's check\): upgraded\n/);
    expect(first.stdout).toMatch(/generation 4 is active/);
    const steps = ns.read(timings)!.trim().split("\n").map((l) => (JSON.parse(l) as { phase: string }).phase);
    expect(steps).toEqual(expect.arrayContaining(["import", "activate"]));
    const s = json<{ generation: number; autoUpgrade: { lastRun: { via: string; result: string; generation: number; message: string } } }>(["status"]);
    expect(s.generation).toBe(4);
    expect(s.autoUpgrade.lastRun).toMatchObject({ via: "pull", result: "upgraded", generation: 4, message: "generation 4 is active" });

    const before = { ...snapshot(), ...untouched(ns) };
    ns.run(["touch", "/run/ext-auto-marker"]);
    // mtimes have a granularity: a write in the same tick as the marker would not show.
    spawnSync("sleep", ["0.05"]);
    const second = runService(ns, timings);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^auto-upgrade \(the subscription's check\): up-to-date\nnothing to do: version 4 was installed as generation 4/);
    expect(ns.read(timings), "no transaction step ran").toBeUndefined();
    expect({ ...snapshot(), ...untouched(ns) }).toEqual(before);
    // Only the records of this run (and the lock's holder line) were written.
    expect(writtenSince(ns, "/run/ext-auto-marker")).toEqual(["/var/lib/ext/auto-upgrade.json", "/var/lib/ext/lock", "/var/lib/ext/subscription-status.json"]);
    const doc = json<{ auto: { result: string } }>(["upgrade", "--auto"]);
    expectValid("upgrade", doc);
    expect(doc.auto.result).toBe("up-to-date");
    expect(json<{ autoUpgrade: { lastRun: { result: string; generation: number } } }>(["status"]).autoUpgrade.lastRun).toMatchObject({ result: "up-to-date", generation: 4 });
  });

  it("a failed run is recorded for ext status, and the set stays", () => {
    // The subscription's server gone: the check fails, the timer's run exits 1 with the message.
    const probe = spawnSync("python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"], { encoding: "utf8" });
    ok(["subscribe", `http://127.0.0.1:${probe.stdout.trim()}/gone`, "--key", join(dir, "fleet.asc")]);
    const before = snapshot();
    const r = runService(ns, "/run/ext-auto-timings");
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(snapshot()).toEqual(before);
    const last = json<{ autoUpgrade: { lastRun: { result: string; message: string; generation: number } } }>(["status"]).autoUpgrade.lastRun;
    expect(last).toMatchObject({ result: "failed", generation: 4 });
    expect(last.message).toMatch(SYSUPDATE ? /server cannot be reached/ : /ECONNREFUSED/);
    expect(ok(["status"]).stdout).toMatch(/^  last run:   \S+ failed \(pull\): /m);
    subscribe("main");
  });

  it("without a subscription the service runs ext upgrade: a newer version in the source is installed, then nothing changes", () => {
    // A machine of its own, with a source of its own that the test moves on.
    cpSync(join(REPO, "test/fixtures"), join(dir, "fixtures-auto"), { recursive: true });
    const source = `path:${dir}/fixtures-auto`;
    const m = openNamespace();
    try {
      must(m.run(["mount", "-t", "tmpfs", "tmpfs", "/etc/systemd"]), "tmpfs over /etc/systemd");
      must(m.ext(["add", "hello", "--source", source]), "add hello");
      must(m.ext(["setup", "--auto-upgrade", "daily"]), "setup --auto-upgrade daily");
      const timings = "/run/ext-auto-timings";
      const nothing = runService(m, timings);
      expect(nothing.status, nothing.stderr).toBe(0);
      expect(nothing.stdout).toMatch(/^auto-upgrade \(ext upgrade\): up-to-date\n(.*\n)*everything is up to date/);

      const nixFile = join(dir, "fixtures-auto/packages.nix");
      const original = readFileSync(nixFile, "utf8");
      const newer = original.replace(`pname = "hello";\n    version = "2.10";`, `pname = "hello";\n    version = "2.12";`);
      expect(newer).not.toBe(original);
      writeFileSync(nixFile, newer);
      const up = runService(m, timings);
      expect(up.status, up.stderr).toBe(0);
      expect(up.stdout).toMatch(/^auto-upgrade \(ext upgrade\): upgraded\n(.*\n)*hello 2\.10 → 2\.12\ngeneration 2 is active/);
      expect(JSON.parse(must(m.ext(["status", "--json"]), "status").stdout).autoUpgrade.lastRun).toMatchObject({ via: "upgrade", result: "upgraded", generation: 2 });

      const before = { gens: m.ext(["generations", "--json"]).stdout, ...untouched(m) };
      m.run(["touch", "/run/ext-auto-marker"]);
      spawnSync("sleep", ["0.05"]);
      const again = runService(m, timings);
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/up-to-date\n(.*\n)*everything is up to date/);
      expect(m.read(timings), "no transaction step ran").toBeUndefined();
      expect({ gens: m.ext(["generations", "--json"]).stdout, ...untouched(m) }).toEqual(before);
      expect(writtenSince(m, "/run/ext-auto-marker")).toEqual(["/var/lib/ext/auto-upgrade.json", "/var/lib/ext/lock"]);
    } finally {
      m.close();
    }
  }, 300_000);

  it("--auto-upgrade off removes the units, the link and the record; the boot units stay", () => {
    const doc = json<{ autoUpgrade: { action: string; removed: string[] } }>(["setup", "--auto-upgrade", "off"]);
    expectValid("setup", doc);
    expect(doc.autoUpgrade.removed.sort()).toEqual([
      "/etc/systemd/system/ext-upgrade.service",
      "/etc/systemd/system/ext-upgrade.timer",
      "/etc/systemd/system/timers.target.wants/ext-upgrade.timer",
      "/var/lib/ext/auto-upgrade.json",
    ]);
    expect(ns.run(["sh", "-c", "ls /etc/systemd/system /etc/systemd/system/timers.target.wants"]).stdout).not.toMatch(/ext-upgrade/);
    expect(ns.run(["test", "-e", "/etc/systemd/system/timers.target.wants/ext-pull.timer"]).status).toBe(0);
    expect(ns.run(["test", "-e", "/etc/systemd/system/ext-boot-select.service"]).status).toBe(0);
    expect(json<{ autoUpgrade: unknown }>(["status"]).autoUpgrade).toEqual({ enabled: false, schedule: null, lastRun: null });
    expect(ok(["status"]).stdout).toMatch(/^auto-upgrade: off/m);
    expect(json<{ autoUpgrade: { removed: string[] } }>(["setup", "--auto-upgrade", "off"]).autoUpgrade.removed).toEqual([]);
  });
});

describe("failures: refused, and nothing reaches /var/lib/extensions", () => {
  /** A channel holding version 9 of hello + jq + ripgrep, as published; `damage` then changes it. */
  function channel(name: string, damage: (d: string) => void): void {
    publish(name, "9", ["hello", "jq", "ripgrep"]);
    damage(join(srv, name));
  }

  /** OPTS.clock: a `faketime -f` offset for this machine's clock during the pull (ext and what it runs). */
  function refused(name: string, message: RegExp, opts: { key?: string; base?: string; clock?: string } = {}): RunOutput {
    subscribe(name, opts);
    const before = snapshot();
    const incoming = () => ns.run(["ls", "-a", "/var/lib/ext/incoming"]).stdout;
    const incomingBefore = incoming();
    // Another channel's downloads are gone with the switch: none could pass for one of this one's.
    expect(incomingBefore).not.toMatch(/\.raw/);
    const r = opts.clock === undefined ? ns.ext(["pull"]) : ns.run(["faketime", "-f", opts.clock, "node", EXT, "pull"], { env: extEnv() });
    expect(r.status, r.stderr).not.toBe(0);
    expect(r.status).not.toBe(70);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(snapshot()).toEqual(before);
    // Nothing refused is kept, not even in incoming/. (systemd-sysupdate makes room for the new
    // version before it downloads: with InstancesMax=2 it may delete the oldest download, which was
    // imported into images/ long ago. ext's own pull deletes nothing before a download is verified.)
    expect(incoming()).not.toMatch(/ext_9/);
    if (!SYSUPDATE) expect(incoming()).toBe(incomingBefore);
    const last = json<{ subscription: { lastCheck: { result: string; message: string } } }>(["status"]).subscription.lastCheck;
    expect(last.result).toBe("failed");
    return r;
  }

  it("server down", () => {
    // A port nothing listens on: the server's, after it is gone.
    const probe = spawnSync("python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"], { encoding: "utf8" });
    const port = probe.stdout.trim();
    ok(["subscribe", `http://127.0.0.1:${port}/gone`, "--key", join(dir, "fleet.asc")]);
    const before = snapshot();
    const r = ns.ext(["pull"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(SYSUPDATE ? /systemd-sysupdate refused the update: the server cannot be reached/ : /cannot fetch http:\/\/127\.0\.0\.1:\d+\/gone\/SHA256SUMS: ECONNREFUSED/);
    expect(snapshot()).toEqual(before);
  });

  it("a signature by another key", () => {
    channel("badsig", (d) => gpg(["--yes", "--local-user", "intruder@example.org", "--detach-sign", "--output", join(d, "SHA256SUMS.gpg"), join(d, "SHA256SUMS")]));
    refused("badsig", SYSUPDATE ? /systemd-sysupdate refused the update: the signature of SHA256SUMS does not verify/ : /the signature of .*SHA256SUMS does not verify with the subscription's key: refused/);
  });

  it("a tampered image", () => {
    channel("tampered", (d) => flipByte(join(d, "ext_9.raw")));
    refused("tampered", SYSUPDATE ? /systemd-sysupdate refused the update: the downloaded image does not match its signed SHA256SUMS/ : /ext_9\.raw from .* does not match its signed SHA256SUMS/);
  });

  it("a tampered SHA256SUMS (the image's hash changed to match a changed image)", () => {
    channel("sums", (d) => {
      flipByte(join(d, "ext_9.raw"));
      writeFileSync(join(d, "SHA256SUMS"), `${sha256(join(d, "ext_9.raw"))}  ext_9.raw\n`);
    });
    refused("sums", SYSUPDATE ? /the signature of SHA256SUMS does not verify/ : /the signature of .*SHA256SUMS does not verify/);
  });

  it("a truncated image", () => {
    channel("truncated", (d) => truncateSync(join(d, "ext_9.raw"), 4096));
    refused("truncated", SYSUPDATE ? /systemd-sysupdate refused the update: the downloaded image does not match its signed SHA256SUMS/ : /ext_9\.raw from .* does not match its signed SHA256SUMS \(4096 bytes/);
  });

  it("a full disk", () => {
    publish("full", "9", ["hello", "jq", "ripgrep"]);
    // incoming/ on a file system too small for the image.
    must(ns.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", "/var/lib/ext/incoming"]), "small tmpfs");
    try {
      refused("full", SYSUPDATE ? /systemd-sysupdate refused the update: the download could not be written \(is the disk full\?\)/ : /no space left to download ext_9\.raw/);
    } finally {
      must(ns.run(["umount", "/var/lib/ext/incoming"]), "umount");
    }
  });

  it("a key past its expiry (the signature dated before it): refused before anything is fetched, by both engines", () => {
    // gpgv and systemd-pull's gpg accept this signature (EXPKEYSIG, exit 0): it is ext that refuses.
    channel("expired", (d) => resign(d, "old@example.org", -600));
    const r = refused("expired", /the subscription's key [0-9A-F]{16} expired on \d{4}-\d\d-\d\d \(this machine's clock: \d{4}-\d\d-\d\d\): refused, nothing was fetched/, { key: join(dir, "old.asc") });
    expect(r.stderr).toMatch(/must sign with a key that has not expired/);
    console.log(`expired key (${VIA}): ${r.stderr.trim()}`);
  });

  it("a signing subkey past its expiry, its primary key valid (the signature dated before the expiry): refused, by both engines", () => {
    // checkKeyTimes passes (the primary key is valid); gpgv and systemd-pull accept the signature.
    // ext names the subkey that signed and refuses; through systemd-sysupdate it checks the list
    // itself first, so nothing is downloaded.
    channel("subkey", (d) => resign(d, "rotated@example.org", -600));
    const r = refused("subkey", /SHA256SUMS is signed by the subkey [0-9A-F]{16} of the subscription's key, which expired on \d{4}-\d\d-\d\d \(this machine's clock: \d{4}-\d\d-\d\d\): refused, nothing was installed/, { key: join(dir, "rotated.asc") });
    expect(r.stderr).toMatch(/must sign with a key that has not expired/);
    console.log(`expired subkey (${VIA}): ${r.stderr.trim()}`);
  });

  it("a server that switches lists between the check and the download (to one signed by an expired subkey): refused, by both engines", () => {
    // The first list and signature are the honest ones, by the valid subkey; every later request gets a
    // list naming a tampered image, signed by the expired subkey with a date before its expiry (which
    // gpgv and systemd-pull accept). ext's own pull reads the list once and refuses the image by its
    // sha256; through systemd-sysupdate, ext's check of the first list passes, systemd-pull takes the
    // second, and ext refuses the file it downloaded because the list ext verified does not name it.
    const subkeys = gpg(["--with-colons", "--list-keys", "switch@example.org"]).stdout.split("\n");
    const fprs = subkeys.filter((l) => l.startsWith("fpr:")).map((l) => l.split(":")[9]!);
    const [, expiredSubkey, validSubkey] = fprs;
    channel("switch", (d) => {
      const at = Math.floor(Date.now() / 1000) - 600 * 86400;
      gpg(["--yes", "--local-user", `${validSubkey}!`, "--detach-sign", "--output", join(d, "SHA256SUMS.gpg.first"), join(d, "SHA256SUMS")]);
      cpSync(join(d, "SHA256SUMS"), join(d, "SHA256SUMS.first"));
      flipByte(join(d, "ext_9.raw"));
      writeFileSync(join(d, "SHA256SUMS.then"), `${sha256(join(d, "ext_9.raw"))}  ext_9.raw\n`);
      gpg(["--yes", "--faked-system-time", `${at}!`, "--local-user", `${expiredSubkey}!`, "--detach-sign", "--output", join(d, "SHA256SUMS.gpg.then"), join(d, "SHA256SUMS.then")]);
      writeFileSync(join(d, "SWITCH"), "");
    });
    const r = refused("switch", SYSUPDATE
      ? /ext_9\.raw from .* is not the file of the SHA256SUMS ext verified \(listed [0-9a-f]{16}…, got [0-9a-f]{16}…\): the list changed between ext's check and systemd-sysupdate's download; refused, nothing was installed/
      : /ext_9\.raw from .* does not match its signed SHA256SUMS/, { key: join(dir, "switch.asc"), base: switchBase });
    console.log(`lists switched (${VIA}): ${r.stderr.trim()}`);
  });

  it("a key made after this machine's clock (the clock is behind): refused, and the message says it is the clock", () => {
    // The publisher's key and signature from 400 days ahead: what a machine whose clock is 400 days
    // behind sees. gpgv and gpg say "created … in the future (time warp or clock problem)", exit 2.
    channel("later", (d) => resign(d, "later@example.org", 400));
    const r = refused("later", /the subscription's key [0-9A-F]{16} was created on \d{4}-\d\d-\d\d, after this machine's clock \(\d{4}-\d\d-\d\d\): refused, nothing was fetched/, { key: join(dir, "later.asc") });
    expect(r.stderr).toMatch(/is this machine's clock right/);
    console.log(`key from the future (${VIA}): ${r.stderr.trim()}`);
  });

  it("this machine's own clock wrong (faketime moves it for ext, gpg and gpgv): two years behind or ahead of the key's dates, refused before anything is fetched", () => {
    // The cases above from this machine's side. Behind: the fleet's key (made today, never expires)
    // was created after this clock. Ahead: a key made today that expires in a year has expired by it.
    gpg(["--passphrase", "", "--quick-gen-key", "yearly <yearly@example.org>", "ed25519", "sign", "1y"]);
    writeFileSync(join(dir, "yearly.asc"), gpg(["--armor", "--export", "yearly@example.org"]).stdout);
    channel("clock", () => {});
    const behind = refused("clock", /the subscription's key [0-9A-F]{16} was created on \d{4}-\d\d-\d\d, after this machine's clock \(\d{4}-\d\d-\d\d\): refused, nothing was fetched/, { clock: "-730d" });
    const year = new Date().getUTCFullYear();
    expect(behind.stderr).toContain(`this machine's clock (${year - 2}-`);
    expect(behind.stderr).toMatch(/is this machine's clock right/);
    channel("yearly", (d) => resign(d, "yearly@example.org", 0));
    const ahead = refused("yearly", /the subscription's key [0-9A-F]{16} expired on \d{4}-\d\d-\d\d \(this machine's clock: \d{4}-\d\d-\d\d\): refused, nothing was fetched/, { key: join(dir, "yearly.asc"), clock: "+730d" });
    expect(ahead.stderr).toContain(`this machine's clock: ${year + 2}-`);
    // With the real clock the same subscription installs: it was the clock.
    expect(ok(["pull"]).stdout).toMatch(/generation \d+ is active/);
    console.log(`clock behind (${VIA}): ${behind.stderr.trim()}\nclock ahead (${VIA}): ${ahead.stderr.trim()}`);
  });

  it("a download broken off mid-transfer (Content-Length sent, the connection closed halfway)", () => {
    channel("cut", (d) => writeFileSync(join(d, "CUT"), ""));
    const r = refused("cut", SYSUPDATE ? /systemd-sysupdate refused the update: the download broke off before its end/ : /the download of http:\/\/127\.0\.0\.1:\d+\/cut\/ext_9\.raw broke off after \d+ bytes of the \d+ the server announced/, { base: cutBase });
    expect(r.stderr).toMatch(/nothing was (changed|installed)/);
    console.log(`cut mid-transfer (${VIA}): ${r.stderr.trim()}`);
  });

  it("--via sysupdate where the host has none says so", () => {
    if (SYSUPDATE) {
      subscribe("main");
      expect(ok(["pull", "--via", "ext"]).stdout).toMatch(/nothing to do/);
      return;
    }
    const r = ns.ext(["pull", "--via", "sysupdate"]);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/systemd-sysupdate is not on this host/);
    expect(r.stderr).toMatch(/--via ext/);
  });
});

describe("what a check accepts, and what heals", () => {
  it("after a broken-off download, the next check from a healthy server installs the version", () => {
    rmSync(join(srv, "cut", "CUT"));
    subscribe("cut", { base: cutBase });
    const gens = json<{ id: number }[]>(["generations"]).length;
    const r = ok(["pull"]);
    expect(r.stdout).toMatch(new RegExp(`generation ${gens + 1} is active`));
    expect(json<{ subscription: { installedVersion: string } }>(["status"]).subscription.installedVersion).toBe("9");
  });

  it("a signature dated in the future (the publisher's clock ahead, or this one behind) is accepted, with a warning from ext's own pull", () => {
    // gpgv and gpg report a good signature (VALIDSIG with the future date) and exit 0; versions,
    // not dates, decide what is newer, so refusing would only strand machines with a wrong clock.
    publish("ahead", "10", ["hello", "jq", "ripgrep"]);
    resign(join(srv, "ahead"), "fleet@example.org", 400);
    subscribe("ahead");
    const r = ok(["pull"]);
    expect(r.stdout).toMatch(/generation \d+ is active/);
    console.log(`signature from the future (${VIA}): ${r.stderr.trim()}`);
    if (!SYSUPDATE) expect(r.stderr).toMatch(/SHA256SUMS was signed on \d{4}-\d\d-\d\dT[\d:.]+Z, in the future by this machine's clock/);
    expect(json<{ subscription: { installedVersion: string } }>(["status"]).subscription.installedVersion).toBe("10");
  });
});

describe("ext unsubscribe", () => {
  it("removes the transfer, the key and the timer; the generations stay; ext pull then says there is no subscription", () => {
    const gens = json<{ id: number }[]>(["generations"]).map((g) => g.id);
    const doc = json<{ removed: string[] }>(["unsubscribe"]);
    expectValid("unsubscribe", doc);
    expect(doc.removed).toEqual(expect.arrayContaining(["/var/lib/ext/sysupdate.d/ext-ext.transfer", "/etc/systemd/system/ext-pull.timer", "/var/lib/ext/subscription.json"]));
    expect(ns.run(["test", "-e", "/etc/systemd/system/timers.target.wants/ext-pull.timer"]).status).not.toBe(0);
    expect(json<{ id: number }[]>(["generations"]).map((g) => g.id)).toEqual(gens);
    expect(json<{ subscription: unknown }>(["status"]).subscription).toBeNull();
    const r = ns.ext(["pull"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/this machine has no subscription/);
  });
});

describe("a Nix binary cache (ext publish --cache)", () => {
  it("machines that build locally substitute every path of the published set: with max-jobs = 0 an add succeeds only from the cache", () => {
    const key = join(dir, "cache.sec");
    writeFileSync(key, must(sh(["nix", "--extra-experimental-features", "nix-command", "key", "generate-secret", "--key-name", "fleet-cache-1"]), "nix key").stdout);
    const publicKey = spawnSync("nix", ["--extra-experimental-features", "nix-command", "key", "convert-secret-to-public"], { input: readFileSync(key), encoding: "utf8" }).stdout.trim();
    expect(publicKey).toMatch(/^fleet-cache-1:/);
    const manifest = join(dir, "cached.json");
    writeFileSync(manifest, toolsJson(["hello", "jq"]));
    const cache = `file://${dir}/nix-cache`;
    const doc = JSON.parse(must(hostExt(["publish", manifest, "1", "--output", join(srv, "cached"), "--cache", cache, "--cache-key", key, "--json"]), "publish --cache").stdout) as { cache: { paths: number; signed: boolean } };
    expectValid("publish", doc);
    expect(doc.cache).toMatchObject({ signed: true });
    expect(doc.cache.paths).toBeGreaterThan(2);

    // A machine with a store of its own that holds none of it, and no local builds at all.
    const machine = openNamespace();
    try {
      const noBuilds = (substituters: string) => ({
        NIX_CONFIG: [extEnv()["NIX_CONFIG"], `substituters = ${substituters}`, `trusted-public-keys = ${publicKey}`, "max-jobs = 0"].join("\n"),
      });
      const without = machine.ext(["--store", "/var/lib/machine-store", "add", "hello", "jq", "--source", fixtures], { env: noBuilds("") });
      expect(without.status, "without the cache nothing can be built").toBe(6);
      expect(without.stderr).toMatch(/local builds are disabled|max-jobs|cannot build/i);
      const withCache = machine.ext(["--store", "/var/lib/machine-store", "add", "hello", "jq", "--source", fixtures], { env: noBuilds(cache) });
      must(withCache, "add from the cache");
      expect(machine.run(["sh", "-c", "echo '{\"a\":1}' | /usr/bin/jq -c .a"], { hideNix: true }).stdout).toBe("1\n");
    } finally {
      machine.close();
    }
  }, 600_000);
});
