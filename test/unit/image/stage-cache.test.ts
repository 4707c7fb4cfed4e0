import { afterEach, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stage } from "../../../src/image/stage.js";
import { cachedPathCount, keepStaged, takeStaged, type FarmRecord } from "../../../src/image/stage-cache.js";
import { readBootId } from "../../../src/boot/cmdline.js";
import { HostView } from "../../../src/image/host.js";
import { UnsafeImageError } from "../../../src/errors.js";
import type { ClosureEntry } from "../../../src/nix/types.js";
import type { StagedPath, StageOptions } from "../../../src/image/types.js";
import { STAGING_VERSION } from "../../../src/image/version.js";
import { storePath, tempDirs, writeHost, writeStore } from "./helpers.js";

// The stage cache must never change what is staged. These tests compare a tree assembled with the
// cache against one staged from scratch, entry by entry: type, mode, content, link target, and which
// entries share an inode *inside* the tree (what mkfs.erofs turns into hard links in the image).

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const BASE = (name: string) => storePath(name).slice("/nix/store/".length);

/** Everything of a staged tree that reaches the image. */
function describeTree(root: string): string[] {
  const out: string[] = [];
  const inodes = new Map<number, string>();
  (function walk(dir: string, rel: string) {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.push(`d ${mode} ${r}`);
        walk(full, r);
      } else if (st.isSymbolicLink()) {
        out.push(`l ${r} -> ${readlinkSync(full)}`);
      } else {
        const shared = inodes.get(st.ino);
        if (shared === undefined) inodes.set(st.ino, r);
        const sha = createHash("sha256").update(readFileSync(full)).digest("hex").slice(0, 16);
        out.push(`f ${mode} ${r} ${sha}${shared ? ` same inode as ${shared}` : ""}`);
      }
    }
  })(root, "");
  return out;
}

function setup() {
  const root = dirs.make("store");
  const host = writeHost(dirs.make("host"), { dirs: ["usr/bin"] });
  const closure = writeStore(root, {
    liba: { "lib/liba.so": "plain library\n", "share/ref": "see /nix/store/aaaa\n" },
    tool: { "bin/tool": { exec: "#!/bin/sh\necho tool\n" }, "lib/data": "data\n" },
    other: { "bin/other": { exec: "#!/nix/store/x/bin/sh\n" }, "share/same": "identical bytes\n" },
  });
  // As `nix-store --optimise` leaves a store: one inode under two store paths.
  linkSync(join(root, storePath("other"), "share/same"), join(root, storePath("tool"), "share-same"));
  const byName = (...names: string[]): ClosureEntry[] => closure.filter((c) => names.some((n) => c.path.endsWith(`-${n}`)));
  let n = 0;
  const run = async (entries: ClosureEntry[], options: StageOptions) => {
    const stageDir = join(dirs.make("stage"), `s${n++}`);
    const report = await stage({
      closure: entries, packages: [], store: { root }, stageDir, extensionName: "t", architecture: "x86-64", hostRoot: host,
    }, options);
    return { stageDir, report };
  };
  return { root, host, byName, run };
}

