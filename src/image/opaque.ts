import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { MissingToolError } from "../errors.js";
import { run } from "../exec.js";
import { NIX_STORE } from "./store-paths.js";

// The byte rewrite cannot see inside compressed or archived content: a gzipped script, a jar, an xz'd
// data file. Such files are found by magic number and relocated by containers.ts; a file too large for
// that is searched here (streamed), so that the report says whether it really names the store.

export type OpaqueKind = "gzip" | "xz" | "zstd" | "bzip2" | "zip" | "lz4";

export interface OpaqueFinding {
  /** true: a reference was found; false: it could not be checked and may be there. */
  confirmed: boolean;
  detail?: string;
}

const NEEDLE = Buffer.from(NIX_STORE, "latin1");
/** Decompressed bytes searched per file before giving up with "may contain". */
const SEARCH_LIMIT = 256 * 1024 * 1024;

function startsWith(head: Buffer, ...bytes: number[]): boolean {
  if (head.length < bytes.length) return false;
  return bytes.every((b, i) => head[i] === b);
}

/** The container format announced by the first bytes of a file, if any. */
export function sniffContainer(head: Buffer): OpaqueKind | undefined {
  // gzip with the deflate method (the only one defined).
  if (startsWith(head, 0x1f, 0x8b, 0x08)) return "gzip";
  if (startsWith(head, 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "xz";
  if (startsWith(head, 0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  // "BZh" + block size digit + the block (π) or end-of-stream (√π) magic: ten bytes, no accidents.
  if (
    head.length >= 10 && startsWith(head, 0x42, 0x5a, 0x68) && head[3]! >= 0x31 && head[3]! <= 0x39 &&
    (head.subarray(4, 10).equals(Buffer.from([0x31, 0x41, 0x59, 0x26, 0x53, 0x59])) ||
      head.subarray(4, 10).equals(Buffer.from([0x17, 0x72, 0x45, 0x38, 0x50, 0x90])))
  ) return "bzip2";
  if (startsWith(head, 0x50, 0x4b, 0x03, 0x04)) return "zip";
  if (startsWith(head, 0x04, 0x22, 0x4d, 0x18)) return "lz4";
  return undefined;
}

const TOOLS: Partial<Record<OpaqueKind, string>> = { xz: "xz", zstd: "zstd", bzip2: "bzip2", lz4: "lz4" };

export class OpaqueInspector {
  private readonly missing = new Set<string>();

  /** Looks inside a file (unchanged bytes at `physical`) of a known container kind; for files too big to
   *  be held in memory, and kinds that need a tool. Returns undefined when it holds no reference. */
  async inspect(kind: OpaqueKind, physical: string | Buffer): Promise<OpaqueFinding | undefined> {
    switch (kind) {
      case "gzip":
        return this.gzip(physical);
      case "zip":
        return { confirmed: false, detail: "archive too large to search" };
      default:
        return this.viaTool(kind, physical);
    }
  }

  private async gzip(physical: string | Buffer): Promise<OpaqueFinding | undefined> {
    try {
      // Large output chunks: with the 16 KiB default, per-chunk overhead costs more than inflating.
      const source = createReadStream(physical);
      const gunzip = createGunzip({ chunkSize: 1024 * 1024 });
      // pipe() does not pass a read error on; without this the search would wait forever.
      source.on("error", (e) => gunzip.destroy(e));
      const found = await searchStream(source.pipe(gunzip)).finally(() => source.destroy());
      if (found === "limit") return { confirmed: false, detail: `more than ${SEARCH_LIMIT} bytes uncompressed` };
      return found ? { confirmed: true } : undefined;
    } catch (e) {
      return { confirmed: false, detail: `could not be decompressed: ${(e as Error).message}` };
    }
  }

  private async viaTool(kind: OpaqueKind, physical: string | Buffer): Promise<OpaqueFinding | undefined> {
    const tool = TOOLS[kind];
    if (tool === undefined || this.missing.has(tool)) {
      return { confirmed: false, detail: tool === undefined ? "not searched" : `${tool} is not installed` };
    }
    try {
      // The path is absolute, so it cannot be taken for an option.
      const result = await run(tool, ["-dc", physical.toString()], { reject: false });
      if (result.exitCode !== 0) return { confirmed: false, detail: `${tool} -dc failed (exit ${result.exitCode})` };
      return result.stdout.includes(NIX_STORE) ? { confirmed: true } : undefined;
    } catch (e) {
      if (e instanceof MissingToolError) {
        this.missing.add(tool);
        return { confirmed: false, detail: `${tool} is not installed` };
      }
      return { confirmed: false, detail: `${tool} -dc failed: ${(e as Error).message}` };
    }
  }
}

/** Searches a byte stream for /nix/store, stopping at the first hit. */
async function searchStream(stream: Readable): Promise<boolean | "limit"> {
  // Chunks are searched where they lie; only a reference split across two chunks needs the few bytes
  // at the seam copied together.
  let tail = Buffer.alloc(0);
  let seen = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (tail.length > 0 && Buffer.concat([tail, chunk.subarray(0, NEEDLE.length - 1)]).includes(NEEDLE)) return true;
      if (chunk.includes(NEEDLE)) return true;
      seen += chunk.length;
      if (seen > SEARCH_LIMIT) return "limit";
      tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (NEEDLE.length - 1))));
    }
    return false;
  } finally {
    stream.destroy();
  }
}

/** The one wording for a compressed file ext left as it was, used by build and add. (Containers whose
 *  content was relocated are not warned about: containers.ts checked that they read back.) */
export function opaqueWarning(o: { path: string; kind: string; confirmed: boolean; detail?: string }): string {
  const why = o.detail === undefined ? "" : ` (${o.detail})`;
  return o.confirmed
    ? `${o.path}: its ${o.kind} content refers to /nix/store and could not be relocated${why}; the file was left byte-identical and may not work from /usr/store`
    : `${o.path}: its ${o.kind} content could not be searched${why}; the file was left byte-identical and may refer to /nix/store`;
}
