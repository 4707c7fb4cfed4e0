import {
  chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, unlinkSync,
  type Dirent, type Stats,
} from "node:fs";
import { chmod, copyFile, link, open, symlink } from "node:fs/promises";
import { errnoCode, UnsafeImageError } from "../errors.js";
import type { StoreLocation } from "../nix/types.js";
import type { HostView } from "./host.js";
import { JobQueue, Limiter } from "./limit.js";
import { ContainerRelocator, CONTENT_LIMIT } from "./containers.js";
import { OpaqueInspector, sniffContainer, type OpaqueKind } from "./opaque.js";
import { rewriteLinkTarget, rewriteStoreReferences, StreamRewriter } from "./rewrite.js";
import { physicalPath, STAGE_STORE_REL, storeBaseName } from "./store-paths.js";
import type { StagedPath } from "./types.js";

// Copies the closure into <stage>/usr/store with every /nix/store relocated.
//
// Speed (measured on a 1.5 GB, 11 500-file closure): every byte has to be read once anyway, to find
// references, and reads from the page cache take microseconds, so sources are read synchronously into
// one reused buffer and searched there. Creating files is the slow part on a journalling file system
// (open(O_CREAT), mkdir and symlink block on the journal: 12 s of 22 s when done synchronously), so
// everything that creates something in the stage runs asynchronously, several at once on libuv's
// thread pool. A file that needs no rewrite is not written from JavaScript at all: copyFile() copies it
// in the kernel (a reflink on btrfs/xfs), or, with reuse "link", it is hard-linked.
//
// Paths are Buffers all the way: a store may hold names that are not UTF-8, and a string round trip
// would silently change them.

/** Fixed modes make the staged tree, and so the image, independent of the store's and the umask's. */
export const DIR_MODE = 0o755;
export const FILE_MODE = 0o444;
export const EXEC_MODE = 0o555;

/** Files up to this size are read whole; larger ones are streamed in chunks. */
export const WHOLE_FILE_LIMIT = 16 * 1024 * 1024;
const CHUNK = 1024 * 1024;
/** Enough of a file's start to recognise a container format (opaque.ts). */
const SNIFF_BYTES = 16;
const YIELD_EVERY_MS = 25;
/** Creations in flight, and bytes of rewritten content they may hold. */
const MAX_JOBS = 32;
const MAX_JOB_BYTES = 64 * 1024 * 1024;

export type ReuseStrategy = "copy" | "link";

export interface CopyOptions {
  /** Store paths to copy (logical). */
  closure: readonly string[];
  store: StoreLocation;
  stageDir: string;
  host: HostView;
  /** Decompression tools run for opaque-content checks at once. */
  concurrency: number;
  reuse: ReuseStrategy;
  /** Store inodes ("dev:ino") that the stage already holds a hard link to (trees taken from the stage
   *  cache): a file of the same inode is copied, not linked, as if it had been staged in this run. */
  linkedInodes?: Iterable<string>;
}

const SLASH = Buffer.from("/");

function joinBuf(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}

/** Copies; returns what each store path contributed, in closure order. */
export async function copyClosure(options: CopyOptions): Promise<StagedPath[]> {
  const copier = new ClosureCopier(options);
  await copier.copyAll();
  return copier.result();
}

function emptyRecord(path: string): StagedPath {
  return { path, files: 0, bytes: 0, rewritten: 0, symlinks: 0, rewrittenLinks: 0, directories: 0, linkedInodes: [], opaqueReferences: [], relocatedContainers: [] };
}

/** Byte offset of the store path's name in a stage-relative path ("usr/store/<base>/…"). */
const BASE_AT = STAGE_STORE_REL.length + 1;

class ClosureCopier {
  /** Per store path, keyed by base name (`<hash>-<name>`): the stage cache keeps each path's tree apart. */
  private readonly records = new Map<string, StagedPath>();
  /** Everything that creates something in the stage. */
  private readonly jobs = new JobQueue(MAX_JOBS, MAX_JOB_BYTES);
  /** Decompression tools for opaque-content checks. */
  private readonly tools: Limiter;
  private readonly inspector = new OpaqueInspector();
  private readonly relocator = new ContainerRelocator();
  private readonly inspections = new Set<Promise<void>>();
  /** Source inodes already hard-linked into the stage. A second link to the same inode would become a
   *  hard link inside the image, which would depend on whether the store was optimised: copy instead. */
  private readonly linkedInodes: Set<string>;
  /** Cleared when hard links cannot work at all here (the store is on another file system). */
  private linkable = true;
  /** Whether the umask would strip bits from DIR_MODE / FILE_MODE / EXEC_MODE, so modes need a chmod. */
  private chmodDirs = true;
  private chmodFiles = true;
  private lastYield = performance.now();
  /** One buffer reused for every file read whole: no allocation, no garbage per file. Whatever outlives
   *  copyFile() (content for an asynchronous write) is copied out of it. */
  private scratch = Buffer.allocUnsafeSlow(64 * 1024);

