import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { posix } from "node:path";
import { errnoCode } from "../errors.js";
import { readBootId } from "../base/boot-id.js";
import type { HostView } from "./host.js";
import { STAGE_STORE_REL, storeBaseName } from "./store-paths.js";
import type { StagedPath } from "./types.js";
import { STAGING_VERSION } from "./version.js";

// The stage cache: relocated store paths kept from one transaction to the next.
//
// Why: one image per generation means every `ext add` stages the whole closure again, and staging is
// bound by the number of entries it creates, not by bytes (on the bench's ext4 ~0.5 ms per entry:
// 7 600 files took 4–5 s, where reading and rewriting their 474 MiB took ~1.5 s). A store path's
// relocated tree depends on nothing but the path (same path, same content; /nix/store → /usr/store is
// a same-length rewrite) and STAGING_VERSION. So after packing, each path's tree is *renamed* into the
// cache — one rename per store path, instead of deleting thousands of files — and the next stage
// renames it back. A new generation creates entries only for store paths it has not staged before.
//
// Same bytes: a stage assembled from the cache holds the same entries, contents and modes as one staged
// from scratch. The one other thing staging decides is which files are hard links to the store: a
// store inode is linked at most once per stage (copy.ts), so two cached trees that link the same inode
// are not combined (the second is staged again), and fresh staging copies what a cached tree links.
// mkfs.erofs counts links inside the tree only, so which of two files is the link does not change the
// image (test/integration/stage-cache.test.ts and bench/ compare sha256s).
//
// Crash safety: an entry is a tree and its record (<base>.json). keep() moves the tree in first and
// writes the record last; take() removes the record first and moves the tree out last. A tree without
// a record, or a record without a tree, is dropped by the next keep(). Trees that are in a stage when
// the process dies go with the stage (the journal's temporary files) and are staged again next time.
// Nothing here is fsynced (staging never was: mkfs.erofs read the files from the page cache), so after
// a power loss a kept file could come back empty. The cache therefore belongs to one boot: keep()
// writes the boot id (.boot-id), and take() uses nothing kept during another boot.
//
// The farm (usr/bin, usr/share/man/…: links into usr/store) is kept too, as one set of trees with the
// plan it was made from: the next stage takes it back and changes only the links that differ
// (farm.ts, buildFarm), instead of making and deleting ~1 000 links per add with 14 packages installed.
//
// Layout: <cacheDir>/v<STAGING_VERSION>/<hash>-<name>/ (the tree as usr/store/<hash>-<name>) and
// <hash>-<name>.json (its StagedPath); farm/ (the stage's usr/ without store/ and lib/) and farm.json
// (its FarmRecord). Only the last staged closure is kept: the cache never holds more
// than the current image's store paths, in the size of the files that had to be rewritten (the rest
// are hard links into the store). `ext gc` removes it.

const RECORD = ".json";
const BOOT_ID = ".boot-id";
/** The farm's trees (a name no store path has: those are <hash>-<name>) and, with RECORD, its record. */
const FARM = "farm";

/** A farm as the stage cache keeps it beside the farm's tree: what updateFarm compares the next plan
 *  with. `tops` are its directories directly below usr/ (usr/bin, usr/share, …), the trees kept. */
export interface FarmRecord {
  links: { rel: string; target: string; wrapper?: string }[];
  directories: string[];
  tops: string[];
}

/** Whether a record read back from the cache has the shape farmRecord gives (anything else: no farm). */
export function isFarmRecord(v: unknown): v is FarmRecord {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Partial<FarmRecord>;
  const strings = (a: unknown) => Array.isArray(a) && a.every((x) => typeof x === "string" && isFarmPath(x));
  return strings(r.directories) && strings(r.tops) && Array.isArray(r.links) && r.links.every((l: unknown) => {
    const link = l as Partial<FarmRecord["links"][number]>;
    return typeof link === "object" && link !== null && typeof link.rel === "string" && isFarmPath(link.rel) && typeof link.target === "string" &&
      (link.wrapper === undefined || typeof link.wrapper === "string");
  });
}

