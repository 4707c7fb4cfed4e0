import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// ext's V8 start-up snapshot (docs/startup.md): bin/ext runs `node --snapshot-blob dist/snapshot/ext.blob`
// when dist/snapshot/ext.stamp says the blob was made by this node binary on this kind of processor,
// and bin/ext.js otherwise. Both ways must be the same program: same output, same exit codes. Every
// run here is real: a copy of the package whose blob scripts/snapshot.mjs made with the node running
// the tests, then damaged or mismatched on purpose. Which way the launcher went is read from its own
// trace (`sh -x`: the line of the final `exec`).

let work: string;
let pkg: string;
let root: string;

/** A package copy in `dir`: what an installed ext has (bin, dist, package.json, templates, schemas). */
function copyPackage(dir: string): void {
  for (const d of ["bin", "templates", "schemas", "dist/bundle", "dist/snapshot"]) cpSync(join(REPO, d), join(dir, d), { recursive: true });
  cpSync(join(REPO, "package.json"), join(dir, "package.json"));
  const r = spawnSync(process.execPath, [join(REPO, "scripts/snapshot.mjs"), dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`scripts/snapshot.mjs failed: ${r.stderr}`);
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  way: "snapshot" | "plain";
}

const env = { ...process.env, NO_COLOR: "1" };

/** Runs ext through the launcher `launcher` (under `sh -x`, whose trace lines are taken out of stderr). */
function viaLauncher(launcher: string, args: string[]): Run {
  const r = spawnSync("sh", ["-x", launcher, ...args], { encoding: "utf8", env, cwd: work });
  const lines = r.stderr.split("\n");
  const trace = lines.filter((l) => l.startsWith("+"));
  const exec = trace.filter((l) => /^\+ exec /.test(l)).pop() ?? "";
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: lines.filter((l) => !l.startsWith("+")).join("\n"),
    way: exec.includes("--snapshot-blob") ? "snapshot" : "plain",
  };
}

/** The plain way, as before the launcher existed. */
function plain(args: string[]): Omit<Run, "way"> {
  const r = spawnSync(process.execPath, [join(REPO, "bin/ext.js"), ...args], { encoding: "utf8", env, cwd: work });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cases: Array<[string, () => string[], number]> = [
  ["--version", () => ["--version"], 0],
  ["list --json", () => ["--root", root, "list", "--json"], 0],
  ["status --json", () => ["--root", root, "status", "--json"], 0],
  ["a usage error", () => ["--root", root, "lisst"], 2],
  ["a user error (a damaged tools.json)", () => ["--root", root, "apply", join(work, "bad.json")], 1],
];

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "ext-snapshot-test-"));
  pkg = join(work, "pkg");
  copyPackage(pkg);
  root = join(work, "root");
  for (const d of ["usr", "var"]) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(work, "bad.json"), '{"version": 1, "packages": ');
}, 120_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function expectSameAsPlain(launcher: string, way: Run["way"]): void {
  for (const [, args, code] of cases) {
    const got = viaLauncher(launcher, args());
    const want = plain(args());
    expect(want.status).toBe(code);
    expect({ ...got, way: undefined }).toEqual({ ...want, way: undefined });
    expect(got.way).toBe(way);
  }
}

describe("the launcher with a blob made by this node", () => {
  it("runs from the snapshot, with the output and exit codes of the plain way", () => {
    expectSameAsPlain(join(pkg, "bin/ext"), "snapshot");
  }, 120_000);

  it("runs from the snapshot when started through a symlink (an npm or scripts/install.sh link)", () => {
    const link = join(work, "ext-link");
    rmSync(link, { force: true });
    symlinkSync(join(pkg, "bin/ext"), link);
    const r = viaLauncher(link, ["--version"]);
    expect(r.way).toBe("snapshot");
    expect(r.stdout).toBe(plain(["--version"]).stdout);
  });

  it("ends quietly when the reader goes away (EPIPE, src/cli/streams.ts)", () => {
    const r = spawnSync("bash", ["-c", `for i in 1 2 3 4 5; do "$0" --help | head -c1 >/dev/null; echo "code=\${PIPESTATUS[0]}"; done`, join(pkg, "bin/ext")], { encoding: "utf8", env });
    expect(r.stdout.trim().split("\n")).toEqual(Array(5).fill("code=0"));
    expect(r.stderr).toBe("");
  });
});

describe("falls back to bin/ext.js, same behaviour, when the blob cannot be used", () => {
  /** A fresh copy of the package with `damage` done to it; returns its launcher. */
  function damaged(name: string, damage: (snap: string) => void): string {
    const dir = join(work, name);
    rmSync(dir, { recursive: true, force: true });
    cpSync(pkg, dir, { recursive: true });
    damage(join(dir, "dist/snapshot"));
    return join(dir, "bin/ext");
  }
  const stampLines = (snap: string) => readFileSync(join(snap, "ext.stamp"), "utf8").split("\n");

  it("a blob cut short (node itself would crash on it)", () => {
    let blob = "";
    const launcher = damaged("short", (snap) => {
      blob = join(snap, "ext.blob");
      truncateSync(blob, Math.floor(statSync(blob).size / 2));
    });
    // What the check prevents: node given this blob dies before ext runs.
    const raw = spawnSync(process.execPath, ["--snapshot-blob", blob, "--", "--version"], { encoding: "utf8" });
    expect(raw.status === 0 && raw.stdout.trim() === plain(["--version"]).stdout.trim()).toBe(false);
    expectSameAsPlain(launcher, "plain");
  }, 120_000);

  it("a node binary replaced since the blob was made (another version at the same path: another size)", () => {
    const launcher = damaged("other-node", (snap) => {
      const [first = "", ...rest] = stampLines(snap);
      const [, size, mtime, blob, any] = first.split(" ");
      writeFileSync(join(snap, "ext.stamp"), [[process.execPath, String(Number(size) + 4096), mtime, blob, any].join(" "), ...rest].join("\n"));
    });
    expectSameAsPlain(launcher, "plain");
  }, 120_000);

  it("a blob made on a processor with other features", () => {
    const launcher = damaged("other-cpu", (snap) => {
      const [first = "", cpu = "", ...rest] = stampLines(snap);
      writeFileSync(join(snap, "ext.stamp"), [first, `${cpu} some_feature_this_cpu_lacks`, ...rest].join("\n"));
    });
    expectSameAsPlain(launcher, "plain");
  }, 120_000);

  it("the checkout's own blob, made by the node that ran the build (in a host-matrix tree: the host's, another version)", () => {
    const [first = ""] = readFileSync(join(REPO, "dist/snapshot/ext.stamp"), "utf8").split("\n");
    const [path, size] = first.split(" ");
    const sameNode = path === process.execPath && Number(size) === statSync(process.execPath).size;
    if (!sameNode) {
      // What the check prevents: this node refuses that blob before ext runs (exit 14 and a message).
      const raw = spawnSync(process.execPath, ["--snapshot-blob", join(REPO, "dist/snapshot/ext.blob"), "--", "--version"], { encoding: "utf8" });
      expect(raw.status).not.toBe(0);
    }
    expectSameAsPlain(join(REPO, "bin/ext"), sameNode ? "snapshot" : "plain");
  }, 120_000);

  it("no blob, or no stamp", () => {
    expectSameAsPlain(damaged("no-blob", (snap) => rmSync(join(snap, "ext.blob"))), "plain");
    expectSameAsPlain(damaged("no-stamp", (snap) => rmSync(join(snap, "ext.stamp"))), "plain");
  }, 120_000);
});
