import { createHash } from "node:crypto";
import { open, rename, stat, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fsyncDir, fsyncFile, tempName } from "../fsutil.js";
import { run } from "../exec.js";
import { resolveCompression, workerArguments } from "./compressors.js";
import type { Compression, PackResult } from "./types.js";

/** The mtime Nix gives everything in the store (and ext gives everything in an image). */
export const STORE_MTIME = 1;

/** Any constant works; it only has to be the same every time so equal trees give equal bytes. */
export const IMAGE_UUID = "5f0e7a1c-9d3b-4e2a-8c61-0e7b2d9a4f13";

export interface PackInput {
  stageDir: string;
  output: string;
  compression: Compression;
  /** The image is for another machine (`ext build`): any algorithm mkfs.erofs has, whatever this
   *  kernel mounts. Default: for this machine. */
  forAnotherMachine?: boolean;
  /** SELinux file_contexts text (src/image/selinux.ts): every file gets its security.selinux label.
   *  Without it the image has no extended attributes at all. */
  fileContexts?: string;
}

/**
 * The mkfs.erofs arguments that make the image a function of the tree alone:
 *  -T1          every inode's mtime and the superblock's build time are 1, the Nix store's own mtime (the
 *               tree's mtimes are ignored). Byte-code caches made in the store record the source's mtime
 *               of 1 (Python .pyc; nixpkgs' CPython also treats mtime 1 as "in the store"), so with -T0
 *               every one of them was stale in the image and the interpreter tried to rewrite it on a
 *               read-only /usr. erofs-utils 1.5 applies -T to every file; ≥ 1.8 does so by default
 *               (--all-time), which 1.5 does not know, so it is not passed.
 *  -U           a fixed filesystem UUID instead of a random one
 *  --all-root   uid/gid 0 whoever staged the tree
 *  -x-1         no extended attributes: SELinux labels or user.* xattrs of the staging file system would
 *               otherwise differ from machine to machine — unless the image is labelled: then
 *               --file-contexts=FILE instead, and every label comes from FILE (src/image/selinux.ts)
 * mkfs.erofs sorts directory entries itself, so the order files were created in does not matter.
 * `extra` is `--workers=N` where mkfs.erofs has it (≥ 1.8): compression on every core, and the same
 * bytes as one worker (checked with erofs-utils 1.8.6: equal sha256 for 1, 2 and the default).
 */
export function mkfsArguments(compressionArg: string | undefined, image: string, stageDir: string, extra: readonly string[] = [], fileContexts?: string): string[] {
  return [
    "--quiet",
    ...extra,
    `-T${STORE_MTIME}`,
    `-U${IMAGE_UUID}`,
    "--all-root",
    // Labels need xattrs on; the staged files carry none of their own that would reach the image
    // (Nix strips them from store paths; a label they carry is replaced by the file's rule).
    ...(fileContexts === undefined ? ["-x-1"] : [`--file-contexts=${fileContexts}`]),
    ...(compressionArg === undefined ? [] : [`-z${compressionArg}`]),
    image,
    stageDir,
  ];
}

/** Packs a staged tree into an EROFS image at `output`, atomically (temp file, fsync, rename). */
export async function pack(input: PackInput): Promise<PackResult> {
  const choice = await resolveCompression(input.compression, { forThisKernel: !input.forAnotherMachine });
  const workers = choice.mkfsArg === undefined ? [] : await workerArguments();
  const tmp = tempName(input.output);
  const contexts = input.fileContexts === undefined ? undefined : `${tmp}.file_contexts`;
  try {
    if (contexts !== undefined) await writeFile(contexts, input.fileContexts!, { mode: 0o644 });
    await run("mkfs.erofs", mkfsArguments(choice.mkfsArg, tmp, input.stageDir, workers, contexts));
    return await finishImage(tmp, input.output);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  } finally {
    if (contexts !== undefined) await unlink(contexts).catch(() => {});
  }
}

/** The finished image at `tmp` hashed, made durable and renamed to `output`. */
export async function finishImage(tmp: string, output: string): Promise<PackResult> {
  // Hashing reads the image from the page cache while fsync writes it out: both at once.
  const [sha256] = await Promise.all([sha256File(tmp), fsyncFile(tmp)]);
  const { size } = await stat(tmp);
  await rename(tmp, output);
  await fsyncDir(dirname(output));
  return { path: output, sha256, size };
}

/** Read in 4 MiB blocks, the next one read by libuv while this one is hashed: 216–240 ms for a
 *  271 MiB image in the page cache, against 253–358 ms through a 1 MiB read stream (bench/NOTES.md).
 *  Every image ext makes or imports is hashed whole, so this is on the path of every add. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await open(path, "r");
  try {
    const blocks = [Buffer.allocUnsafe(HASH_BLOCK), Buffer.allocUnsafe(HASH_BLOCK)];
    let next = 0;
    let reading = file.read(blocks[next]!, 0, HASH_BLOCK, null);
    for (;;) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) break;
      next ^= 1;
      reading = file.read(blocks[next]!, 0, HASH_BLOCK, null);
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
  return hash.digest("hex");
}

const HASH_BLOCK = 4 * 1024 * 1024;
