import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extEnv, openNamespace, REPO, type Namespace } from "../helpers/namespace.js";
import { parseLock } from "../../src/manifest/read.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 4, end to end: tools.json and its lock with the real CLI, real Nix on a private copy of the
// fixture flake, real mkfs.erofs and systemd-sysext inside private mount namespaces. The tools.json
// files live in a host temporary directory, which every namespace sees (like a dotfiles checkout).

let ns: Namespace;
let dir: string;
let source: string;
let toolsFile: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "ext-manifest-"));
  // A private copy of the fixtures: a later test changes a package in it (a "new nixpkgs revision"),
  // and other tests' edits of test/fixtures cannot move this test's pins.
  cpSync(join(REPO, "test/fixtures"), join(dir, "fixtures"), { recursive: true });
  source = `path:${dir}/fixtures`;
  toolsFile = join(dir, "tools.json");
  ns = openNamespace();
});
afterAll(() => {
  ns?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ok(n: Namespace, args: string[], env?: Record<string, string>) {
  const r = n.ext(args, env ? { env } : {});
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

function json<T>(n: Namespace, args: string[], env?: Record<string, string>): T {
  return JSON.parse(ok(n, [...args, "--json"], env).stdout) as T;
}

const names = (n: Namespace) => json<{ name: string }[]>(n, ["list"]).map((p) => p.name).sort();
const generationIds = (n: Namespace) => json<{ id: number }[]>(n, ["generations"]).map((g) => g.id);

/** Everything a user could see of ext's state. */
function snapshot(n: Namespace) {
  return {
    gens: json<unknown[]>(n, ["generations"]),
    status: json<unknown>(n, ["status"]),
    config: n.read("/var/lib/ext/config.json") ?? null,
    bins: n.run(["sh", "-c", "ls /usr/bin | sort"]).stdout,
    images: n.run(["sh", "-c", "ls /var/lib/ext/images | sort"]).stdout,
  };
}

function imageSha(n: Namespace): string {
  return createHash("sha256").update(readFileSync(`/proc/${n.pid}/root/var/lib/extensions/ext.raw`)).digest("hex");
}

function currentRecord(n: Namespace) {
  const { generation } = json<{ generation: number }>(n, ["status"]);
  return JSON.parse(n.read(`/var/lib/ext/generations/${generation}.json`)!) as {
    packages: { name: string; version: string; outPaths: Record<string, string>; source: string }[];
    closure: { paths: string[] };
    image: { sha256: string };
  };
}

/** A `nix` first on PATH that records each call and fails: proof that a command ran no Nix. */
function failingNix(): { env: Record<string, string>; calls: () => string[] } {
  const bin = join(dir, "fake-bin");
  const log = join(dir, "nix-calls.log");
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, "nix"), `#!/bin/sh\necho "nix $*" >> ${log}\nexit 99\n`);
  chmodSync(join(bin, "nix"), 0o755);
  rmSync(log, { force: true });
  return {
    env: { PATH: `${bin}:${process.env["PATH"]}` },
    calls: () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean) : []),
  };
}

const THREE = () => `{
  "version": 1,
  "source": "${source}",
  "packages": {
    "hello": {},
    "jq": {},
    "ripgrep": {}
  }
}
`;