describe("stage cache", () => {
  it("a stage assembled from the cache equals a fresh one, also where the store shares an inode between paths", async () => {
    const { byName, run } = setup();
    const cacheDir = dirs.make("cache");
    const cached = { reuse: "link" as const, cacheDir };

    // First the paths one at a time, kept after each stage as a transaction does after packing.
    const first = await run(byName("tool"), cached);
    await keepStaged(cacheDir, join(first.stageDir, "usr/store"), first.report.paths);
    const second = await run(byName("tool", "other", "liba"), cached);
    expect(second.report.fromCache).toBe(1);
    const fresh = await run(byName("tool", "other", "liba"), { reuse: "link" });
    expect(fresh.report.fromCache).toBe(0);

    const assembled = describeTree(second.stageDir);
    expect(assembled).toEqual(describeTree(fresh.stageDir));
    expect(assembled.some((l) => l.includes("same inode"))).toBe(false);
    const { paths: _a, fromCache: _b, ...totals } = second.report;
    const { paths: _c, fromCache: _d, ...freshTotals } = fresh.report;
    expect(totals).toEqual(freshTotals);
    expect(second.report.paths).toEqual(fresh.report.paths.map((p) => ({ ...p, linkedInodes: expect.any(Array) })));
  });

  it("keep moves trees into the cache and drops everything else; take moves them back", async () => {
    const { byName, run } = setup();
    const cacheDir = dirs.make("cache");
    mkdirSync(join(cacheDir, "v0/old"), { recursive: true });
    const a = await run(byName("tool", "liba"), { cacheDir });
    const inode = lstatSync(join(a.stageDir, "usr/store", BASE("tool"), "lib/data")).ino;
    await keepStaged(cacheDir, join(a.stageDir, "usr/store"), a.report.paths);
    expect(readdirSync(cacheDir)).toEqual([`v${STAGING_VERSION}`]);
    expect(readdirSync(join(cacheDir, `v${STAGING_VERSION}`)).sort()).toEqual([".boot-id", BASE("liba"), `${BASE("liba")}.json`, BASE("tool"), `${BASE("tool")}.json`].sort());
    expect(readdirSync(join(a.stageDir, "usr/store"))).toEqual([]);

    const b = await run(byName("tool", "other"), { cacheDir });
    expect(b.report.fromCache).toBe(1);
    expect(lstatSync(join(b.stageDir, "usr/store", BASE("tool"), "lib/data")).ino).toBe(inode);
    await keepStaged(cacheDir, join(b.stageDir, "usr/store"), b.report.paths);
    expect(readdirSync(join(cacheDir, `v${STAGING_VERSION}`)).sort()).toEqual([".boot-id", BASE("other"), `${BASE("other")}.json`, BASE("tool"), `${BASE("tool")}.json`].sort());
  });

  it("takes nothing that is damaged or that links an inode another taken tree links", async () => {
    const { host } = setup();
    const cacheDir = dirs.make("cache");
    const v1 = join(cacheDir, `v${STAGING_VERSION}`);
    const record = (name: string, linkedInodes: string[]): StagedPath => ({
      path: storePath(name), files: 1, bytes: 1, rewritten: 0, symlinks: 0, rewrittenLinks: 0, directories: 1, linkedInodes, opaqueReferences: [], relocatedContainers: [],
    });
    const entry = (name: string, rec: unknown, tree = true) => {
      if (tree) mkdirSync(join(v1, BASE(name), "bin"), { recursive: true });
      writeFileSync(join(v1, `${BASE(name)}.json`), typeof rec === "string" ? rec : JSON.stringify(rec));
    };
    entry("a", record("a", ["1:10"]));
    entry("b", record("b", ["1:10"])); // the same inode as a
    entry("c", "{broken");
    entry("d", record("elsewhere", []));
    entry("e", record("e", []), false); // no tree
    mkdirSync(join(v1, BASE("f"))); // no record
    writeFileSync(join(v1, ".boot-id"), await readBootId());
    const storeRoot = dirs.make("stage");
    const taken = await takeStaged(cacheDir, ["a", "b", "c", "d", "e", "f"].map(storePath), storeRoot, new HostView(host));
    expect([...taken.keys()]).toEqual([storePath("a")]);
    expect(readdirSync(storeRoot)).toEqual([BASE("a")]);
  });

  it("uses nothing kept during another boot (kept files are not fsynced: a power loss could empty them)", async () => {
    const { byName, run, host } = setup();
    const cacheDir = dirs.make("cache");
    const a = await run(byName("tool"), { cacheDir });
    await keepStaged(cacheDir, join(a.stageDir, "usr/store"), a.report.paths);
    const storeRoot = dirs.make("stage");
    expect((await takeStaged(cacheDir, [storePath("tool")], storeRoot, new HostView(host), "another-boot")).size).toBe(0);
    expect(readdirSync(storeRoot)).toEqual([]);
    expect((await takeStaged(cacheDir, [storePath("tool")], storeRoot, new HostView(host))).size).toBe(1);
  });

  it("refuses a cached tree where the host has a file, as staging would", async () => {
    const { byName, run } = setup();
    const cacheDir = dirs.make("cache");
    const a = await run(byName("tool"), { cacheDir });
    await keepStaged(cacheDir, join(a.stageDir, "usr/store"), a.report.paths);
    const host = writeHost(dirs.make("host"), { files: [`usr/store/${BASE("tool")}`] });
    await expect(takeStaged(cacheDir, [storePath("tool")], dirs.make("stage"), new HostView(host))).rejects.toThrow(UnsafeImageError);
  });

  describe("the farm", () => {
    // Packages with commands, man pages in two sections and a python (a wrapper, not a link).
    function farmSetup() {
      const root = dirs.make("store");
      const host = writeHost(dirs.make("host"), { dirs: ["usr/bin"] });
      const closure = writeStore(root, {
        tool: { "bin/tool": { exec: "#!/bin/sh\n" }, "share/man/man1/tool.1": "tool\n", "share/man/man5/tool.conf.5": "conf\n" },
        other: { "bin/other": { exec: "#!/bin/sh\n" }, "bin/both": { exec: "#!/bin/sh\n" }, "share/man/man1/other.1": "other\n" },
        py: { "bin/python3": { exec: "\x7fELF" }, "lib/python3.11/os.py": "# os\n" },
      });
      const pkg = (name: string, priority = 0) => ({ name, outPaths: [storePath(name)], priority });
      let n = 0;
      const run = async (names: string[], options: StageOptions, priorities: Record<string, number> = {}) => {
        const stageDir = join(dirs.make("stage"), `s${n++}`);
        const report = await stage({
          closure: closure.filter((c) => names.some((x) => c.path.endsWith(`-${x}`))), packages: names.map((x) => pkg(x, priorities[x])),
          store: { root }, stageDir, extensionName: "t", architecture: "x86-64", hostRoot: host,
        }, options);
        return { stageDir, report };
      };
      const keep = (cacheDir: string, s: { stageDir: string; report: { paths: StagedPath[]; farm: FarmRecord } }) =>
        keepStaged(cacheDir, join(s.stageDir, "usr/store"), s.report.paths, undefined, { usrDir: join(s.stageDir, "usr"), record: s.report.farm });
      return { run, keep };
    }

    it("is kept and taken back: an add makes only its own links, a removal takes its links and emptied directories away; each equals a fresh stage", async () => {
      const { run, keep } = farmSetup();
      const cacheDir = dirs.make("cache");
      const a = await run(["tool", "py"], { cacheDir });
      expect(a.report.links.sort()).toEqual(["usr/bin/python3", "usr/bin/tool", "usr/share/man/man1/tool.1", "usr/share/man/man5/tool.conf.5"]);
      const toolLink = lstatSync(join(a.stageDir, "usr/bin/tool")).ino;
      await keep(cacheDir, a);
      expect(readdirSync(join(cacheDir, `v${STAGING_VERSION}`))).toEqual(expect.arrayContaining(["farm", "farm.json"]));
      expect(readdirSync(join(cacheDir, `v${STAGING_VERSION}`, "farm")).sort()).toEqual(["bin", "share"]);

      // An add: the kept link is the same inode (taken back, not made again), the new ones are there.
      const b = await run(["tool", "py", "other"], { cacheDir });
      expect(lstatSync(join(b.stageDir, "usr/bin/tool")).ino).toBe(toolLink);
      expect(describeTree(b.stageDir)).toEqual(describeTree((await run(["tool", "py", "other"], {})).stageDir));
      await keep(cacheDir, b);

      // A removal: tool's links go, and man5, which only tool had.
      const c = await run(["py", "other"], { cacheDir });
      expect(existsSync(join(c.stageDir, "usr/share/man/man5"))).toBe(false);
      expect(describeTree(c.stageDir)).toEqual(describeTree((await run(["py", "other"], {})).stageDir));
      await keep(cacheDir, c);

      // A link whose target changes (a priority decides a name two packages have): made anew.
      const d = await run(["py", "other", "tool"], { cacheDir }, { tool: 1 });
      expect(describeTree(d.stageDir)).toEqual(describeTree((await run(["py", "other", "tool"], {}, { tool: 1 })).stageDir));
    });

    it("a damaged farm in the cache costs a farm made from scratch, never another tree", async () => {
      const { run, keep } = farmSetup();
      const cacheDir = dirs.make("cache");
      const farm = join(cacheDir, `v${STAGING_VERSION}`, "farm");
      const fresh = describeTree((await run(["tool", "other"], {})).stageDir);
      const damage: ((dir: string) => void)[] = [
        (d) => rmSync(join(d, "bin/tool")), // a link missing
        (d) => writeFileSync(join(d, "bin/stray"), "x"), // a file the plan does not have
        (d) => rmSync(join(d, "share"), { recursive: true }), // a whole top missing
        (d) => writeFileSync(join(d, "..", "farm.json"), "{broken"), // its record
        (d) => writeFileSync(join(d, "..", "farm.json"), JSON.stringify({ links: [{ rel: "usr/../../etc/x", target: "/x" }], directories: [], tops: [] })),
      ];
      for (const harm of damage) {
        const a = await run(["tool"], { cacheDir });
        await keep(cacheDir, a);
        harm(farm);
        const b = await run(["tool", "other"], { cacheDir });
        expect(describeTree(b.stageDir)).toEqual(fresh);
        await keep(cacheDir, b);
        rmSync(cacheDir, { recursive: true });
        mkdirSync(cacheDir);
      }
    });

    it("is not used after a reboot, and is not counted as a store path", async () => {
      const { run, keep } = farmSetup();
      const cacheDir = dirs.make("cache");
      const a = await run(["tool"], { cacheDir });
      await keep(cacheDir, a);
      const ino = lstatSync(join(cacheDir, `v${STAGING_VERSION}`, "farm/bin/tool")).ino;
      expect(cachedPathCount(readdirSync(join(cacheDir, `v${STAGING_VERSION}`)))).toBe(1);
      const b = await run(["tool"], { cacheDir, bootId: "another-boot" });
      expect(lstatSync(join(b.stageDir, "usr/bin/tool")).ino).not.toBe(ino);
      expect(describeTree(b.stageDir)).toEqual(describeTree((await run(["tool"], {})).stageDir));
    });
  });
});
