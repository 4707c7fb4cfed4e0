import { gunzipSync, inflateRawSync } from "node:zlib";
import { MissingToolError } from "../errors.js";
import { runBytes } from "../exec.js";
import type { OpaqueKind } from "./opaque.js";
import { containsStoreReference, rewriteStoreReferences } from "./rewrite.js";

// Relocation inside compressed files and archives (docs/design.md, "Compressed content").
//
// The byte rewrite cannot be applied to a compressed file: the bytes it would change are not the
// content, and where they happen to be (an uncompressed block of a small .xz, a stored zip entry) the
// container's checksum (CRC-32, CRC-64, the xxhash of zstd) no longer matches, and the reader refuses
// the file ("Compressed data is corrupt"). So a container is never byte-rewritten. Its content is
// decompressed and searched; when it names the store it is rewritten — the same-length rewrite, so
// the uncompressed size every format records stays right — and compressed again with settings read
// from the original where the format records them (gzip's level, bzip2's block size, the xz and zstd
// check), by the same tool every time, single-threaded: the same input gives the same bytes. The
// result is decompressed once more and compared before it is used. Anything that cannot be done so
// (a tool missing, content too large, a signed jar, zip64, an encrypted entry) is left byte-identical
// and reported as such.

/** Uncompressed bytes handled per file; beyond, the file is left as it is. */
export const CONTENT_LIMIT = 256 * 1024 * 1024;

export type ContainerOutcome =
  /** The content does not name the store: copy the file as it is. */
  | { outcome: "clean" }
  /** The content named the store and was relocated: these are the file's new bytes. */
  | { outcome: "relocated"; content: Buffer; detail?: string }
  /** Left byte-identical. `confirmed`: a reference was seen (false: it could not be searched). */
  | { outcome: "kept"; confirmed: boolean; detail: string };

interface Codec {
  tool: string;
  decompress(content: Buffer): Promise<Decoded>;
  /** Arguments that compress stdin to stdout like the original was compressed. */
  compressArgs(original: Buffer): string[];
}

/** The content, or why it could not be had. A file that only starts like a container is kept too:
 *  a rewrite of its bytes could be the corruption this module exists to prevent. */
type Decoded = { plain: Buffer } | { unread: string };

export class ContainerRelocator {
  private readonly missing = new Set<string>();

  async relocate(kind: OpaqueKind, content: Buffer): Promise<ContainerOutcome> {
    try {
      return kind === "zip" ? await this.zip(content) : await this.stream(CODECS[kind], content);
    } catch (e) {
      if (e instanceof MissingToolError) {
        this.missing.add(e.tool);
        return { outcome: "kept", confirmed: false, detail: `${e.tool} is not installed` };
      }
      throw e;
    }
  }

  private async stream(codec: Codec, content: Buffer): Promise<ContainerOutcome> {
    if (this.missing.has(codec.tool)) {
      return { outcome: "kept", confirmed: false, detail: `${codec.tool} is not installed` };
    }
    const decoded = await codec.decompress(content);
    if ("unread" in decoded) return { outcome: "kept", confirmed: false, detail: decoded.unread };
    const plain = decoded.plain;
    if (!containsStoreReference(plain)) return { outcome: "clean" };
    rewriteStoreReferences(plain);
    const packed = await toolOutput(codec.tool, codec.compressArgs(content), plain);
    if (!("out" in packed)) return { outcome: "kept", confirmed: true, detail: `compressing it again failed (${packed.failed})` };
    const again = await codec.decompress(packed.out);
    if (!("plain" in again) || !again.plain.equals(plain)) {
      return { outcome: "kept", confirmed: true, detail: "the recompressed content did not read back the same" };
    }
    return { outcome: "relocated", content: packed.out };
  }

