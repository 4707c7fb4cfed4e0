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
// Layout: <cacheDir>/v<STAGING_VERSION>/<hash>-<name>/ (the tree as usr/store/<hash>-<name>) and
// <hash>-<name>.json (its StagedPath). Only the last staged closure is kept: the cache never holds more
// than the current image's store paths, in the size of the files that had to be rewritten (the rest
// are hard links into the store). `ext gc` removes it.

const RECORD = ".json";
const BOOT_ID = ".boot-id";

/** Where the entries of this STAGING_VERSION are. */
export function versionDir(cacheDir: string): string {
  return posix.join(cacheDir, `v${STAGING_VERSION}`);
}

/** How many store paths the cache holds, from the names in versionDir(): one record per whole tree. */
export function cachedPathCount(names: readonly string[]): number {
  return names.filter((n) => n.endsWith(RECORD)).length;
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
  if (!names.has(BOOT_ID) || (await readFile(posix.join(dir, BOOT_ID), "utf8")) !== (await readBootId(bootId))) return taken;
  const inodes = new Set<string>();
  for (const logical of [...closure].sort()) {
    const base = storeBaseName(logical);
    if (!names.has(base) || !names.has(base + RECORD)) continue;
    const record = parseRecord(await readFile(posix.join(dir, base + RECORD), "utf8"), logical);
    if (record === null || record.linkedInodes.some((i) => inodes.has(i))) continue;
    await host.assertDirectoryAllowed(`${STAGE_STORE_REL}/${base}`);
    await unlink(posix.join(dir, base + RECORD));
    try {
      await rename(posix.join(dir, base), posix.join(storeRoot, base));
    } catch (e) {
      // Another file system (a bind mount in between): the cache cannot help here.
      if (errnoCode(e) === "EXDEV" || errnoCode(e) === "ENOENT") continue;
      throw e;
    }
    for (const i of record.linkedInodes) inodes.add(i);
    taken.set(logical, record);
  }
  return taken;
}

/**
 * After packing: moves the trees of `paths` from `<storeRoot>` into the cache, with their records, and
 * drops every other entry (store paths no longer in the image, an older STAGING_VERSION, leftovers).
 */
export async function keepStaged(cacheDir: string, storeRoot: string, paths: readonly StagedPath[], bootId?: string): Promise<void> {
  const dir = versionDir(cacheDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const other of await listNames(cacheDir)) {
    if (posix.join(cacheDir, other) !== dir) await rm(posix.join(cacheDir, other), { recursive: true, force: true });
  }
  // Whatever is still in the cache was not taken by this stage: store paths no longer in the image,
  // trees that overlapped another, leftovers of a crash. The trees of this stage replace it.
  for (const name of await listNames(dir)) await rm(posix.join(dir, name), { recursive: true, force: true });
  await writeFile(posix.join(dir, BOOT_ID), await readBootId(bootId));
  for (const record of paths) {
    const base = storeBaseName(record.path);
    // The tree first, its record last: a record always names a whole tree.
    await rename(posix.join(storeRoot, base), posix.join(dir, base));
    const tmp = posix.join(dir, `.${base}${RECORD}.tmp`);
    await writeFile(tmp, JSON.stringify(record));
    await rename(tmp, posix.join(dir, base + RECORD));
  }
}

/** Removes the whole cache (`ext gc`; or after an error while keeping, so nothing half-kept stays). */
export async function clearStageCache(cacheDir: string): Promise<void> {
  await rm(cacheDir, { recursive: true, force: true });
}