/** A path below usr/ that is not the store or the release directory, with no way out of the stage. */
function isFarmPath(rel: string): boolean {
  const parts = rel.split("/");
  return parts[0] === "usr" && parts.length >= 2 && !["store", "lib"].includes(parts[1]!) && parts.every((p) => p !== "" && p !== "." && p !== "..");
}

/** Where the entries of this STAGING_VERSION are. */
export function versionDir(cacheDir: string): string {
  return posix.join(cacheDir, `v${STAGING_VERSION}`);
}

/** How many store paths the cache holds, from the names in versionDir(): one record per whole tree. */
export function cachedPathCount(names: readonly string[]): number {
  return names.filter((n) => n.endsWith(RECORD) && n !== FARM + RECORD).length;
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw e;
  }
}

function parseRecord(text: string, logical: string): StagedPath | null {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof r !== "object" || r === null) return null;
  const rec = r as Partial<StagedPath>;
  const counts = ["files", "bytes", "rewritten", "symlinks", "rewrittenLinks", "directories"] as const;
  if (rec.path !== logical || counts.some((k) => typeof rec[k] !== "number")) return null;
  if (!Array.isArray(rec.linkedInodes) || !rec.linkedInodes.every((i) => typeof i === "string")) return null;
  if (!Array.isArray(rec.opaqueReferences) || !Array.isArray(rec.relocatedContainers)) return null;
  return rec as StagedPath;
}

/**
 * Moves the cached trees of `closure` to `<storeRoot>/<hash>-<name>` and returns their records, by
 * logical path. What is not taken (not cached, damaged, kept during another boot, or linking an inode
 * another taken tree links) is for the caller to stage. `host` refuses a tree where the host's /usr/store/<path> is not a
 * directory, as staging it would; below that, the host can only show an earlier merge of the same
 * store path, i.e. the same tree.
 */