  constructor(private readonly options: CopyOptions) {
    this.tools = new Limiter(options.concurrency);
    this.linkedInodes = new Set(options.linkedInodes ?? []);
  }

  /** In closure order; stage() sorts the opaque references of the whole stage. */
  result(): StagedPath[] {
    return [...this.records.values()];
  }

  /** The record of the store path that `rel` (usr/store/<base>/…) lies in. */
  private recordOf(rel: Buffer): StagedPath {
    const end = rel.indexOf(0x2f, BASE_AT);
    const base = rel.subarray(BASE_AT, end < 0 ? undefined : end).toString("latin1");
    const r = this.records.get(base);
    if (r === undefined) throw new Error(`internal: ${rel.toString()} is outside the store paths being staged`);
    return r;
  }

  async copyAll(): Promise<void> {
    const { stageDir, host } = this.options;
    const storeRoot = Buffer.from(`${stageDir}/${STAGE_STORE_REL}`);
    const hostStore = await host.assertDirectoryAllowed(STAGE_STORE_REL);
    mkdirSync(storeRoot, { recursive: true });
    await chmod(storeRoot, DIR_MODE);
    this.probeUmask(storeRoot);
    try {
      await this.walk(storeRoot, hostStore === "dir");
    } catch (e) {
      // Nothing may still be writing into the stage once the caller sees the error and removes it.
      await this.jobs.drain().catch(() => {});
      await Promise.all([...this.inspections]);
      throw e;
    }
    await this.jobs.drain();
    await Promise.all([...this.inspections]);
  }

  private async walk(storeRoot: Buffer, hostHasStore: boolean): Promise<void> {
    for (const logical of [...new Set(this.options.closure)].sort()) {
      const base = Buffer.from(storeBaseName(logical));
      const src = Buffer.from(physicalPath(this.options.store, logical));
      let st: Stats;
      try {
        st = lstatSync(src);
      } catch (e) {
        if (errnoCode(e) === "ENOENT") {
          throw new UnsafeImageError(`store path ${logical} is in the closure but missing from ${src.toString()}`, {
            hint: "realise it again (nix-store --realise) or repair the store (nix-store --verify --repair)",
          });
        }
        throw e;
      }
      const rel = joinBuf(Buffer.from(STAGE_STORE_REL), base);
      this.records.set(base.toString("latin1"), emptyRecord(logical));
      await this.copyEntry(src, joinBuf(storeRoot, base), rel, entryKind(st), hostHasStore);
    }
  }

  /** The umask filters the modes of created files; a chmod per file is only needed when it would bite. */
  private probeUmask(dir: Buffer): void {
    const probe = joinBuf(dir, Buffer.from(".umask-probe"));
    const fd = openSync(probe, "wx", 0o777);
    try {
      const stripped = 0o777 & ~fstatSync(fd).mode;
      this.chmodDirs = (stripped & DIR_MODE) !== 0;
      this.chmodFiles = (stripped & EXEC_MODE) !== 0;
    } finally {
      closeSync(fd);
      unlinkSync(probe);
    }
  }

  private async copyEntry(src: Buffer, dst: Buffer, rel: Buffer, kind: EntryKind, checkHost: boolean): Promise<void> {
    if (performance.now() - this.lastYield > YIELD_EVERY_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      this.lastYield = performance.now();
    }
    switch (kind) {
      case "dir":
        return this.copyDir(src, dst, rel, checkHost);
      case "symlink":
        return this.copySymlink(src, dst, rel);
      case "file":
        return this.copyFile(src, dst, rel);
      default:
        throw new UnsafeImageError(`${src.toString()} is a ${kind}, which a Nix store never holds and an image cannot carry`);
    }
  }

