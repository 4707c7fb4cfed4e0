import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 19, the first hour: scripts/setup.sh says what it changes before changing it, checks
// Node.js ≥ 20, and waits for another apt's lock instead of failing; scripts/install.sh puts the
// clone's ext on PATH and takes it off again. Nothing here installs a package or writes the host's
// /usr: setup runs with --dry-run, apt-get with private list directories, install with PREFIX=tmp.

let work: string;

// setup.sh and install.sh are about the machine the clone is on (Debian 12 here, and CI). The
// host-matrix trees (scripts/test-hosts.sh sets EXT_TEST_HOST) are made by host-tree.sh instead, and
// hold neither python3 (the lock holder below) nor the packages setup.sh installs.
const IN_HOST_TREE = process.env["EXT_TEST_HOST"] !== undefined;

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "ext-scripts-"));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function bash(script: string, env: Record<string, string> = {}) {
  const r = spawnSync("bash", ["-c", script], { cwd: REPO, env: { ...process.env, ...env }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(IN_HOST_TREE)("scripts/setup.sh", () => {
  it("--dry-run says what it would change on the host, and changes nothing", () => {
    const r = bash("bash scripts/setup.sh --dry-run");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^setup: this changes the host as follows:/m);
    expect(r.stdout).toMatch(/\/var\/cache\/ext-fixtures/);
    expect(r.stdout).toMatch(/node_modules: npm ci/);
    expect(r.stdout).toMatch(/nothing was changed/);
  });

  it("names the Debian packages it would remove (programs the fixtures provide) before removing them", () => {
    // bash stands in for an installed jq: what matters is that an installed one is named up front.
    const r = bash("source scripts/setup.sh && FIXTURE_PROGRAMS=(bash no-such-package) && main --dry-run");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^setup: {3}apt-get remove of bash: the test fixtures provide these programs/m);
    expect(r.stdout).not.toMatch(/no-such-package/);
  });

  it("refuses a Node.js older than 20, with what to do", () => {
    const fake = join(work, "old-node");
    mkdirSync(fake, { recursive: true });
    writeFileSync(join(fake, "node"), "#!/bin/sh\n# node -p prints the major version, node --version the version\ncase \"$1\" in -p) echo 18;; *) echo v18.20.4;; esac\n");
    chmodSync(join(fake, "node"), 0o755);
    const r = bash("bash scripts/setup.sh --dry-run", { PATH: `${fake}:${process.env["PATH"]}` });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Node\.js v18\.20\.4 is too old: ext and its tests need Node\.js ≥ 20/);
  });

  it("waits for another apt holding the package lists' lock, then runs", async () => {
    const lists = join(work, "lists");
    mkdirSync(join(lists, "partial"), { recursive: true });
    // Another apt: an fcntl lock on the lists' lock file (what apt takes), let go after 3 s.
    const holder = spawn("python3", ["-c", `import fcntl,time,sys\nf=open("${lists}/lock","w")\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint("locked",flush=True)\ntime.sleep(3)`], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    const started = Date.now();
    const apt = `apt_get -o Dir::State::Lists=${lists} -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/nonexistent update -q`;
    const r = bash(`source scripts/setup.sh && ${apt}`, { EXT_SETUP_APT_LOCK_WAIT: "60" });
    const waited = Date.now() - started;
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/waiting for another apt to finish \(held by process \d+ \(python3\)\)/);
    expect(waited).toBeGreaterThanOrEqual(2500);
    holder.kill();
  });

  it("gives up after the wait, with apt's own message", async () => {
    const lists = join(work, "lists2");
    mkdirSync(join(lists, "partial"), { recursive: true });
    const holder = spawn("python3", ["-c", `import fcntl,time\nf=open("${lists}/lock","w")\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint("locked",flush=True)\ntime.sleep(30)`], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    const r = bash(`source scripts/setup.sh && apt_get -o Dir::State::Lists=${lists} -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/nonexistent update -q`, { EXT_SETUP_APT_LOCK_WAIT: "0" });
    holder.kill();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Could not get lock/);
  });
});

describe.skipIf(IN_HOST_TREE)("scripts/install.sh", () => {
  it("links bin/ext.js into PREFIX/bin, idempotently, and --uninstall removes only its own link", () => {
    const prefix = join(work, "prefix");
    const link = join(prefix, "bin/ext");
    const env = { PREFIX: prefix };
    expect(bash("bash scripts/install.sh", env).status).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(join(REPO, "bin/ext.js"));
    const manLink = join(prefix, "share/man/man1/ext.1");
    expect(readlinkSync(manLink)).toBe(join(REPO, "dist/ext.1"));
    // man-db finds PREFIX/share/man from PREFIX/bin on PATH (and names the file the link leads to).
    const { MANPATH: _unset, ...env0 } = process.env;
    const man = spawnSync("man", ["-w", "ext"], { encoding: "utf8", env: { ...env0, PATH: `${join(prefix, "bin")}:/usr/bin:/bin` } });
    expect(man.stdout.trim()).toBe(join(REPO, "dist/ext.1"));
    const version = spawnSync(link, ["--version"], { encoding: "utf8" });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(bash("bash scripts/install.sh", env).stdout).toMatch(/already links/);
    const removed = bash("bash scripts/install.sh --uninstall", env);
    expect(removed.status).toBe(0);
    expect(existsSync(link)).toBe(false);
    expect(existsSync(manLink)).toBe(false);
    // Someone else's ext there is left alone.
    writeFileSync(link, "#!/bin/sh\n");
    const refused = bash("bash scripts/install.sh --uninstall", env);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/is not a link to .*leaving it alone/);
    expect(existsSync(link)).toBe(true);
    expect(bash("bash scripts/install.sh", env).status).toBe(1);
  });
});
