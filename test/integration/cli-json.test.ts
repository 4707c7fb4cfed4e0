import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, FIXTURES, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { expectValid } from "../unit/cli/schemas.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 6: every command's --json output, from the real CLI (real Nix on the fixtures, real
// mkfs.erofs, real systemd-sysext merges in a private mount namespace), checked against its schema in
// schemas/cli/; and stdout holds that one document and nothing else.

let ns: Namespace;
/** Scratch space of this file, removed afterwards. */
let work: string;

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "ext-json-"));
  ns = openNamespace();
});
afterAll(() => {
  ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs `ext ARGS --json`; stdout must be exactly one JSON document. */
function json(args: string[], expectStatus = 0): { doc: unknown; r: RunOutput } {
  const r = ns.ext([...args, "--json"]);
  if (r.status !== expectStatus) throw new Error(`ext ${args.join(" ")} --json: exit ${r.status}, expected ${expectStatus}\n${r.stderr}\n${r.stdout}`);
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    throw new Error(`stdout of ext ${args.join(" ")} --json is not one JSON document:\n${r.stdout}`);
  }
  // Progress never reaches stdout, and with --json not even stderr.
  expect(r.stderr).not.toMatch(/^\[\d+\.\ds\] /m);
  return { doc, r };
}

function valid<T>(schema: string, args: string[], expectStatus = 0): T {
  const { doc } = json(args, expectStatus);
  expectValid(schema, doc);
  return doc as T;
}

describe("--json output matches schemas/cli/", () => {
  it("doctor", () => {
    const first = ns.ext(["doctor", "--json"]);
    const doc = JSON.parse(first.stdout) as { ok: boolean; findings: { check: string; status: string; message: string }[] };
    expectValid("doctor", doc);
    expect(first.status).toBe(doc.ok ? 0 : 1);
    const comm = readFileSync("/proc/1/comm", "utf8").trim();
    const init = doc.findings.find((f) => f.check === "init")!;
    expect(init.status).toBe(comm === "systemd" ? "ok" : "warning");
    expect(doc.findings.find((f) => f.check === "state")?.message).toMatch(/no state yet/);
  });

  it("search: matches, nothing with close names, installed flags later", () => {
    const hits = valid<{ results: { attr: string }[]; total: number }>("search", ["search", "rip"]);
    expect(hits.results.map((r) => r.attr)).toContain("ripgrep");
    expect(hits.results[0]!.attr).toBe("ripgrep");
    const none = valid<{ total: number; suggestions: string[] }>("search", ["search", "rigprep"]);
    expect(none).toMatchObject({ total: 0, suggestions: ["ripgrep"] });
    const all = valid<{ total: number; results: unknown[] }>("search", ["search", "", "--limit", "3"]);
    expect(all.results).toHaveLength(3);
    expect(all.total).toBeGreaterThan(3);
  });

  it("show: commands it would install, closure, license; --no-build", () => {
    const rg = valid<Record<string, unknown>>("show", ["show", "ripgrep"]);
    expect(rg).toMatchObject({ name: "ripgrep", version: "13.0.0", binaries: ["rg"], closure: { paths: 4 }, installed: null, generations: [] });
    expect(rg["license"]).toBeTruthy();
    const hello = valid<Record<string, unknown>>("show", ["show", "hello", "--no-build"]);
    expect(hello).toMatchObject({ outputs: ["out", "man"], binaries: null, closure: null, outPaths: null });
  });

  it("build", () => {
    const dir = mkdtempSync(join(work, "build-"));
    const b = valid<{ output: string; packages: { name: string }[] }>("build", ["build", "ripgrep", "-o", join(dir, "ext.raw")]);
    expect(b.output).toBe(join(dir, "ext.raw"));
    expect(b.packages.map((p) => p.name)).toEqual(["ripgrep"]);
  });

  it("add, then add again (noop)", () => {
    const done = valid<{ status: string; generation: number }>("transaction", ["add", "ripgrep", "jq"]);
    expect(done).toMatchObject({ status: "done", generation: 1 });
    const noop = valid<{ status: string }>("transaction", ["add", "jq"]);
    expect(noop.status).toBe("noop");
  });

  it("list, generations, status, show and search of what is installed", () => {
    const list = valid<{ name: string }[]>("list", ["list"]);
    expect(list.map((p) => p.name).sort()).toEqual(["jq", "ripgrep"]);
    const gens = valid<{ id: number }[]>("generations", ["generations"]);
    expect(gens.map((g) => g.id)).toEqual([1]);
    const st = valid<{ generation: number; merged: boolean }>("status", ["status"]);
    expect(st).toMatchObject({ generation: 1, merged: true });
    expect(valid<{ installed: unknown; generations: number[] }>("show", ["show", "jq"])).toMatchObject({ installed: { generation: 1, version: "1.6" }, generations: [1] });
    const found = valid<{ results: { attr: string; installed: boolean }[] }>("search", ["search", "jq"]);
    expect(found.results.find((r) => r.attr === "jq")?.installed).toBe(true);
  });

  it("remove, rollback, gc", () => {
    expect(valid<{ generation: number }>("transaction", ["remove", "jq"]).generation).toBe(2);
    expect(valid<{ generation: number }>("transaction", ["rollback"]).generation).toBe(1);
    const gc = valid<{ deletedGenerations: number[] }>("gc", ["gc", "--keep", "0"]);
    expect(gc.deletedGenerations).toEqual([2]);
  });

  it("completion, and the names it completes", () => {
    for (const shell of ["bash", "zsh", "fish"]) {
      expect(valid<{ shell: string }>("completion", ["completion", shell]).shell).toBe(shell);
    }
    expect(ns.ext(["__complete", "installed"]).stdout.split("\n").filter(Boolean)).toEqual(["jq", "ripgrep"]);
    expect(ns.ext(["__complete", "generations"]).stdout.trim()).toBe("1");
  });

  it("doctor after installing: state ok and merged", () => {
    const doc = valid<{ findings: { check: string; status: string; message: string }[] }>("doctor", ["doctor"], ns.ext(["doctor", "--json"]).status);
    const state = doc.findings.filter((f) => f.check === "state");
    expect(state).toEqual([expect.objectContaining({ status: "ok" })]);
    expect(state[0]!.message).toMatch(/current 1 \(jq, ripgrep\), merged/);
    expect(doc.findings.find((f) => f.check === "usr-store")?.message).toMatch(/ext's merged extension/);
  });
});

describe("failures with --json: the error document, the documented exit code, never a stack", () => {
  it.each([
    [["add", "rigprep"], 6, "unknown-package", /did you mean 'ripgrep'/],
    [["show", "rigprep"], 6, "unknown-package", /did you mean 'ripgrep'/],
    [["remove", "notinstalled"], 1, undefined, /./],
    [["rollback", "--to", "99"], 1, "state", /ext generations/],
    [["build", "broken", "-o", "/tmp/ext-json-broken.raw"], 6, "build-failed", /nix log/],
    [["frobnicate"], 2, "usage", /ext --help/],
    [["completion", "tcsh"], 2, "usage", /./],
    [["--compression", "bogus", "build", "jq", "-o", "/tmp/x.raw"], 2, "usage", /supports/],
  ] as const)("ext %j → exit %d", (args, status, code, hint) => {
    const doc = valid<{ error: { code: string; hint: string } }>("error", [...args], status);
    if (code) expect(doc.error.code).toBe(code);
    expect(doc.error.hint).toMatch(hint);
    const human = ns.ext([...args]);
    expect(human.status).toBe(status);
    expect(human.stderr).toMatch(/^ext: /m);
    expect(human.stderr).toMatch(/^hint: /m);
    expect(human.stderr + human.stdout).not.toMatch(/\n\s+at .+:\d+:\d+/);
  });
});

describe("doctor finds another extension that brings /usr/store", () => {
  it("an EROFS image with usr/store in /var/lib/extensions is an error naming it", () => {
    const dir = mkdtempSync(join(work, "other-"));
    json(["build", "hello", "-o", join(dir, "ext.raw")]);
    // Copied in and out again before anything refreshes: its release name would stop every merge.
    expect(ns.run(["cp", join(dir, "ext.raw"), "/var/lib/extensions/other.raw"]).status).toBe(0);
    try {
      const r = ns.ext(["doctor", "--json"]);
      const doc = JSON.parse(r.stdout) as { ok: boolean; findings: { check: string; status: string; details?: { others?: string[] } }[] };
      expectValid("doctor", doc);
      expect(r.status).toBe(1);
      expect(doc.ok).toBe(false);
      expect(doc.findings.find((f) => f.check === "usr-store")).toMatchObject({ status: "error", details: { others: ["/var/lib/extensions/other.raw"] } });
    } finally {
      ns.run(["rm", "-f", "/var/lib/extensions/other.raw"]);
    }
  });
});

/** Writes a file as the namespace sees it (under /var/lib, a tmpfs of the namespace). */
function writeInNs(path: string, text: string): void {
  const r = ns.run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"', "sh", path, text]);
  if (r.status !== 0) throw new Error(`writing ${path}: ${r.stderr}`);
}

type Preview = { unchanged: boolean; added: { name: string }[]; removed: { name: string }[]; closure: { notBuilt: string[] } };

// The tools.json commands on the state the tests above left (generation 1: jq, ripgrep), then the
// boot commands under --root. The files live in the namespace's /var/lib.
describe("--json of the tools.json and boot commands matches schemas/cli/", () => {
  const TOOLS = "/var/lib/t/tools.json";
  const tools = (packages: string[]) => JSON.stringify({ version: 1, source: FIXTURES, packages: Object.fromEntries(packages.map((p) => [p, {}])) }, null, 2) + "\n";

  it("export: to stdout, then into a new file and the same file again", () => {
    const out = valid<{ file: null; tools: { packages: Record<string, unknown> }; text: string }>("export", ["export"]);
    expect(out).toMatchObject({ file: null, lockFile: null, created: false, tracked: false });
    expect(Object.keys(out.tools.packages).sort()).toEqual(["jq", "ripgrep"]);
    expect(JSON.parse(out.text)).toEqual(out.tools);
    const file = "/var/lib/t/exported.json";
    // (ext export into a directory that does not exist fails with an internal error, exit 70.)
    expect(ns.run(["mkdir", "-p", "/var/lib/t"]).status).toBe(0);
    const written = valid<{ lock: { packages: Record<string, { version: string }> } }>("export", ["export", file]);
    expect(written).toMatchObject({ file, lockFile: "/var/lib/t/exported.lock.json", created: true, tracked: false });
    expect(written.lock.packages["jq"]?.version).toBe("1.6");
    expect(JSON.parse(ns.read(file)!)).toEqual((written as unknown as { tools: unknown }).tools);
    expect(valid<{ created: boolean }>("export", ["export", file]).created).toBe(false);
  });

  it("diff and apply --dry-run: a plan, nothing changed", () => {
    writeInNs(TOOLS, tools(["ripgrep", "jq", "hello"]));
    const d = valid<{ file: string; plan: Preview }>("diff", ["diff", TOOLS]);
    expect(d.file).toBe(TOOLS);
    expect(d.plan).toMatchObject({ unchanged: false, generation: 1, removed: [] });
    expect(d.plan.added.map((a) => a.name)).toEqual(["hello"]);
    const dry = valid<{ dryRun: boolean; plan: Preview }>("apply", ["apply", TOOLS, "--dry-run"]);
    expect(dry).toMatchObject({ dryRun: true, file: TOOLS });
    expect(dry.plan.added.map((a) => a.name)).toEqual(["hello"]);
    expect(valid<{ generation: number }>("status", ["status"]).generation).toBe(1);
  });

  it("apply: the transaction, the lock beside the file, and the file tracked; again: noop", () => {
    const done = valid<{ status: string; generation: number; lock: { file: string; written: boolean } }>("apply", ["apply", TOOLS]);
    expect(done).toMatchObject({ status: "done", dryRun: false, file: TOOLS, tracked: TOOLS, trackingChanged: true, lock: { file: "/var/lib/t/tools.lock.json", written: true } });
    expect(done.generation).toBeGreaterThan(1);
    expect(ns.read("/var/lib/t/tools.lock.json")).toBeTruthy();
    const again = valid<{ status: string; generation: number }>("apply", ["apply"]);
    expect(again).toMatchObject({ status: "noop", generation: done.generation, tracked: TOOLS, trackingChanged: false, lock: { written: false } });
    expect(valid<{ plan: Preview }>("diff", ["diff"]).plan.unchanged).toBe(true);
  });

  it("add and remove with the tracked file: transaction.json's tracked", () => {
    const added = valid<{ status: string; tracked: unknown }>("transaction", ["add", "greet"]);
    expect(added).toMatchObject({ status: "done", tracked: { file: TOOLS, edited: true, lock: { file: "/var/lib/t/tools.lock.json", written: true } } });
    expect(Object.keys((JSON.parse(ns.read(TOOLS)!) as { packages: object }).packages)).toContain("greet");
    const removed = valid<{ status: string; tracked: unknown }>("transaction", ["remove", "greet"]);
    expect(removed).toMatchObject({ status: "done", tracked: { file: TOOLS, edited: true, lock: { written: true } } });
    expect(Object.keys((JSON.parse(ns.read(TOOLS)!) as { packages: object }).packages)).not.toContain("greet");
  });

  it("upgrade with the tracked file: --dry-run, then nothing new (no transaction)", () => {
    const dry = valid<{ file: string; sources: { source: string }[]; transaction: unknown; lock: unknown }>("upgrade", ["upgrade", "--dry-run"]);
    expect(dry).toMatchObject({ file: TOOLS, dryRun: true, transaction: null, lock: null });
    expect(dry.sources.map((s) => s.source)).toEqual([FIXTURES]);
    const up = valid<{ plan: Preview; transaction: unknown }>("upgrade", ["upgrade"]);
    expect(up).toMatchObject({ file: TOOLS, dryRun: false, plan: { unchanged: true }, transaction: null, lock: { file: "/var/lib/t/tools.lock.json" } });
  });

  it("untrack, untrack again; then upgrade --dry-run from the installed packages' sources, and diff needs a FILE", () => {
    expect(valid<{ untracked: string | null }>("untrack", ["untrack"]).untracked).toBe(TOOLS);
    expect(valid<{ untracked: string | null }>("untrack", ["untrack"]).untracked).toBeNull();
    const dry = valid<{ sources: { from: string | null }[] }>("upgrade", ["upgrade", "--dry-run"]);
    expect(dry).toMatchObject({ file: null, dryRun: true, transaction: null, lock: null });
    expect(dry.sources.length).toBeGreaterThan(0);
    expect(dry.sources.every((s) => s.from === null)).toBe(true);
    const err = valid<{ error: { code: string; hint: string } }>("error", ["diff"], 2);
    expect(err.error.hint).toMatch(/ext apply FILE/);
  });

  it("setup --root, boot select and bless, setup --remove", () => {
    const root = "/var/lib/sroot";
    expect(ns.run(["mkdir", "-p", root]).status).toBe(0);
    const first = valid<{ units: { unit: string; written: boolean; linked: boolean; path: string }[]; warnings: string[] }>("setup", ["setup", "--root", root, "--boot-tries", "2"]);
    expect(first).toMatchObject({ action: "install", bootState: "created", tries: 2, adopted: null, reloaded: false });
    expect(first.units.map((u) => [u.unit, u.written, u.linked])).toEqual([["ext-boot-select.service", true, true], ["ext-boot-bless.service", true, true]]);
    expect(first.units[0]!.path).toBe(`${root}/etc/systemd/system/ext-boot-select.service`);
    // The default unit command is this node and this ext, which do not exist under the new root.
    expect(first.warnings).toEqual([expect.stringMatching(/does not exist under/)]);
    const second = valid<{ units: { written: boolean; linked: boolean }[] }>("setup", ["setup", "--root", root, "--boot-tries", "2"]);
    expect(second).toMatchObject({ action: "install", bootState: "unchanged" });
    expect(second.units.every((u) => !u.written && !u.linked)).toBe(true);

    const sel = valid<{ step: string; generation: number | null; how: string }>("boot", ["boot", "select", "--root", root, "--cmdline", "", "--boot-id", "b1"]);
    expect(sel).toMatchObject({ step: "select", bootId: "b1", generation: null, how: "none" });
    const bless = valid<{ step: string; status: string }>("boot", ["boot", "bless", "--root", root, "--boot-id", "b1"]);
    expect(bless.step).toBe("bless");

    const removed = valid<{ action: string; removed: string[] }>("setup", ["setup", "--remove", "--root", root]);
    expect(removed.action).toBe("remove");
    expect(removed.removed).toEqual(expect.arrayContaining([`${root}/etc/systemd/system/ext-boot-select.service`]));
    expect(valid<{ removed: string[] }>("setup", ["setup", "--remove", "--root", root]).removed).toEqual([]);
  });
});
