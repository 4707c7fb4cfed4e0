import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, homedir, release, tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import { MissingToolError, UsageError } from "../errors.js";
import { run } from "../exec.js";
import { ErofsImage } from "./erofs-reader.js";

// What this machine's mkfs.erofs can do, found by trying, not by reading its --help: the help text
// changed between releases (1.5: "Available compressors are: lz4hc, lz4"; ≥ 1.8: "supported
// compressors and their option ranges are:"), and a parser that missed the new wording offered no
// compression at all on every current distribution. So each algorithm is tried on a tiny tree
// (~5 ms a try, all at once), and `--workers` the same way; the answer is kept per binary (path,
// size and mtime) in ~/.cache/ext, so later runs do not try again.
//
// Packing with an algorithm is not enough: the kernel must mount the image. EROFS got lz4 with the
// file system itself, lzma in Linux 5.16, deflate in 6.6 and zstd in 6.10. An image for this machine
// (ext add, apply…) is refused with an algorithm the running kernel lacks; `ext build`, whose image may
// be for another machine, is not.

export const KNOWN = ["lz4hc", "lz4", "lzma", "deflate", "libdeflate", "zstd"] as const;
/** Names people use for an algorithm that mkfs.erofs calls otherwise. */
const ALIASES: Record<string, string> = { microlzma: "lzma" };
/** The first Linux release whose EROFS decompresses each algorithm. */
export const KERNEL_MINIMUM: Record<string, [number, number]> = {
  lz4: [5, 4], lz4hc: [5, 4], lzma: [5, 16], deflate: [6, 6], libdeflate: [6, 6], zstd: [6, 10],
};
const CACHE_VERSION = 2;

export interface MkfsCapabilities {
  /** Algorithms mkfs.erofs packed a test tree with. */
  compressors: string[];
  /** mkfs.erofs takes --workers=N (erofs-utils ≥ 1.8: compression on several threads). */
  workers: boolean;
  /** mkfs.erofs appends a tar stream's entries to an existing image (`--incremental=data --tar=f`,
   *  erofs-utils ≥ 1.8): a generation that only adds is packed as the previous image plus the new
   *  entries (src/image/append.ts). */
  incremental: boolean;
}

let cached: Promise<MkfsCapabilities> | undefined;

export function mkfsCapabilities(): Promise<MkfsCapabilities> {
  cached ??= probeCached().catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

export async function availableCompressors(): Promise<string[]> {
  return (await mkfsCapabilities()).compressors;
}

/** For tests: forget what was probed. */
export function resetCompressorCache(): void {
  cached = undefined;
}

/** Where mkfs.erofs is on PATH, resolved; undefined when it is not. */
export function findMkfs(path = process.env["PATH"] ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    try {
      const file = join(dir, "mkfs.erofs");
      if (statSync(file).isFile()) return realpathSync(file);
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function cacheFile(): string {
  const xdg = process.env["XDG_CACHE_HOME"];
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), ".cache"), "ext", "mkfs-erofs.json");
}

async function probeCached(): Promise<MkfsCapabilities> {
  const binary = findMkfs();
  if (binary === undefined) {
    throw new MissingToolError("mkfs.erofs", "install erofs-utils (sudo apt install erofs-utils / sudo dnf install erofs-utils)");
  }
  const st = statSync(binary);
  const key = `${binary}:${st.size}:${st.mtimeMs}`;
  const file = cacheFile();
  try {
    const saved = JSON.parse(readFileSync(file, "utf8")) as { version?: number; key?: string; caps?: MkfsCapabilities };
    if (saved.version === CACHE_VERSION && saved.key === key && saved.caps && Array.isArray(saved.caps.compressors)) {
      return {
        compressors: saved.caps.compressors.filter((c) => (KNOWN as readonly string[]).includes(c)),
        workers: saved.caps.workers === true,
        incremental: saved.caps.incremental === true,
      };
    }
  } catch {
    /* none yet, or unreadable: try again */
  }
  const caps = await probe(binary);
  try {
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, JSON.stringify({ version: CACHE_VERSION, key, caps }) + "\n");
  } catch {
    /* a cache we cannot write only costs the next run a few milliseconds */
  }
  return caps;
}