  private async zip(content: Buffer): Promise<ContainerOutcome> {
    const archive = readZip(content);
    if (typeof archive === "string") return { outcome: "kept", confirmed: false, detail: archive };
    const changes = new Map<ZipEntry, Change>();
    const unchecked: string[] = [];
    for (const e of archive.entries) {
      if (e.zip64 || e.flags & 1) {
        // Sizes in the zip64 extra field, or encrypted: not read.
        unchecked.push(e.name);
        continue;
      }
      if (e.method === 0) {
        if (containsStoreReference(e.body)) {
          const body = rewritten(e.body);
          changes.set(e, { body, crc: crc32(body) });
        }
      } else if (e.method === 8) {
        let plain: Buffer;
        try {
          plain = inflateRawSync(e.body, { maxOutputLength: CONTENT_LIMIT });
        } catch {
          unchecked.push(e.name);
          continue;
        }
        if (!containsStoreReference(plain)) continue;
        rewriteStoreReferences(plain);
        const body = await deflateLikeZip(plain, e.flags);
        if (typeof body === "string") return { outcome: "kept", confirmed: true, detail: `compressing ${e.name} again failed (${body})` };
        if (!inflateRawSync(body).equals(plain)) return { outcome: "kept", confirmed: true, detail: `${e.name} did not read back the same` };
        changes.set(e, { body, crc: crc32(plain) });
      } else {
        unchecked.push(e.name);
      }
    }
    if (changes.size === 0) {
      return unchecked.length === 0 ? { outcome: "clean" } : { outcome: "kept", confirmed: false, detail: `entries not searched: ${list(unchecked)}` };
    }
    if (unchecked.length > 0) {
      return { outcome: "kept", confirmed: true, detail: `refers to the store in ${list(names(changes))}, but entries could not be read: ${list(unchecked)}` };
    }
    // A signed jar lists a digest of every entry; changing one would make the JVM refuse the archive.
    const signature = archive.entries.find((e) => /^META-INF\/[^/]+\.(SF|RSA|DSA|EC)$/i.test(e.name));
    if (signature !== undefined) {
      return { outcome: "kept", confirmed: true, detail: `signed archive (${signature.name}): relocating ${list(names(changes))} would break its signature` };
    }
    return { outcome: "relocated", content: writeZip(content, archive, changes), detail: `entries ${list(names(changes))}` };
  }
}

function rewritten(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  rewriteStoreReferences(copy);
  return copy;
}

function names(changes: Map<ZipEntry, Change>): string[] {
  return [...changes.keys()].map((e) => e.name);
}

function list(items: string[]): string {
  return items.length <= 5 ? items.join(", ") : `${items.slice(0, 5).join(", ")} and ${items.length - 5} more`;
}

