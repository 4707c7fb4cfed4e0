import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { mkdtemp, rm, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { runTransaction, type StepOverrides } from "../../../src/machine/transaction.js";
import { layout, type Layout } from "../../../src/base/layout.js";
import { ensureStateDirs, readCurrent, writeCurrent } from "../../../src/generations/store.js";
import { linkActiveImage } from "../../../src/sysext/link.js";
import { imagePath } from "../../../src/base/layout.js";
import { silentReporter } from "../../../src/base/reporter.js";
import { systemdArchitecture, STAGING_VERSION } from "../../../src/image/index.js";
import { nixSystem } from "../../../src/nix/index.js";
import type { TxEnv, TxRequest } from "../../../src/machine/types.js";
import type { GenerationRecord } from "../../../src/generations/record.js";
import { OFFLINE_NIX_CONFIG } from "../../helpers/nix-env.js";
import { buildImage } from "../../../src/pipeline/index.js";
import { publicationFiles } from "../../../src/pipeline/publication.js";

// Fault injection through the machine: real Nix, real staging and packing under a temporary --root;
// systemd-sysext is replaced by a recorder (merging is tested for real in test/integration), and the
// post-merge check by a pass, since nothing is merged here.

const FIXTURES = `path:${new URL("../../fixtures", import.meta.url).pathname}`;

let root: string;
let l: Layout;
let refreshes: number;

function env(): TxEnv {
  return {
    layout: l,
    nix: { store: { root: "/" }, system: nixSystem(), env: { NIX_CONFIG: OFFLINE_NIX_CONFIG } },
    source: FIXTURES,
    extensionName: "ext",
    compression: "lz4",
    architecture: systemdArchitecture(),
    command: "ext test",
    reporter: silentReporter,
    refresh: async () => {
      refreshes++;
    },
  };
}

const passingCheck = async () => {};

async function run(request: TxRequest, overrides: StepOverrides = {}) {
  return runTransaction(env(), request, { overrides: { check: passingCheck, ...overrides } });
}

/** Every file under the state directories with its content (images by size), and the link's inode.
 *  Not the stage cache (/var/lib/ext/staged): it only saves time, and a transaction that fails after
 *  taking trees from it loses them with its stage. What it must stay is consistent (cacheProblems). */
async function snapshotState(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(dir: string): Promise<void> {
    if (dir === l.stageCacheDir) return;
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = join(dir, n);
      const s = await stat(p);
      if (s.isDirectory()) await walk(p);
      else out[p.slice(root.length)] = p.endsWith(".raw") ? `raw:${s.size}:${s.ino}` : p.endsWith("lock") ? "lock" : await readFile(p, "utf8");
    }
  }
  await walk(join(root, "var"));
  return out;
}

/** A record without its tree or a tree without its record in the stage cache (.boot-id says which
 *  boot kept them; it is neither). */
async function cacheProblems(): Promise<string[]> {
  const dir = join(l.stageCacheDir, `v${STAGING_VERSION}`);
  const names = new Set((await readdir(dir).catch(() => [] as string[])).filter((n) => n !== ".boot-id"));
  const problems: string[] = [];
  for (const n of names) {
    if (n.endsWith(".json") && !names.has(n.slice(0, -5))) problems.push(`record without tree: ${n}`);
    if (!n.endsWith(".json") && !names.has(`${n}.json`)) problems.push(`tree without record: ${n}`);
  }
  return problems;
}