describe("ext apply", () => {
  it("three packages on an empty system give exactly those three, one generation, a lock, tracking", () => {
    writeFileSync(toolsFile, THREE());
    const r = ok(ns, ["apply", toolsFile]);
    expect(r.stdout).toMatch(/generation 1 is active/);
    expect(names(ns)).toEqual(["hello", "jq", "ripgrep"]);
    expect(generationIds(ns)).toEqual([1]);
    expect(ns.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /nix && /usr/bin/rg --version"]).stdout).toMatch(/ripgrep 13/);

    const lock = parseLock(readFileSync(join(dir, "tools.lock.json"), "utf8"), "tools.lock.json").data;
    expect(Object.keys(lock.packages)).toEqual(["hello", "jq", "ripgrep"]);
    const pin = lock.sources[source]!;
    // A local directory is pinned to Nix's copy of it (src/nix/parse.ts: the directory may change later).
    expect(pin.locked).toMatch(/^path:\/nix\/store\/[0-9a-z]{32}-source\?narHash=sha256-/);
    expect(lock.packages["ripgrep"]!.resolvedFrom).toBe(pin.locked);
    expect(lock.packages["ripgrep"]!.version).toBe("13.0.0");
    expect(lock.packages["hello"]!.outPaths).toHaveProperty("man");
    expect(JSON.parse(ns.read("/var/lib/ext/config.json")!)).toEqual({ trackedFile: toolsFile });
  });

  it("after an edit (one removed, one added): diff shows it and changes nothing; apply gives exactly the new set in one generation", () => {
    writeFileSync(toolsFile, THREE().replace(`    "jq": {},\n`, "").replace(`"ripgrep": {}`, `"ripgrep": {},\n    "greet": {}`));
    // greet in the store first, so that the closure after is known on every host (a fresh /nix in
    // the host-matrix trees has never built it; then diff says "unknown (greet not built yet)").
    expect(ns.run(["nix", "build", "--no-link", `${source}#greet`], { env: extEnv() }).status).toBe(0);
    const before = snapshot(ns);
    const d = ok(ns, ["diff"]);
    expect(d.stdout).toMatch(/\+ greet 1\.0/);
    expect(d.stdout).toMatch(/- jq 1\.6/);
    expect(d.stdout).toMatch(/closure: .* → .* \([+-]/);
    const dry = json<{ dryRun: boolean; plan: { added: { name: string }[]; removed: { name: string }[] } }>(ns, ["apply", "--dry-run"]);
    expect(dry.plan.added.map((a) => a.name)).toEqual(["greet"]);
    expect(dry.plan.removed.map((a) => a.name)).toEqual(["jq"]);
    expect(snapshot(ns)).toEqual(before);

    const r = ok(ns, ["apply"]); // the tracked file
    expect(r.stdout).toMatch(/generation 2 is active \(.*\+greet 1\.0.*-jq/);
    expect(names(ns)).toEqual(["greet", "hello", "ripgrep"]);
    expect(generationIds(ns)).toEqual([1, 2]);
    expect(ns.run(["test", "-e", "/usr/bin/jq"]).status).not.toBe(0);
    const lock = parseLock(readFileSync(join(dir, "tools.lock.json"), "utf8"), "x").data;
    expect(Object.keys(lock.packages)).toEqual(["greet", "hello", "ripgrep"]);
  });

  it("the same file again: no generation, no Nix, and about as fast as any ext command", () => {
    const nix = failingNix();
    const before = snapshot(ns);
    const lockBefore = readFileSync(join(dir, "tools.lock.json"), "utf8");
    const time = (fn: () => void) => {
      const t = performance.now();
      fn();
      return performance.now() - t;
    };
    const applies: number[] = [];
    const nodes: number[] = [];
    const lists: number[] = [];
    for (let i = 0; i < 7; i++) {
      applies.push(time(() => expect(ok(ns, ["apply", toolsFile], nix.env).stdout).toMatch(/nothing to do/)));
      lists.push(time(() => ok(ns, ["list"], nix.env)));
      nodes.push(time(() => expect(ns.run(["node", "-e", "0"]).status).toBe(0)));
    }
    expect(ok(ns, ["diff", toolsFile], nix.env).stdout).toMatch(/nothing to do/);
    expect(nix.calls()).toEqual([]);
    // The fake nix really is what ext would run: a command that needs Nix hits it.
    expect(ns.ext(["add", "dash"], { env: nix.env }).status).not.toBe(0);
    expect(nix.calls().length).toBeGreaterThan(0);

    expect(snapshot(ns)).toEqual(before);
    expect(readFileSync(join(dir, "tools.lock.json"), "utf8")).toBe(lockBefore);
    const stats = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return { min: Math.round(s[0]!), median: Math.round(s[Math.floor(s.length / 2)]!) };
    };
    const report = { noopApply: stats(applies), extList: stats(lists), nodeE0: stats(nodes) };
    console.log(`no-op apply timing (ms, ${applies.length} runs each, through nsenter): ${JSON.stringify(report)}`);
    writeFileSync(join(tmpdir(), "ext-manifest-timing.json"), JSON.stringify(report) + "\n");
    // No Nix and no image work: a no-op apply costs about what the cheapest ext command costs.
    expect(report.noopApply.median).toBeLessThan(report.extList.median * 2 + 1000);
  });

  it("a lock made on one root, applied with the same tools.json on another, gives a byte-identical image", () => {
    // The source moves on after the lock was written: without the lock, hello would now be 2.12.
    const nixFile = join(dir, "fixtures/packages.nix");
    const original = readFileSync(nixFile, "utf8");
    const newer = original.replace(`pname = "hello";\n    version = "2.10";`, `pname = "hello";\n    version = "2.12";`);
    expect(newer).not.toBe(original);
    writeFileSync(nixFile, newer);

    const other = openNamespace();
    try {
      const r = ok(other, ["apply", toolsFile]);
      expect(r.stdout).toMatch(/generation 1 is active/);
      expect(names(other)).toEqual(["greet", "hello", "ripgrep"]);
      expect(json<{ name: string; version: string }[]>(other, ["list"]).find((p) => p.name === "hello")?.version).toBe("2.10");
      expect(imageSha(other)).toBe(imageSha(ns));
      expect(currentRecord(other).image.sha256).toBe(currentRecord(ns).image.sha256);
    } finally {
      other.close();
    }
  });

  it("ext upgrade --dry-run shows the newer version and changes nothing; ext upgrade applies it and re-pins the source", () => {
    const before = snapshot(ns);
    const lockBefore = readFileSync(join(dir, "tools.lock.json"), "utf8");
    const dry = ok(ns, ["upgrade", "--dry-run"]);
    expect(dry.stdout).toMatch(/~ hello 2\.10 → 2\.12/);
    expect(snapshot(ns)).toEqual(before);
    expect(readFileSync(join(dir, "tools.lock.json"), "utf8")).toBe(lockBefore);

    const r = ok(ns, ["upgrade"]);
    expect(r.stdout).toMatch(/hello 2\.10 → 2\.12/);
    expect(generationIds(ns)).toEqual([1, 2, 3]);
    const lock = parseLock(readFileSync(join(dir, "tools.lock.json"), "utf8"), "x").data;
    expect(lock.packages["hello"]!.version).toBe("2.12");
    expect(lock.sources[source]!.narHash).not.toBe(JSON.parse(lockBefore).sources[source].narHash);
    expect(ok(ns, ["upgrade"]).stdout).toMatch(/up to date/);
    expect(generationIds(ns)).toEqual([1, 2, 3]);
  });
});

describe("a bad tools.json is a clear error and changes nothing", () => {
  const cases: [string, string, RegExp, number][] = [
    ["malformed JSON (says where)", `{\n  "version": 1,\n  "packages": {\n    "jq": {}\n    "hello": {}\n  }\n}\n`,
      /^ext: \S+bad\.json:5:5: not valid JSON: expected ','/m, 1],
    ["a schema violation (says which field)", `{\n  "version": 1,\n  "packages": {\n    "jq": { "priority": "high" }\n  }\n}\n`,
      /^ext: \S+bad\.json:4:25: packages\.jq\.priority: expected a whole number, got the string "high"/m, 1],
    ["an unknown key", `{\n  "version": 1,\n  "packages": {\n    "jq": { "outptus": ["out"] }\n  }\n}\n`,
      /bad\.json:4:13: packages\.jq\.outptus: unknown key "outptus" \(did you mean "outputs"\?\)/, 1],
    ["an unknown package (with the line that names it and a suggestion)", `{\n  "version": 1,\n  "source": "SOURCE",\n  "packages": {\n    "ripgrep": {},\n    "ripgrp": {}\n  }\n}\n`,
      /bad\.json:6:5: packages\.ripgrp: unknown package 'ripgrp'[^\n]*\n(.*\n)*hint: did you mean 'ripgrep'/, 6],
    ["a version newer than this ext", `{\n  "version": 2,\n  "packages": {},\n  "profiles": {}\n}\n`,
      /bad\.json:2:14: written by a newer ext \(format version 2; this ext reads version 1\)\nhint: upgrade ext/, 1],
  ];
  for (const [what, text, message, code] of cases) {
    it(what, () => {
      const bad = join(dir, "bad.json");
      writeFileSync(bad, text.replace("SOURCE", source));
      rmSync(join(dir, "bad.lock.json"), { force: true });
      const before = snapshot(ns);
      const r = ns.ext(["apply", bad]);
      expect(r.status).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // no stack trace
      expect(snapshot(ns)).toEqual(before);
      expect(existsSync(join(dir, "bad.lock.json"))).toBe(false);
    });
  }
});

describe("the imperative commands keep the tracked tools.json in step", () => {
  it("ext add X adds X to the file (formatting kept) and the lock; ext remove X takes it out again, byte for byte", () => {
    const text = readFileSync(toolsFile, "utf8");
    const r = ok(ns, ["add", "cowsay-a"]);
    expect(r.stdout).toMatch(/\+cowsay-a/);
    expect(r.stdout).toMatch(/updated .*tools\.json/);
    const added = readFileSync(toolsFile, "utf8");
    // Not alphabetical (greet comes last): the new entry goes at the end, in the file's style.
    expect(added).toBe(text.replace(`"greet": {}`, `"greet": {},\n    "cowsay-a": {}`));
    const lock = parseLock(readFileSync(join(dir, "tools.lock.json"), "utf8"), "x").data;
    expect(lock.packages["cowsay-a"]!.resolvedFrom).toBe(lock.sources[source]!.locked);
    // File and system agree: applying it is a no-op.
    expect(ok(ns, ["apply"]).stdout).toMatch(/nothing to do/);

    ok(ns, ["remove", "cowsay-a"]);
    expect(readFileSync(toolsFile, "utf8")).toBe(text);
    expect(Object.keys(parseLock(readFileSync(join(dir, "tools.lock.json"), "utf8"), "x").data.packages)).not.toContain("cowsay-a");
  });

  it("ext untrack stops it; ext apply FILE tracks FILE again", () => {
    ok(ns, ["untrack"]);
    const text = readFileSync(toolsFile, "utf8");
    ok(ns, ["add", "cowsay-b"]);
    expect(readFileSync(toolsFile, "utf8")).toBe(text);
    ok(ns, ["remove", "cowsay-b"]);
    ok(ns, ["apply", toolsFile]);
    expect(JSON.parse(ns.read("/var/lib/ext/config.json")!)).toEqual({ trackedFile: toolsFile });
  });
});

describe("ext export", () => {
  it("round-trips through ext apply to the same generation content, here and on another root", () => {
    const exported = join(dir, "exported", "tools.json");
    mkdirSync(join(dir, "exported"));
    const r = ok(ns, ["export", exported]);
    expect(r.stdout).toMatch(/wrote .*exported\/tools\.json \(3 packages\)/);
    const doc = JSON.parse(readFileSync(exported, "utf8"));
    expect(doc).toEqual({ version: 1, source, packages: { greet: {}, hello: {}, ripgrep: {} } });
    expect(existsSync(join(dir, "exported", "tools.lock.json"))).toBe(true);
    // Stdout without a FILE: the same document.
    expect(JSON.parse(ok(ns, ["export"]).stdout)).toEqual(doc);

    // Here: the same set, so nothing to do.
    const ids = generationIds(ns);
    expect(ok(ns, ["apply", "--no-track", exported]).stdout).toMatch(/nothing to do/);
    expect(generationIds(ns)).toEqual(ids);

    // Elsewhere: the same generation content.
    const other = openNamespace();
    try {
      ok(other, ["apply", exported]);
      const a = currentRecord(ns);
      const b = currentRecord(other);
      const content = (g: typeof a) => ({ packages: g.packages.map((p) => [p.name, p.version, p.outPaths, p.source]), closure: g.closure.paths, image: g.image.sha256 });
      expect(content(b)).toEqual(content(a));
      expect(imageSha(other)).toBe(imageSha(ns));
    } finally {
      other.close();
    }
  });
});
