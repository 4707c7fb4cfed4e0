import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, EXT, FIXTURES, REPO, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { OFFLINE_NIX_CONFIG, offlineNixEnv } from "../helpers/nix-env.js";
// @ts-expect-error: a plain .mjs script (also run by hand), without type declarations
import { assemble } from "../fixtures-self/assemble.mjs";
import { ensureBuilt } from "../helpers/build.js";

// Issue 16, item 2: the bootstrap image. `ext build --bootstrap` (on this host, from the
// test/fixtures-self source: the working tree's ext, the host's node and the host's nix-bin relinked
// into the store) makes one .raw. A host view with no /nix (a read-only empty tmpfs), no nix and no
// node gets it by placing the file in /var/lib/extensions and running the real
// `systemd-sysext refresh`; then the image's /usr/bin/ext adds jq with the image's Nix and a private
// store, and keeps ext, nodejs and nix in the new generation.

const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
const NIX_CONFIG = `${OFFLINE_NIX_CONFIG}\nbuild-users-group =`;
const STORE = "/var/lib/ext/nix/nix/store";

let ns: Namespace;
let work: string;
let image: string;
let imageSize = 0;

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "ext-bootstrap-"));
  const source = assemble(join(work, "flake")) as string;
  image = join(work, "ext.raw");
  // Built on the host, as a publisher would: the system store, the host's node running ext.
  const built = spawnSync("node", [EXT, "build", "--bootstrap", "--source", source, "-o", image], { env: { ...process.env, ...offlineNixEnv(), NO_COLOR: "1" }, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`ext build --bootstrap failed (${built.status}):\n${built.stderr}\n${built.stdout}`);
  imageSize = statSync(image).size;
  ns = openNamespace();
  // The host view: no /nix, and /usr without the host's nix-bin (its commands, /usr/lib/nix, any
  // libnix*.so) and node. Not /dev/null bound over the files as in self-host.test.ts: systemd ≥ 254
  // carries mounts below /usr over onto the merged /usr, where the image's /usr/bin/nix is a
  // symlink and the bind fails. Instead /usr is a read-only overlay of itself under a layer of
  // whiteouts (character devices 0:0), which systemd-sysext then takes as the host's /usr.
  const hide = [
    "set -e",
    "mount -t tmpfs -o ro,mode=0755 tmpfs /nix",
    "w=/run/bootstrap-host-view",
    "for f in /usr/bin/node /usr/bin/nodejs /usr/bin/nix /usr/bin/nix-* /usr/lib/nix /usr/libexec/nix /usr/lib/*/libnix*.so*; do",
    '  [ -e "$f" ] || [ -L "$f" ] || continue',
    '  mkdir -p "$w$(dirname "$f")" && mknod "$w$f" c 0 0',
    "done",
    'mkdir -p "$w/usr"',
    'mount -t overlay -o ro,lowerdir="$w/usr:/usr" overlay /usr',
  ];
  const r = ns.run(["sh", "-c", hide.join("\n")]);
  if (r.status !== 0) throw new Error(`hiding nix and node failed:\n${r.stderr}`);
}, 600_000);
afterAll(() => {
  ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const env = () => ({ PATH: "/usr/bin:/bin", HOME: "/root", NO_COLOR: "1", NIX_CONFIG });
const sh = (script: string): RunOutput => ns.run(["sh", "-c", script], { env: env() });
function shOk(script: string): string {
  const r = sh(script);
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

describe("the bootstrap image: from nothing to ext add jq on a host with no Nix and no Node", () => {
  it("ext build --bootstrap takes no packages (usage error, exit 2)", () => {
    const r = spawnSync("node", [EXT, "build", "--bootstrap", "ripgrep", "-o", join(work, "x.raw")], { env: { ...process.env, ...offlineNixEnv(), NO_COLOR: "1" }, encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/'ext build --bootstrap' takes no packages/);
  });

  it("the host view has no nix, no node and no /nix", () => {
    expect(sh("command -v nix || command -v nix-store || command -v node || echo none").stdout.trim()).toBe("none");
    expect(sh("ls /usr/lib/nix /usr/lib/*/libnix*.so* 2>/dev/null; ls /usr/bin | grep -E '^(nix|node)' || echo none").stdout.trim()).toBe("none");
    expect(sh("test -e /nix/store").status).not.toBe(0);
    expect(sh("test -e /usr/bin/ext").status).not.toBe(0);
  });

  it("placed in /var/lib/extensions and merged, then /usr/bin/ext add jq works with the image's Nix and a private store", () => {
    const start = Date.now();
    shOk(`mkdir -p /var/lib/extensions && cp ${image} /var/lib/extensions/ext.raw && systemd-sysext refresh`);
    // ext, node and nix now come from the image, relocated to /usr/store.
    const links = shOk("readlink /usr/bin/ext /usr/bin/node /usr/bin/nix").trim().split("\n");
    expect(links[0]).toMatch(/^\/usr\/store\/[0-9a-z]{32}-ext-/);
    expect(links[1]).toMatch(/^\/usr\/store\/[0-9a-z]{32}-nodejs-/);
    expect(links[2]).toMatch(/^\/usr\/store\/[0-9a-z]{32}-nix-/);
    // The image's nix (a script running libexec/nix/nix, test/fixtures-self) loads nothing from the
    // host's /usr/lib, and runs.
    expect(shOk("nix --version").trim()).toMatch(/^nix \(Nix\) 2\.\d+/);
    const libs = shOk(`/lib64/ld-linux-x86-64.so.2 --list ${links[2]!.replace(/\/bin\/nix$/, "/libexec/nix/nix")}`);
    // (Debian 12's links libnix*.so, trixie's has them built in: either way its libraries are its own.)
    expect(libs).toMatch(/=> \/usr\/store\/[0-9a-z]{32}-nix-[^/]+\/lib\/lib/);
    expect(libs).not.toMatch(/=> \/(usr\/)?lib\//);

    // Before any change, ext lists what the placed image holds (and says the next change adopts it).
    const listing = Date.now();
    const before = sh("/usr/bin/ext list");
    expect(before.status, before.stderr).toBe(0);
    expect(before.stdout.split("\n").map((l) => l.split(/ +/)[0]).filter(Boolean)).toEqual(["ext", "nix", "nodejs"]);
    expect(before.stderr).toMatch(/\/var\/lib\/extensions\/ext\.raw is ext's bootstrap image; the first 'ext add' \(or remove, apply\) makes it generation 1/);
    // ext doctor says so too, and ext repair leaves the placed image alone (moving it aside, as it
    // does with other files ext did not put there, would take ext away with the next merge).
    const doctor = JSON.parse(sh("/usr/bin/ext doctor --json").stdout) as { findings: { status: string; message: string }[] };
    expect(doctor.findings).toContainEqual(expect.objectContaining({ status: "info", message: expect.stringMatching(/ext\.raw is ext's bootstrap image/) }));
    sh("/usr/bin/ext repair");
    expect(sh("test -f /var/lib/extensions/ext.raw && test -x /usr/bin/ext").status).toBe(0);
    const listed = Date.now() - listing;

    // An adoption killed in the middle (kill -9 while its import runs): the placed image was moved
    // aside; the next command puts it back and adopts it.
    const killed = Date.now();
    const paused = spawn("nsenter", [`--target=${ns.pid}`, "--mount", "--", "/usr/bin/ext", "add", "jq", "--source", FIXTURES], { env: { ...env(), EXT_TEST_PAUSE_AT: "import" }, stdio: "ignore" });
    // Killed once the placed image is aside and the import waits (paused before its step runs). The
    // loops below block this process's event loop, so they look at the namespace, not at the child.
    const aside = () => sh("ls /var/lib/ext").stdout.split("\n").filter((n) => n.startsWith("bootstrap-"));
    for (let i = 0; i < 1200 && aside().length === 0; i++) execFileSync("sleep", ["0.1"]);
    execFileSync("sleep", ["2"]);
    paused.kill("SIGKILL");
    execFileSync("sleep", ["1"]);
    expect(shOk("ls /var/lib/ext").split("\n").filter((n) => n.startsWith("bootstrap-"))).toHaveLength(1);
    expect(sh("test -e /var/lib/extensions/ext.raw").status).not.toBe(0);
    const interrupted = Date.now() - killed;

    const add = sh(`/usr/bin/ext add jq --source ${FIXTURES}`);
    expect(add.stderr).toMatch(/an earlier adoption of the bootstrap image was interrupted: \/var\/lib\/ext\/bootstrap-\d+\.raw is back at \/var\/lib\/extensions\/ext\.raw/);
    const seconds = (Date.now() - start - listed - interrupted) / 1000;
    if (add.status !== 0) throw new Error(`/usr/bin/ext add jq failed (${add.status}):\n${add.stderr}\n${add.stdout}`);
    console.info(`bootstrap image ${(imageSize / 1048576).toFixed(1)} MiB; placed + refresh → ext add jq done: ${seconds.toFixed(1)} s`);
    expect(add.stderr).toMatch(/the bootstrap image is generation 1 \(ext [^,]+, ext, nix, nodejs\)/);
    expect(add.stdout).toMatch(/generation 2 is active \(\+jq 1\.6\)/);
    expect(shOk("command -v jq").trim()).toBe("/usr/bin/jq");
    expect(shOk("echo '{\"a\":[1,2]}' | jq -c '.a|add'").trim()).toBe("3");
    expect(shOk("readlink /usr/bin/jq")).toMatch(/^\/usr\/store\/[0-9a-z]{32}-jq-1\.6\/bin\/jq/);
    // Still no /nix: the private store holds everything, the image's nix among it.
    expect(sh("test -e /nix/store").status).not.toBe(0);
    const nixPath = links[2]!.replace(/^\/usr\/store\//, "").split("/")[0]!;
    expect(sh(`test -x ${STORE}/${nixPath}/bin/nix`).status).toBe(0);
    expect(JSON.parse(shOk("/usr/bin/ext status --json")).store).toMatchObject({ kind: "private" });
  });

  it("generation 1 is the bootstrap image and generation 2 keeps ext, nodejs and nix (marked as ext's own)", () => {
    const one = JSON.parse(ns.read("/var/lib/ext/generations/1.json") ?? "{}") as { packages: { name: string; self?: boolean }[]; origin?: { url: string } };
    expect(one.packages.map((p) => p.name).sort()).toEqual(["ext", "nix", "nodejs"]);
    expect(one.origin?.url).toMatch(/^bootstrap:\/var\/lib\/extensions\/ext\.raw$/);
    const two = JSON.parse(ns.read("/var/lib/ext/generations/2.json") ?? "{}") as { packages: { name: string; self?: boolean }[] };
    expect(two.packages.map((p) => `${p.name}${p.self ? "*" : ""}`).sort()).toEqual(["ext*", "jq", "nix*", "nodejs*"]);
    // The placed file became ext's: the link is generation 2's image, the original was moved away.
    expect(shOk("ls /var/lib/ext").split("\n").filter((n) => n.startsWith("bootstrap-"))).toEqual([]);
  });

  it("ext list shows ext, jq, nix and nodejs; ext remove ext (or nix, nodejs) is refused with a hint", () => {
    const list = shOk("/usr/bin/ext list");
    for (const name of ["ext", "jq", "nix", "nodejs"]) expect(list).toMatch(new RegExp(`^${name} +`, "m"));
    expect(list).toMatch(new RegExp(`^ext +${VERSION.replace(/\./g, "\\.")} `, "m"));
    for (const name of ["ext", "nix", "nodejs"]) {
      const r = sh(`/usr/bin/ext remove ${name}`);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^ext: ${name} is what ext itself runs from here: refused$`, "m"));
      expect(r.stderr).toMatch(/^hint: ext, its Node\.js and its Nix \(ext, nix, nodejs\) stay in every generation/m);
    }
    const json = JSON.parse(sh("/usr/bin/ext --json remove nix").stdout) as { error: { code: string } };
    expect(json.error.code).toBe("self-package");
    // Nothing changed, and the other package can go.
    expect(sh("test -e /var/lib/ext/generations/3.json").status).not.toBe(0);
    const rm = sh("/usr/bin/ext remove jq");
    expect(rm.status, rm.stderr).toBe(0);
    expect(sh("test -e /usr/bin/jq").status).not.toBe(0);
    expect(shOk("/usr/bin/ext --version").trim()).toBe(VERSION);
  });
});
