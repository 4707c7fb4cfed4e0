import { constants } from "node:fs";
import { copyFile, lstat, readdir, readFile, readlink, unlink, writeFile } from "node:fs/promises";
import { posix } from "node:path";
import { fsyncFile } from "../fsutil.js";
import { run } from "../exec.js";
import { mkfsCapabilities, resolveCompression, workerArguments } from "./compressors.js";
import { ErofsImage, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from "./erofs-reader.js";
import { finishImage, mkfsArguments, sha256File } from "./pack.js";
import { STAGE_STORE_REL } from "./store-paths.js";
import type { Compression, PackResult } from "./types.js";

// Appending: a new generation that only adds store paths and farm links is packed as the previous
// image plus the new entries, given to mkfs.erofs as a tar stream (`--incremental=data --tar=f`,
// erofs-utils ≥ 1.8; found by trying, compressors.ts). Checked with erofs-utils 1.8.6: the result
// holds the same entries as a full build of the same tree (names, types, modes, link targets,
// contents), not the same bytes; test/integration/append.test.ts compares them entry by entry.
//
// Only adding: mkfs.erofs would need whiteouts to remove an entry, and a replaced entry (a farm link
// that now points elsewhere) is a removal and an addition. So the previous image's tree outside
// usr/store is compared with the new stage's: every entry must still be there, unchanged; and every
// store path it holds must still be in the closure (a store path's tree depends only on the path and
// STAGING_VERSION, which the caller checks through the image key). Anything else is packed in full.
//
// Directories a tar stream passes through without naming them are made with mode 0777 by mkfs.erofs
// 1.8.6 (seen in a probe): so every directory above a new entry is named in the stream, with its mode.

/** The previous image is never written: it is content-addressed and may be linked or active. */
export interface AppendInput {
  stageDir: string;
  output: string;
  compression: Compression;
}

/** What appending needs of the previous image, made before the stage exists (src/machine/steps/
 *  prepare.ts starts it while Nix runs): a copy of it to append to, its bytes checked against its
 *  record and already on disk, and its tree. */
export interface PreparedBase {
  /** The copy, in ext's tmp/; appendPack appends to it and renames it to the output. */
  copy: string;
  /** Its entries outside usr/store and its store path names; an Error where the image could not be
   *  read as EROFS (an imported verity DDI, newer features): then it is packed in full. */
  tree: [Map<string, Entry>, string[]] | Error;
}

export type AppendPlan =
  /** Entries of the stage (relative paths) to append; store paths' trees are appended whole. */
  | { kind: "append"; entries: string[]; storePaths: string[] }
  | { kind: "full"; reason: string };

export interface Entry {
  type: "dir" | "file" | "link" | "other";
  perm: number;
  /** A link's target or a file's content. */
  data?: string;
}

/** Can this machine's mkfs.erofs append at all (1.5 cannot). */
export async function canAppend(): Promise<boolean> {
  return (await mkfsCapabilities()).incremental;
}

/** What appending to `previous` would add to reach the stage, or why it cannot. */
export async function planAppend(base: PreparedBase, stageDir: string, closureBases: readonly string[]): Promise<AppendPlan> {
  // A reader that does not follow this image (a compressed release file, newer features) only
  // means packing in full.
  if (base.tree instanceof Error) return { kind: "full", reason: `the previous image could not be read (${base.tree.message})` };
  const [before, storedBefore] = base.tree;
  const [after, storedAfter] = await stageTree(stageDir);
  const closure = new Set(closureBases);
  const staged = new Set(storedAfter);
  for (const base of storedBefore) {
    if (!closure.has(base) || !staged.has(base)) return { kind: "full", reason: `store path ${base} is removed` };
  }
  for (const [rel, old] of before) {
    const now = after.get(rel);
    if (now === undefined) return { kind: "full", reason: `/${rel} is removed` };
    if (now.type !== old.type || now.perm !== old.perm || now.data !== old.data) return { kind: "full", reason: `/${rel} is replaced` };
  }
  const had = new Set(storedBefore);
  const storePaths = storedAfter.filter((b) => !had.has(b)).sort();
  const added = [...after.keys()].filter((rel) => !before.has(rel));
  // Every directory above an added entry, named (see above), the root included.
  const dirs = new Set<string>(["."]);
  for (const rel of [...added, ...storePaths.map((b) => `${STAGE_STORE_REL}/${b}`)]) {
    for (let d = posix.dirname(rel); d !== "."; d = posix.dirname(d)) dirs.add(d);
  }
  const entries = [...new Set([...dirs, ...added])].sort();
  return { kind: "append", entries, storePaths };
}

/** Copies `previous` to `copy` (a reflink where the file system has them), checks the bytes it
 *  copied against `previousSha256`, writes the copy out, and reads the previous image's tree, all
 *  at once. Built upon, damage in the previous bytes would be vouched for by the new image's own
 *  sha256: so a mismatch throws PreviousImageChanged, and the caller packs in full. */
export async function prepareBase(previous: string, previousSha256: string, copy: string): Promise<PreparedBase> {
  const treeOf = imageTree(previous).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  try {
    if ((await copyOf(previous, copy)) !== previousSha256) {
      throw new PreviousImageChanged(`${previous} does not have the bytes its record names`);
    }
    // The copied bytes written out now, while the caller has other work: finishImage's fsync is
    // then left with only what mkfs.erofs appends.
    await fsyncFile(copy);
    return { copy, tree: await treeOf };
  } catch (e) {
    await treeOf;
    await unlink(copy).catch(() => {});
    throw e;
  }
}

/** The plan's entries appended to the prepared copy of the previous image; atomically at `output`
 *  like pack(). The copy is used up either way. */
export async function appendPack(input: AppendInput, base: PreparedBase, plan: Extract<AppendPlan, { kind: "append" }>): Promise<PackResult> {
  const choice = await resolveCompression(input.compression, { forThisKernel: true });
  const workers = choice.mkfsArg === undefined ? [] : await workerArguments();
  const tmp = base.copy;
  const tar = `${tmp}.tar`;
  const list = `${tmp}.list`;
  try {
    // The directories and farm entries one by one, then the new store paths' trees whole. GNU
    // format: long names and link targets; no xattrs (like -x-1); owners do not matter (--all-root).
    await writeFile(list, plan.entries.join("\0") + "\0");
    const tarArgs = ["-C", input.stageDir, "--format=gnu", "--numeric-owner"];
    await run("tar", [...tarArgs, "--no-recursion", "--null", "-T", list, "-cf", tar]);
    if (plan.storePaths.length > 0) await run("tar", [...tarArgs, "-rf", tar, ...plan.storePaths.map((b) => `${STAGE_STORE_REL}/${b}`)]);
    await run("mkfs.erofs", mkfsArguments(choice.mkfsArg, tmp, tar, [...workers, "--incremental=data", "--tar=f"]));
    return await finishImage(tmp, input.output);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  } finally {
    await unlink(tar).catch(() => {});
    await unlink(list).catch(() => {});
  }
}

/** The previous image's bytes are not the recorded ones: pack in full instead. */
export class PreviousImageChanged extends Error {}

/** Copies `from` to `to` and returns the sha256 of `from`'s bytes. A reflink where the file system
 *  has them; else the kernel copies (copy_file_range, on libuv's pool) while this thread hashes the
 *  source: both read it from the page cache, at once (322–374 ms for 271 MiB, against 378–430 ms
 *  for one stream that hashes what it writes; bench/NOTES.md). The source is hashed, not the copy:
 *  images/ is ext's alone and a file there is never written, so the two reads see the same bytes
 *  unless something outside ext writes the image at that very moment; damage at rest, what the
 *  check is for, is in both. */
async function copyOf(from: string, to: string): Promise<string> {
  let cloned = true;
  try {
    await copyFile(from, to, constants.COPYFILE_FICLONE_FORCE);
  } catch {
    cloned = false; // no reflinks here (ext4)
  }
  if (cloned) return sha256File(from);
  const [sha256] = await Promise.all([sha256File(from), copyFile(from, to)]);
  return sha256;
}

function typeOfMode(mode: number): Entry["type"] {
  switch (mode & S_IFMT) {
    case S_IFDIR: return "dir";
    case S_IFREG: return "file";
    case S_IFLNK: return "link";
    default: return "other";
  }
}

/** The image's entries outside usr/store, and the names in usr/store. */
async function imageTree(path: string): Promise<[Map<string, Entry>, string[]]> {
  const image = await ErofsImage.open(path);
  const entries = new Map<string, Entry>();
  let stored: string[] = [];
  try {
    const walk = async (rel: string, nid: number): Promise<void> => {
      const inode = await image.inode(nid);
      const type = typeOfMode(inode.mode);
      const entry: Entry = { type, perm: inode.mode & 0o7777 };
      if (type === "link" || type === "file") entry.data = (await image.read(inode)).toString("latin1");
      if (rel !== ".") entries.set(rel, entry);
      if (type !== "dir") return;
      const children = await image.list(inode);
      if (rel === STAGE_STORE_REL) {
        stored = children.map((c) => c.name.toString());
        return;
      }
      for (const c of children) await walk(rel === "." ? c.name.toString() : `${rel}/${c.name.toString()}`, c.nid);
    };
    await walk(".", (await image.lookup("/"))!.nid);
  } finally {
    await image.close();
  }
  return [entries, stored];
}

/** The same for a staged tree. */
async function stageTree(stageDir: string): Promise<[Map<string, Entry>, string[]]> {
  const entries = new Map<string, Entry>();
  let stored: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const full = posix.join(stageDir, rel);
    const st = await lstat(full);
    const type = typeOfMode(st.mode);
    const entry: Entry = { type, perm: st.mode & 0o7777 };
    if (type === "link") entry.data = Buffer.from(await readlink(full, { encoding: "buffer" })).toString("latin1");
    if (type === "file") entry.data = (await readFile(full)).toString("latin1");
    if (rel !== ".") entries.set(rel, entry);
    if (type !== "dir") return;
    const children = await readdir(full);
    if (rel === STAGE_STORE_REL) {
      stored = children;
      return;
    }
    for (const c of children) await walk(rel === "." ? c : `${rel}/${c}`);
  };
  await walk(".");
  return [entries, stored];
}