const boom = (phase: string) => async () => {
  throw new Error(`injected at ${phase}`);
};

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "ext-machine-"));
  l = layout(root);
  refreshes = 0;
  await ensureStateDirs(l);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("transaction machine", () => {
  it("builds, commits, links and points current at a new generation", async () => {
    const outcome = await run({ kind: "add", packages: [{ name: "hello" }] });
    expect(outcome.status).toBe("done");
    const record = (outcome as { record: GenerationRecord }).record;
    expect(record.id).toBe(1);
    expect(record.packages.map((p) => p.name)).toEqual(["hello"]);
    expect(await readCurrent(l)).toBe(1);
    const linked = await stat(join(l.extensionsDir, "ext.raw"));
    expect(linked.ino).toBe((await stat(imagePath(l, record.image!.sha256))).ino);
    expect(refreshes).toBe(1);
    await expect(stat(l.journalFile)).rejects.toThrow();
    expect(await readdir(l.tmpDir)).toEqual([]);
    // What was staged is kept for the next transaction, one tree and one record per store path.
    const kept = await readdir(join(l.stageCacheDir, `v${STAGING_VERSION}`));
    expect(kept).toContain(".boot-id");
    // A tree and a record per store path, the farm's trees and record, and .boot-id.
    expect(kept.length).toBe(2 * record.closure.paths.length + 3);
    expect(await cacheProblems()).toEqual([]);
  });

  it("a request that changes nothing ends at once and leaves no journal", async () => {
    await run({ kind: "add", packages: [{ name: "hello" }] });
    const before = await snapshotState();
    const outcome = await run({ kind: "add", packages: [{ name: "hello" }] }, { realise: boom("realise") });
    expect(outcome.status).toBe("noop");
    expect(await snapshotState()).toEqual(before);
  });

  const steps = ["plan", "prepare", "realise", "close", "reuse", "stage", "pack", "describe", "verify", "commit", "activate", "check", "finalize"] as const;
  for (const phase of steps) {
    it(`a failure at ${phase} leaves the active set and the state on disk as they were`, async () => {
      await run({ kind: "add", packages: [{ name: "hello" }] });
      const before = await snapshotState();
      const outcome = await run({ kind: "add", packages: [{ name: "greet" }] }, { [phase]: boom(phase) });
      expect(outcome.status).toBe("failed");
      expect(String((outcome as { error: Error }).error.message)).toBe(`injected at ${phase}`);
      expect(await snapshotState()).toEqual(before);
      expect(await cacheProblems()).toEqual([]);
    });
  }

  it("a failure after the link was switched restores the previous image and merges again", async () => {
    await run({ kind: "add", packages: [{ name: "hello" }] });
    const before = await snapshotState();
    refreshes = 0;
    const switchThenFail: StepOverrides["activate"] = async ({ env, made }) => {
      await linkActiveImage(env.layout, "ext", imagePath(env.layout, made.record!.image!.sha256));
      throw new Error("refresh failed");
    };
    const outcome = await run({ kind: "add", packages: [{ name: "greet" }] }, { activate: switchThenFail });
    expect(outcome.status).toBe("failed");
    expect(refreshes).toBe(1);
    expect(await snapshotState()).toEqual(before);
  });

  it("a failure in finalize after current moved puts current, the link and the records back", async () => {
    await run({ kind: "add", packages: [{ name: "hello" }] });
    const before = snapshotState();
    const movedThenFailed: StepOverrides["finalize"] = async ({ env, journal }) => {
      await writeCurrent(env.layout, journal.data.nextGeneration!);
      throw new Error("no space left on device");
    };
    const outcome = await run({ kind: "add", packages: [{ name: "greet" }] }, { finalize: movedThenFailed });
    expect(outcome.status).toBe("failed");
    expect(await readCurrent(l)).toBe(1);
    expect(await snapshotState()).toEqual(await before);
  });

  it("rollback switches to an existing generation without building", async () => {
    await run({ kind: "add", packages: [{ name: "hello" }] });
    await run({ kind: "add", packages: [{ name: "greet" }] });
    const outcome = await run({ kind: "switch", generation: 1 }, { realise: boom("realise"), stage: boom("stage"), pack: boom("pack") });
    expect(outcome.status).toBe("done");
    expect(await readCurrent(l)).toBe(1);
    expect((await readdir(l.generationsDir)).sort()).toEqual(["1.json", "2.json"]);
  });

  /** An image as `ext publish` makes it: the one pipeline, with its description in the stage. */
  async function published(version: string): Promise<string> {
    const dir = await mkdtemp(join(root, "published-"));
    const e = env();
    const built = await buildImage(e, {
      specs: [{ name: "hello" }], source: FIXTURES, output: join(dir, "ext.raw"), nix: e.nix, hostRoot: root,
      extraFiles: (s) => publicationFiles({ format: 1, name: s.extensionName, version, compression: s.compression, packages: s.packages, narSize: s.narSize }),
    }, silentReporter);
    return built.packed.path;
  }

  it("an import goes plan → import → verify → commit → activate → check → finalize and records its origin", async () => {
    const image = await published("7");
    const entered: string[] = [];
    const outcome = await runTransaction({ ...env(), hooks: { beforeStep: (s) => void entered.push(s) } },
      { kind: "import", image, version: "7", url: "http://fleet.test/ext" }, { overrides: { check: passingCheck } });
    expect(outcome.status).toBe("done");
    expect(entered).toEqual(["plan", "import", "verify", "commit", "activate", "check", "finalize"]);
    const record = (outcome as { record: GenerationRecord }).record;
    expect(record.origin).toEqual({ url: "http://fleet.test/ext", version: "7" });
    expect(record.packages.map((p) => p.name)).toEqual(["hello"]);
    expect(JSON.parse(await readFile(join(l.generationsDir, "1.json"), "utf8")).origin.version).toBe("7");
    expect(await readCurrent(l)).toBe(1);
    expect((await stat(join(l.extensionsDir, "ext.raw"))).ino).toBe((await stat(imagePath(l, record.image!.sha256))).ino);
  });

  for (const phase of ["import", "verify", "commit", "activate"] as const) {
    it(`an import that fails at ${phase} leaves the state on disk as it was (the image it brought in goes)`, async () => {
      await run({ kind: "add", packages: [{ name: "greet" }] });
      const image = await published("8");
      const before = await snapshotState();
      const outcome = await run({ kind: "import", image, version: "8", url: "http://fleet.test/ext" }, { [phase]: boom(phase) });
      expect(outcome.status).toBe("failed");
      expect(await snapshotState()).toEqual(before);
    });
  }
});