  private async copyDir(src: Buffer, dst: Buffer, rel: Buffer, checkHost: boolean): Promise<void> {
    // The host only has anything below usr/store while an image with these store paths is merged.
    const hostHas = checkHost && (await this.options.host.assertDirectoryAllowed(rel)) === "dir";
    // Synchronous: its children need it, and an asynchronous mkdir would queue behind every copy
    // already waiting for the thread pool.
    mkdirSync(dst, DIR_MODE);
    if (this.chmodDirs) chmodSync(dst, DIR_MODE);
    this.recordOf(rel).directories++;
    const entries = readdirSync(src, { withFileTypes: true, encoding: "buffer" });
    entries.sort((a, b) => Buffer.compare(a.name, b.name));
    for (const e of entries) {
      await this.copyEntry(joinBuf(src, e.name), joinBuf(dst, e.name), joinBuf(rel, e.name), entryKind(e), hostHas);
    }
  }

  private async copySymlink(src: Buffer, dst: Buffer, rel: Buffer): Promise<void> {
    const { target, changed } = rewriteLinkTarget(readlinkSync(src, { encoding: "buffer" }));
    const record = this.recordOf(rel);
    record.symlinks++;
    if (changed) record.rewrittenLinks++;
    await this.jobs.add(0, () => symlink(target, dst));
  }

  private async copyFile(src: Buffer, dst: Buffer, rel: Buffer): Promise<void> {
    const fd = openSync(src, constants.O_RDONLY | constants.O_NOFOLLOW);
    let st: Stats;
    let content: Buffer;
    let kind: OpaqueKind | undefined;
    try {
      st = fstatSync(fd);
      if (!st.isFile()) throw new UnsafeImageError(`${src.toString()} changed while it was being copied`);
      content = st.size <= WHOLE_FILE_LIMIT ? this.readWhole(fd, st.size) : readInto(Buffer.alloc(SNIFF_BYTES), fd, SNIFF_BYTES);
      kind = sniffContainer(content);
      // A compressed file is relocated by the codec, whole (containers.ts), never by the byte rewrite.
      if (kind !== undefined && st.size > WHOLE_FILE_LIMIT && st.size <= CONTENT_LIMIT) content = readInto(Buffer.allocUnsafe(st.size), fd, st.size);
    } finally {
      closeSync(fd);
    }
    // Write bits are meaningless on a read-only image; setuid/setgid/sticky never belong in one.
    const mode = st.mode & 0o111 ? EXEC_MODE : FILE_MODE;
    const record = this.recordOf(rel);
    record.files++;
    record.bytes += st.size;
    const key = `${st.dev}:${st.ino}`;
    if (kind !== undefined) {
      if (st.size > CONTENT_LIMIT) {
        this.inspectUnchanged(kind, src, rel);
        await this.jobs.add(0, () => this.unchanged(src, dst, key, record, mode, st));
        return;
      }
      const own = content.buffer === this.scratch.buffer ? Buffer.from(content) : content;
      await this.jobs.add(own.length, () => this.relocateContainer(kind, src, dst, rel, own, key, mode, st));
      return;
    }
    if (st.size > WHOLE_FILE_LIMIT) {
      await this.jobs.add(CHUNK, () => this.streamFile(src, dst, rel, mode));
      return;
    }
    const replaced = rewriteStoreReferences(content);
    if (replaced > 0) {
      record.rewritten++;
    } else if ((st.mode & 0o7777) === mode) {
      await this.jobs.add(0, () => this.reuse(src, dst, key, record));
      return;
    }
    const own = Buffer.from(content);
    await this.jobs.add(own.length, () => this.writeNew(dst, own, mode));
  }

  /** A compressed file or archive: its content relocated and compressed again, or the file as it is. */
  private async relocateContainer(
    kind: OpaqueKind, src: Buffer, dst: Buffer, rel: Buffer, content: Buffer, inode: string, mode: number, st: Stats,
  ): Promise<void> {
    const result = await this.tools.run(() => this.relocator.relocate(kind, content));
    const record = this.recordOf(rel);
    const path = rel.toString("utf8");
    if (result.outcome === "relocated") {
      record.relocatedContainers.push({ path, kind, ...(result.detail !== undefined ? { detail: result.detail } : {}) });
      return this.writeNew(dst, result.content, mode);
    }
    if (result.outcome === "kept") record.opaqueReferences.push({ path, kind, confirmed: result.confirmed, detail: result.detail });
    return this.unchanged(src, dst, inode, record, mode, st, content);
  }