export async function takeStaged(cacheDir: string, closure: readonly string[], storeRoot: string, host: HostView, bootId?: string): Promise<Map<string, StagedPath>> {
  const dir = versionDir(cacheDir);
  const names = new Set(await listNames(dir));
  const taken = new Map<string, StagedPath>();
  if (!(await sameBoot(dir, names, bootId))) return taken;
  // The records are read, and the trees moved, all at once: each is a file system call the main
  // thread would otherwise wait for in turn (with 14 packages installed, ~60 of each).
  const candidates = [...closure].sort().filter((logical) => names.has(storeBaseName(logical)) && names.has(storeBaseName(logical) + RECORD));
  const records = await Promise.all(candidates.map(async (logical) => parseRecord(await readFile(posix.join(dir, storeBaseName(logical) + RECORD), "utf8"), logical)));
  // Which trees to take is decided in order: a store inode is linked at most once per stage.
  const inodes = new Set<string>();
  const chosen: StagedPath[] = [];
  for (const record of records) {
    if (record === null || record.linkedInodes.some((i) => inodes.has(i))) continue;
    for (const i of record.linkedInodes) inodes.add(i);
    chosen.push(record);
  }
  await Promise.all(chosen.map((r) => host.assertDirectoryAllowed(`${STAGE_STORE_REL}/${storeBaseName(r.path)}`)));
  await Promise.all(chosen.map(async (record) => {
    const base = storeBaseName(record.path);
    await unlink(posix.join(dir, base + RECORD));
    try {
      await rename(posix.join(dir, base), posix.join(storeRoot, base));
    } catch (e) {
      // Another file system (a bind mount in between): the cache cannot help here.
      if (errnoCode(e) === "EXDEV" || errnoCode(e) === "ENOENT") return;
      throw e;
    }
    taken.set(record.path, record);
  }));
  return new Map([...taken].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

async function sameBoot(dir: string, names: ReadonlySet<string>, bootId?: string): Promise<boolean> {
  return names.has(BOOT_ID) && (await readFile(posix.join(dir, BOOT_ID), "utf8")) === (await readBootId(bootId));
}

/**
 * The farm of the last stage (its directories below usr/: bin, share, …) moved back into `usrDir`,
 * with its record, or undefined (none kept, damaged, another boot): buildFarm then makes it whole.
 * Like a store path's tree, its record goes first and the trees last.
 */
export async function takeFarm(cacheDir: string, usrDir: string, bootId?: string): Promise<FarmRecord | undefined> {
  const dir = versionDir(cacheDir);
  const names = new Set(await listNames(dir));
  if (!names.has(FARM + RECORD) || !names.has(FARM) || !(await sameBoot(dir, names, bootId))) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(await readFile(posix.join(dir, FARM + RECORD), "utf8"));
  } catch {
    return undefined;
  }
  await unlink(posix.join(dir, FARM + RECORD));
  if (!isFarmRecord(record)) return undefined;
  const moved: string[] = [];
  try {
    for (const top of record.tops) {
      await rename(posix.join(dir, FARM, posix.basename(top)), posix.join(usrDir, posix.basename(top)));
      moved.push(posix.join(usrDir, posix.basename(top)));
    }
  } catch (e) {
    // A top missing (a damaged cache) or on another file system: what came goes, the farm is made anew.
    if (errnoCode(e) !== "EXDEV" && errnoCode(e) !== "ENOENT") throw e;
    await Promise.all(moved.map((m) => rm(m, { recursive: true, force: true })));
    return undefined;
  }
  // Nothing of it stays in the cache (a stray file in farm/ included): the stage has it now.
  await rm(posix.join(dir, FARM), { recursive: true, force: true });
  return record;
}

/**
 * After packing: moves the trees of `paths` from `<storeRoot>` into the cache, with their records, and
 * drops every other entry (store paths no longer in the image, an older STAGING_VERSION, leftovers).
 */
export async function keepStaged(cacheDir: string, storeRoot: string, paths: readonly StagedPath[], bootId?: string, farm?: { usrDir: string; record: FarmRecord }): Promise<void> {
  const dir = versionDir(cacheDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const other of await listNames(cacheDir)) {
    if (posix.join(cacheDir, other) !== dir) await rm(posix.join(cacheDir, other), { recursive: true, force: true });
  }
  // Whatever is still in the cache was not taken by this stage: store paths no longer in the image,
  // trees that overlapped another, a farm that was not taken, leftovers of a crash. This stage's replace it.
  await Promise.all((await listNames(dir)).map((name) => rm(posix.join(dir, name), { recursive: true, force: true })));
  await writeFile(posix.join(dir, BOOT_ID), await readBootId(bootId));
  await Promise.all(paths.map(async (record) => {
    const base = storeBaseName(record.path);
    // The tree first, its record last: a record always names a whole tree.
    await rename(posix.join(storeRoot, base), posix.join(dir, base));
    await writeRecord(dir, base, record);
  }));
  if (farm === undefined || !isFarmRecord(farm.record)) return;
  await mkdir(posix.join(dir, FARM), { mode: 0o700 });
  for (const top of farm.record.tops) await rename(posix.join(farm.usrDir, posix.basename(top)), posix.join(dir, FARM, posix.basename(top)));
  await writeRecord(dir, FARM, farm.record);
}

async function writeRecord(dir: string, base: string, record: unknown): Promise<void> {
  const tmp = posix.join(dir, `.${base}${RECORD}.tmp`);
  await writeFile(tmp, JSON.stringify(record));
  await rename(tmp, posix.join(dir, base + RECORD));
}

/** Removes the whole cache (`ext gc`; or after an error while keeping, so nothing half-kept stays). */
export async function clearStageCache(cacheDir: string): Promise<void> {
  await rm(cacheDir, { recursive: true, force: true });
}
