import { open, type FileHandle } from "node:fs/promises";

// A read-only view of an EROFS image's metadata: superblock, inodes, directories, and the content of
// uncompressed files. Enough for verify to check an image's layout and read its extension-release file
// without mounting (no root) and without extracting the whole image (slow for big ones). The on-disk
// format is a kernel ABI, which makes this steadier than parsing dump.erofs's text, whose exit status
// is 0 even when a path does not exist (erofs-utils 1.5).

const SUPER_OFFSET = 1024;
const MAGIC = 0xe0f5e1e2;
/** Incompatible features that do not change how directories and flat files are found and read:
 *  zero padding, big pclusters, chunked files, device table, ztailpacking, fragments/dedupe, xattr
 *  prefixes. Anything newer (48-bit layout, metabox) may move metadata, so it is refused. */
const UNDERSTOOD_INCOMPAT = 0x7f;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export const Layout = { FlatPlain: 0, CompressedFull: 1, FlatInline: 2, CompressedCompact: 3, ChunkBased: 4 } as const;

/** The image is not EROFS, or is damaged. */
export class ErofsFormatError extends Error {}
/** Valid EROFS that this reader does not decode (compressed data, newer features). */
export class ErofsUnsupportedError extends Error {}

export interface ErofsInode {
  nid: number;
  mode: number;
  size: number;
  layout: number;
  rawBlkAddr: number;
  /** Absolute byte offset of tail-packed (inline) data. */
  inlineAt: number;
  /** Absolute byte offset of the inode's xattr body, and its size in bytes (0: none). */
  xattrAt: number;
  xattrSize: number;
}

/** An extended attribute by its full name (`security.selinux`) and raw value. */
export interface ErofsXattr {
  name: string;
  value: Buffer;
}