  /** The source's bytes as they are, with the image's mode. */
  private async unchanged(src: Buffer, dst: Buffer, inode: string, record: StagedPath, mode: number, st: Stats, content?: Buffer): Promise<void> {
    if ((st.mode & 0o7777) === mode) return this.reuse(src, dst, inode, record);
    if (content !== undefined) return this.writeNew(dst, content, mode);
    await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    await chmod(dst, mode);
  }

  /** A file that needs no rewrite and already has its mode: hard-linked or copied by the kernel. */
  private async reuse(src: Buffer, dst: Buffer, inode: string, record: StagedPath): Promise<void> {
    if (this.options.reuse === "link" && this.linkable && !this.linkedInodes.has(inode)) {
      this.linkedInodes.add(inode);
      try {
        await link(src, dst);
        record.linkedInodes.push(inode);
        return;
      } catch (e) {
        // Another file system, a read-only bind mount, the link count limit: copy instead.
        const code = errnoCode(e) ?? "";
        if (!["EXDEV", "EPERM", "EROFS", "EMLINK", "EACCES"].includes(code)) throw e;
        if (code === "EXDEV" || code === "EROFS") this.linkable = false;
      }
    }
    // libuv fchmods the copy to the source's mode, which is `mode`; FICLONE shares extents on
    // btrfs/xfs and falls back to copy_file_range elsewhere.
    await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  }

  private async writeNew(dst: Buffer, content: Buffer, mode: number): Promise<void> {
    // "wx": never write through something already at dst (a hard link into a store, say).
    const fh = await open(dst, "wx", mode);
    try {
      await fh.writeFile(content);
      if (this.chmodFiles) await fh.chmod(mode);
    } finally {
      await fh.close();
    }
  }

  /** Big files: chunk by chunk, so memory stays flat. */
  private async streamFile(src: Buffer, dst: Buffer, rel: Buffer, mode: number): Promise<void> {
    const rewriter = new StreamRewriter();
    const input = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const out = await open(dst, "wx", mode);
      try {
        const buf = Buffer.allocUnsafe(CHUNK);
        for (;;) {
          const { bytesRead } = await input.read(buf, 0, CHUNK, null);
          if (bytesRead === 0) break;
          await out.write(rewriter.push(buf.subarray(0, bytesRead)));
        }
        await out.write(rewriter.end());
        if (this.chmodFiles) await out.chmod(mode);
      } finally {
        await out.close();
      }
    } finally {
      await input.close();
    }
    if (rewriter.replaced > 0) this.recordOf(rel).rewritten++;
  }

  private readWhole(fd: number, size: number): Buffer {
    if (this.scratch.length < size) {
      this.scratch = Buffer.allocUnsafeSlow(Math.min(WHOLE_FILE_LIMIT, Math.max(size, this.scratch.length * 2)));
    }
    return readInto(this.scratch, fd, size);
  }

  /** A container too large to relocate: searched (streamed, by the tools, in parallel with the copy)
   *  so that the report says whether it names the store. */
  private inspectUnchanged(kind: OpaqueKind, src: Buffer, rel: Buffer): void {
    const path = rel.toString("utf8");
    const why = `larger than ${CONTENT_LIMIT / (1024 * 1024)} MiB, not relocated`;
    const check = this.tools.run(() => this.inspector.inspect(kind, src))
      .catch((e: unknown) => ({ confirmed: false, detail: `could not be searched: ${(e as Error).message}` }))
      .then((finding) => {
        this.inspections.delete(check);
        if (finding) this.recordOf(rel).opaqueReferences.push({ path, kind, confirmed: finding.confirmed, detail: finding.detail ? `${finding.detail}; ${why}` : why });
      });
    this.inspections.add(check);
  }
}

function readInto(buf: Buffer, fd: number, size: number): Buffer {
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  // A file that shrank while being read is copied as it was read.
  return buf.subarray(0, off);
}

type EntryKind = "dir" | "symlink" | "file" | "socket" | "fifo" | "device";

function entryKind(st: Stats | Dirent<Buffer>): EntryKind {
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFile()) return "file";
  if (st.isSocket()) return "socket";
  if (st.isFIFO()) return "fifo";
  return "device";
}