/** Tries every algorithm (and --workers, and appending a tar stream) on a tiny tree. */
export async function probe(binary: string): Promise<MkfsCapabilities> {
  const dir = mkdtempSync(join(tmpdir(), "ext-mkfs-probe-"));
  try {
    mkdirSync(join(dir, "tree"));
    // Compressible content: an algorithm that is compiled in but fails on real data must fail here.
    writeFileSync(join(dir, "tree", "file"), "ext probes mkfs.erofs\n".repeat(512));
    const tryArgs = async (name: string, args: string[]) =>
      (await run(binary, ["--quiet", ...args, join(dir, `${name}.img`), join(dir, "tree")], { reject: false })).exitCode === 0;
    const results = await Promise.all(KNOWN.map((alg) => tryArgs(alg, [`-z${alg}`])));
    const compressors = KNOWN.filter((_, i) => results[i]);
    const workers = await tryArgs("workers", ["--workers=1"]);
    return { compressors, workers, incremental: await probeIncremental(binary, dir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Appends a one-file tar to the image of the probe's tree; the mode is there only if that works and
 *  the file is in the result (1.5 has neither option and fails on the arguments). */
async function probeIncremental(binary: string, dir: string): Promise<boolean> {
  mkdirSync(join(dir, "more"));
  writeFileSync(join(dir, "more", "added"), "appended\n");
  const image = join(dir, "incremental.img");
  const tar = join(dir, "more.tar");
  if ((await run(binary, ["--quiet", image, join(dir, "tree")], { reject: false })).exitCode !== 0) return false;
  if ((await run("tar", ["-C", join(dir, "more"), "--format=gnu", "-cf", tar, "added"], { reject: false })).exitCode !== 0) return false;
  if ((await run(binary, ["--quiet", "--incremental=data", "--tar=f", image, tar], { reject: false })).exitCode !== 0) return false;
  const erofs = await ErofsImage.open(image).catch(() => undefined);
  if (erofs === undefined) return false;
  try {
    const added = await erofs.lookup("/added");
    const kept = await erofs.lookup("/file");
    return added !== undefined && kept !== undefined && (await erofs.read(added)).toString() === "appended\n";
  } catch {
    return false;
  } finally {
    await erofs.close();
  }
}

/** Can the running kernel (or `kernelRelease`) mount EROFS images compressed with `algorithm`? */
export function kernelMounts(algorithm: string, kernelRelease = release()): boolean {
  const min = KERNEL_MINIMUM[algorithm];
  if (!min) return false;
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return true; // an unreadable release says nothing: let the mount decide
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > min[0] || (major === min[0] && minor >= min[1]);
}

/** The mkfs.erofs arguments for using every core where it can. */
export async function workerArguments(): Promise<string[]> {
  return (await mkfsCapabilities()).workers ? [`--workers=${availableParallelism()}`] : [];
}

export interface CompressionChoice {
  /** Argument for mkfs.erofs -z, or undefined for an uncompressed image. */
  mkfsArg: string | undefined;
  algorithm: string | undefined;
  level: number | undefined;
}

export interface CompressionOptions {
  /** The image is for this machine: refuse algorithms its kernel cannot mount (default true). */
  forThisKernel?: boolean;
  kernelRelease?: string;
}

/**
 * Validates "none" | "<algorithm>[,<level>][,<key>=<value>…]" against what this machine's mkfs.erofs
 * supports (and, for an image for this machine, what its kernel mounts). Options after the algorithm
 * are passed through (newer mkfs.erofs takes e.g. "lzma,level=6,dictsize=…"); mkfs.erofs itself
 * rejects values it does not accept.
 */
export async function resolveCompression(compression: string, options: CompressionOptions = {}): Promise<CompressionChoice> {
  if (compression === "none" || compression === "") return { mkfsArg: undefined, algorithm: undefined, level: undefined };
  const kernel = options.kernelRelease ?? release();
  const forThisKernel = options.forThisKernel ?? true;
  const m = /^([A-Za-z0-9]+)((?:,(?:\d{1,3}|[a-z]+=[A-Za-z0-9]+))*)$/.exec(compression);
  const packs = await availableCompressors();
  const usable = forThisKernel ? packs.filter((a) => kernelMounts(a, kernel)) : packs;
  const choices = `none, ${usable.map((s) => (s === "lz4" ? s : `${s}[,level]`)).join(", ")}`;
  if (!m) {
    throw new UsageError(`compression '${compression}' is not of the form <algorithm>[,<level>]`, { hint: `this machine supports: ${choices}` });
  }
  const name = m[1]!.toLowerCase();
  const algorithm = ALIASES[name] ?? name;
  if (!packs.includes(algorithm)) {
    throw new UsageError(`mkfs.erofs on this machine does not support compression '${m[1]}'`, {
      hint: `this machine supports: ${choices}`,
    });
  }
  if (forThisKernel && !kernelMounts(algorithm, kernel)) {
    const min = KERNEL_MINIMUM[algorithm]!;
    throw new UsageError(`the running kernel (Linux ${kernel}) cannot mount EROFS images compressed with '${algorithm}': that needs Linux ≥ ${min[0]}.${min[1]}`, {
      hint: `use one it mounts: ${choices}; 'ext build' makes images for other machines with any algorithm`,
    });
  }
  const opts = m[2]!;
  const levelText = /^,(\d+)/.exec(opts)?.[1] ?? /,level=(\d+)/.exec(opts)?.[1];
  const level = levelText === undefined ? undefined : Number(levelText);
  if (algorithm === "lz4" && opts !== "") {
    throw new UsageError("lz4 takes no compression level", { hint: "use lz4hc,<0-12> for a tunable level" });
  }
  return { mkfsArg: `${algorithm}${opts}`, algorithm, level };
}