/** Runs a compressor or decompressor on `input`. */
async function toolOutput(tool: string, args: string[], input: Buffer): Promise<{ out: Buffer } | { failed: string; overflowed?: true }> {
  const r = await runBytes(tool, args, input, CONTENT_LIMIT);
  if (r.overflowed) return { failed: `more than ${CONTENT_LIMIT} bytes`, overflowed: true };
  if (r.exitCode !== 0) return { failed: `${r.command}: exit ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().split("\n")[0]}` : ""}` };
  return { out: r.stdout };
}

function viaTool(tool: string): Codec["decompress"] {
  return async (content) => {
    const r = await toolOutput(tool, ["-dc"], content);
    if ("out" in r) return { plain: r.out };
    return { unread: r.overflowed ? `more than ${CONTENT_LIMIT} bytes uncompressed` : `${tool} cannot decompress it (${r.failed})` };
  };
}

// gzip records the level class in XFL (2: slowest, 4: fastest); GNU gzip's output for a level has
// not changed in decades, and -n leaves out the name and time.
const gzip: Codec = {
  tool: "gzip",
  async decompress(content) {
    try {
      return { plain: gunzipSync(content, { maxOutputLength: CONTENT_LIMIT }) };
    } catch (e) {
      if (e instanceof RangeError) return { unread: `more than ${CONTENT_LIMIT} bytes uncompressed` };
      return { unread: `could not be decompressed (${(e as Error).message})` };
    }
  },
  compressArgs: (original) => ["-n", "-c", original[8] === 2 ? "-9" : original[8] === 4 ? "-1" : "-6"],
};

const XZ_CHECKS: Record<number, string> = { 0: "none", 1: "crc32", 4: "crc64", 10: "sha256" };
const xz: Codec = {
  tool: "xz",
  decompress: viaTool("xz"),
  // The check type is in the stream flags (the Linux kernel's decoder, for modules, knows only
  // CRC-32); the preset is not recorded: xz's default. -T1: multi-threaded xz splits into blocks.
  compressArgs: (original) => ["-c", "-T1", "-6", `--check=${XZ_CHECKS[(original[7] ?? 4) & 0x0f] ?? "crc64"}`],
};

const zstd: Codec = {
  tool: "zstd",
  decompress: viaTool("zstd"),
  // The frame header says whether a content checksum follows (bit 2); the level is not recorded.
  compressArgs: (original) => ["-q", "-c", "-T1", "-3", (original[4] ?? 0) & 0x04 ? "--check" : "--no-check"],
};

const bzip2: Codec = {
  tool: "bzip2",
  decompress: viaTool("bzip2"),
  // "BZh9": the digit is the block size, which is what bzip2's -1…-9 choose.
  compressArgs: (original) => ["-c", `-${String.fromCharCode(original[3] ?? 0x39)}`],
};

const lz4: Codec = {
  tool: "lz4",
  decompress: viaTool("lz4"),
  compressArgs: () => ["-q", "-c"],
};

const CODECS: Record<Exclude<OpaqueKind, "zip">, Codec> = { gzip, xz, zstd, bzip2, lz4 };

/** A deflated zip entry compressed again: gzip's raw deflate stream, level from the entry's flags
 *  (bits 1–2: 0 normal, 1 maximum, 2 and 3 fast). */
async function deflateLikeZip(plain: Buffer, flags: number): Promise<Buffer | string> {
  const level = [6, 9, 1, 1][(flags >> 1) & 3]!;
  const r = await toolOutput("gzip", ["-n", "-c", `-${level}`], plain);
  if (!("out" in r)) return r.failed;
  // -n: a 10-byte header without name or time; an 8-byte trailer (CRC-32, size).
  return r.out.subarray(10, r.out.length - 8);
}

// ---- zip ----------------------------------------------------------------------------------------

interface ZipEntry {
  name: string;
  flags: number;
  method: number;
  zip64: boolean;
  /** Offsets in the archive: the central directory record, the local header, the data. */
  central: number;
  local: number;
  dataStart: number;
  body: Buffer;
  /** Bytes of the data descriptor after the data (flag bit 3), or 0. */
  descriptor: number;
}

/** New data of a changed entry and the CRC-32 of its uncompressed content. */
interface Change {
  body: Buffer;
  crc: number;
}

interface ZipArchive {
  entries: ZipEntry[];
  eocd: number;
  cdOffset: number;
}

function readZip(data: Buffer): ZipArchive | string {
  const eocd = findEndOfCentralDirectory(data);
  if (eocd < 0) return "no zip central directory found";
  const count = data.readUInt16LE(eocd + 10);
  const cdOffset = data.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff) return "zip64 archive";
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > eocd || data.readUInt32LE(p) !== 0x02014b50) return "damaged zip central directory";
    const flags = data.readUInt16LE(p + 8);
    const method = data.readUInt16LE(p + 10);
    const compressed = data.readUInt32LE(p + 20);
    const size = data.readUInt32LE(p + 24);
    const nameLen = data.readUInt16LE(p + 28);
    const local = data.readUInt32LE(p + 42);
    const name = data.toString("utf8", p + 46, p + 46 + nameLen);
    const zip64 = compressed === 0xffffffff || size === 0xffffffff || local === 0xffffffff;
    if (zip64) {
      entries.push({ name, flags, method, zip64, central: p, local: 0, dataStart: 0, body: Buffer.alloc(0), descriptor: 0 });
    } else {
      if (local + 30 > cdOffset || data.readUInt32LE(local) !== 0x04034b50) return `damaged zip entry ${name}`;
      const dataStart = local + 30 + data.readUInt16LE(local + 26) + data.readUInt16LE(local + 28);
      const end = dataStart + compressed;
      if (end > cdOffset) return `damaged zip entry ${name}`;
      // The descriptor's signature is optional: 16 bytes with it, 12 without.
      const descriptor = flags & 8 ? (end + 4 <= cdOffset && data.readUInt32LE(end) === 0x08074b50 ? 16 : 12) : 0;
      entries.push({ name, flags, method, zip64, central: p, local, dataStart, body: data.subarray(dataStart, end), descriptor });
    }
    p += 46 + nameLen + data.readUInt16LE(p + 30) + data.readUInt16LE(p + 32);
  }
  // Entries that share or overlap bytes cannot be moved apart.
  const placed = entries.filter((e) => !e.zip64).sort((a, b) => a.local - b.local);
  for (let i = 1; i < placed.length; i++) {
    const before = placed[i - 1]!;
    if (placed[i]!.local < before.dataStart + before.body.length + before.descriptor) return "overlapping zip entries";
  }
  return { entries, eocd, cdOffset };
}

/**
 * The archive with the changed entries' data replaced. Everything else is copied byte for byte in its
 * place — entries, gaps, a prefix (self-extractors), comments — and what moved is patched: each changed
 * entry's CRC-32 and compressed size (local header, data descriptor, central directory), the offsets
 * of the local headers after it, and the central directory's offset.
 */
function writeZip(data: Buffer, archive: ZipArchive, changes: Map<ZipEntry, Change>): Buffer {
  const parts: Buffer[] = [];
  const shiftOf = new Map<ZipEntry, number>();
  let cursor = 0;
  let shift = 0;
  for (const e of [...archive.entries].sort((a, b) => a.local - b.local)) {
    parts.push(data.subarray(cursor, e.local));
    shiftOf.set(e, shift);
    const end = e.dataStart + e.body.length;
    const change = changes.get(e);
    if (change === undefined) {
      parts.push(data.subarray(e.local, end + e.descriptor));
    } else {
      const { body, crc } = change;
      const header = Buffer.from(data.subarray(e.local, e.dataStart));
      // With a data descriptor the local header may hold zeros instead of the values.
      if (header.readUInt32LE(14) !== 0) header.writeUInt32LE(crc, 14);
      if (header.readUInt32LE(18) !== 0) header.writeUInt32LE(body.length, 18);
      parts.push(header, body);
      if (e.descriptor > 0) {
        const d = Buffer.from(data.subarray(end, end + e.descriptor));
        const at = e.descriptor === 16 ? 4 : 0;
        d.writeUInt32LE(crc, at);
        d.writeUInt32LE(body.length, at + 4);
        parts.push(d);
      }
      shift += body.length - e.body.length;
    }
    cursor = end + e.descriptor;
  }
  parts.push(data.subarray(cursor, archive.cdOffset));
  const tail = Buffer.from(data.subarray(archive.cdOffset));
  for (const e of archive.entries) {
    const at = e.central - archive.cdOffset;
    const change = changes.get(e);
    if (change !== undefined) {
      tail.writeUInt32LE(change.crc, at + 16);
      tail.writeUInt32LE(change.body.length, at + 20);
    }
    tail.writeUInt32LE(e.local + shiftOf.get(e)!, at + 42);
  }
  tail.writeUInt32LE(archive.cdOffset + shift, archive.eocd - archive.cdOffset + 16);
  parts.push(tail);
  return Buffer.concat(parts);
}

function findEndOfCentralDirectory(data: Buffer): number {
  const lowest = Math.max(0, data.length - 22 - 0xffff);
  for (let i = data.length - 22; i >= lowest; i--) {
    if (data[i] === 0x50 && data.readUInt32LE(i) === 0x06054b50) return i;
  }
  return -1;
}

let CRC_TABLE: Uint32Array | undefined;

/** CRC-32 as zip and gzip use it (zlib.crc32 is not in every Node 20). */
export function crc32(bytes: Uint8Array): number {
  const table = (CRC_TABLE ??= (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })());
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
