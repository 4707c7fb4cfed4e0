import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, REPO, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { expectValid } from "../unit/cli/schemas.js";

// Issue 6: every command's --json output, from the real CLI (real Nix on the fixtures, real
// mkfs.erofs, real systemd-sysext merges in a private mount namespace), checked against its schema in
// schemas/cli/; and stdout holds that one document and nothing else.

let ns: Namespace;
/** Scratch space of this file, removed afterwards. */
let work: string;

beforeAll(() => {
  // npm test type-checks first; here only the emitted JavaScript matters (bin/ext.js runs dist/).
  try {
    execFileSync("npx", ["tsc", "-p", "."], { cwd: REPO, stdio: "pipe" });
  } catch (e) {
    if (!existsSync(join(REPO, "dist/cli/main.js"))) throw e;
  }
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