/** EROFS_XATTR_INDEX_*: the prefix an entry's name index stands for. */
const XATTR_PREFIXES: Record<number, string> = { 1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default", 4: "trusted.", 6: "security." };

export interface ErofsDirent {
  name: Buffer;
  nid: number;
  /** EROFS_FT_*: 1 file, 2 directory, 7 symlink, … */
  type: number;
}

/** Files larger than this are not read into memory by verify. */
const MAX_READ = 16 * 1024 * 1024;

export class ErofsImage {
  private constructor(
    private readonly fh: FileHandle,
    readonly blockSize: number,
    readonly rootNid: number,
    private readonly metaBase: number,
    /** Where shared xattrs are (xattr_blkaddr), in bytes. */
    private readonly xattrBase: number,
    /** Where the file system starts in the file (0, or a DDI partition's offset). */
    private readonly base: number,
  ) {}

  /** `base`: where the file system starts in the file (a partition of a DDI, src/image/ddi.ts). */
  static async open(path: string, base = 0): Promise<ErofsImage> {
    const fh = await open(path, "r");
    try {
      const sb = Buffer.alloc(128);
      const { bytesRead } = await fh.read(sb, 0, 128, base + SUPER_OFFSET);
      if (bytesRead < 128 || sb.readUInt32LE(0) !== MAGIC) throw new ErofsFormatError("not an EROFS image (bad superblock magic)");
      const blkszbits = sb.readUInt8(12);
      if (blkszbits < 9 || blkszbits > 16) throw new ErofsFormatError(`implausible block size 2^${blkszbits}`);
      const incompat = sb.readUInt32LE(80);
      if ((incompat & ~UNDERSTOOD_INCOMPAT) !== 0) {
        throw new ErofsUnsupportedError(`image uses EROFS features 0x${(incompat & ~UNDERSTOOD_INCOMPAT).toString(16)}`);
      }
      if (sb.readUInt8(90) !== 0) throw new ErofsUnsupportedError("image uses a directory block size of its own");
      const blockSize = 1 << blkszbits;
      return new ErofsImage(fh, blockSize, sb.readUInt16LE(14), sb.readUInt32LE(40) * blockSize, sb.readUInt32LE(44) * blockSize, base);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  private async readAt(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, this.base + position + done);
      if (bytesRead === 0) throw new ErofsFormatError(`image ends before byte ${position + length}`);
      done += bytesRead;
    }
    return buf;
  }

  async inode(nid: number): Promise<ErofsInode> {
    const at = this.metaBase + nid * 32;
    const raw = await this.readAt(at, 64).catch(async (e: unknown) => {
      // A compact inode at the very end of the metadata may have fewer than 64 bytes after it.
      if (e instanceof ErofsFormatError) return this.readAt(at, 32);
      throw e;
    });
    const format = raw.readUInt16LE(0);
    const extended = (format & 1) === 1;
    const layout = (format >> 1) & 7;
    const xattrCount = raw.readUInt16LE(2);
    const mode = raw.readUInt16LE(4);
    if (extended && raw.length < 64) throw new ErofsFormatError(`inode ${nid} is cut short`);
    const size = extended ? Number(raw.readBigUInt64LE(8)) : raw.readUInt32LE(8);
    const inodeSize = extended ? 64 : 32;
    const xattrSize = xattrCount === 0 ? 0 : 12 + (xattrCount - 1) * 4;
    return { nid, mode, size, layout, rawBlkAddr: raw.readUInt32LE(16), inlineAt: at + inodeSize + xattrSize, xattrAt: at + inodeSize, xattrSize };
  }

  /** Content of an uncompressed file, directory or symlink. */
  async read(inode: ErofsInode): Promise<Buffer> {
    if (inode.size > MAX_READ) throw new ErofsUnsupportedError(`inode ${inode.nid} is too large to read (${inode.size} bytes)`);
    if (inode.size === 0) return Buffer.alloc(0);
    switch (inode.layout) {
      case Layout.FlatPlain:
        return this.readAt(inode.rawBlkAddr * this.blockSize, inode.size);
      case Layout.FlatInline: {
        // All blocks but the last are at raw_blkaddr; the last one is packed right after the inode.
        const blocks = Math.ceil(inode.size / this.blockSize);
        const head = (blocks - 1) * this.blockSize;
        const tail = await this.readAt(inode.inlineAt, inode.size - head);
        if (head === 0) return tail;
        return Buffer.concat([await this.readAt(inode.rawBlkAddr * this.blockSize, head), tail]);
      }
      default:
        throw new ErofsUnsupportedError(`inode ${inode.nid} uses data layout ${inode.layout} (compressed or chunked)`);
    }
  }

  async readDir(inode: ErofsInode): Promise<ErofsDirent[]> {
    if ((inode.mode & S_IFMT) !== S_IFDIR) throw new ErofsFormatError(`inode ${inode.nid} is not a directory`);
    const data = await this.read(inode);
    const out: ErofsDirent[] = [];
    for (let start = 0; start < data.length; start += this.blockSize) {
      const block = data.subarray(start, Math.min(start + this.blockSize, data.length));
      if (block.length < 12) throw new ErofsFormatError(`directory inode ${inode.nid} has a short block`);
      const count = block.readUInt16LE(8) / 12;
      if (!Number.isInteger(count) || count === 0 || count * 12 > block.length) {
        throw new ErofsFormatError(`directory inode ${inode.nid} has a damaged block`);
      }
      for (let i = 0; i < count; i++) {
        const nameoff = block.readUInt16LE(i * 12 + 8);
        let end = i + 1 < count ? block.readUInt16LE((i + 1) * 12 + 8) : block.length;
        if (nameoff > end || end > block.length) throw new ErofsFormatError(`directory inode ${inode.nid} has a damaged entry`);
        // Only the last name of a block can be followed by padding.
        if (i + 1 === count) {
          const nul = block.indexOf(0, nameoff);
          if (nul >= 0 && nul < end) end = nul;
        }
        out.push({
          name: Buffer.from(block.subarray(nameoff, end)),
          nid: Number(block.readBigUInt64LE(i * 12)),
          type: block.readUInt8(i * 12 + 10),
        });
      }
    }
    return out;
  }

  /** The inode's extended attributes: shared ones (stored once, named by id) and inline ones.
   *  Long name prefixes (erofs-utils ≥ 1.7 --xattr-prefix, index with bit 0x80) are not decoded:
   *  mkfs.erofs does not make them unless asked, and ext never asks. */
  async xattrs(inode: ErofsInode): Promise<ErofsXattr[]> {
    if (inode.xattrSize === 0) return [];
    const body = await this.readAt(inode.xattrAt, inode.xattrSize);
    const shared = body.readUInt8(4);
    if (12 + shared * 4 > body.length) throw new ErofsFormatError(`inode ${inode.nid} has a damaged xattr header`);
    const out: ErofsXattr[] = [];
    for (let i = 0; i < shared; i++) {
      const at = this.xattrBase + body.readUInt32LE(12 + i * 4) * 4;
      const head = await this.readAt(at, 4);
      out.push(xattrEntry(await this.readAt(at, 4 + head.readUInt8(0) + head.readUInt16LE(2)), 0, inode.nid).xattr);
    }
    for (let pos = 12 + shared * 4; pos + 4 <= body.length;) {
      const { xattr, size } = xattrEntry(body, pos, inode.nid);
      out.push(xattr);
      pos += (size + 3) & ~3;
    }
    return out;
  }

  /** Every entry below the root, depth first, as "/usr/bin/rg" with its inode ("/" for the root). */
  async *walk(): AsyncGenerator<{ path: string; inode: ErofsInode }> {
    const stack: { path: string; nid: number }[] = [{ path: "/", nid: this.rootNid }];
    while (stack.length > 0) {
      const { path, nid } = stack.pop()!;
      const inode = await this.inode(nid);
      yield { path, inode };
      if ((inode.mode & S_IFMT) !== S_IFDIR) continue;
      for (const d of (await this.list(inode)).reverse()) {
        stack.push({ path: `${path === "/" ? "" : path}/${d.name.toString("utf8")}`, nid: d.nid });
      }
    }
  }

  /** Names in a directory except "." and "..". */
  async list(inode: ErofsInode): Promise<ErofsDirent[]> {
    return (await this.readDir(inode)).filter((d) => !(d.name.equals(DOT) || d.name.equals(DOTDOT)));
  }

  /** The inode at `path` ("usr/lib/x"), without following symlinks; undefined when absent. */
  async lookup(path: string): Promise<ErofsInode | undefined> {
    let current = await this.inode(this.rootNid);
    for (const part of path.split("/").filter((p) => p !== "")) {
      if ((current.mode & S_IFMT) !== S_IFDIR) return undefined;
      const wanted = Buffer.from(part);
      const hit = (await this.readDir(current)).find((d) => d.name.equals(wanted));
      if (!hit) return undefined;
      current = await this.inode(hit.nid);
    }
    return current;
  }
}

function xattrEntry(buf: Buffer, pos: number, nid: number): { xattr: ErofsXattr; size: number } {
  const nameLen = buf.readUInt8(pos);
  const index = buf.readUInt8(pos + 1);
  const valueSize = buf.readUInt16LE(pos + 2);
  const size = 4 + nameLen + valueSize;
  if (pos + size > buf.length) throw new ErofsFormatError(`inode ${nid} has a damaged xattr entry`);
  if (index & 0x80) throw new ErofsUnsupportedError(`inode ${nid} uses a long xattr name prefix`);
  const prefix = XATTR_PREFIXES[index] ?? "";
  const name = prefix + buf.toString("utf8", pos + 4, pos + 4 + nameLen);
  return { xattr: { name, value: Buffer.from(buf.subarray(pos + 4 + nameLen, pos + size)) }, size };
}

const DOT = Buffer.from(".");
const DOTDOT = Buffer.from("..");
