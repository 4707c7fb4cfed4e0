import { UsageError } from "../errors.js";
import { run } from "../exec.js";

// Which -z algorithms mkfs.erofs accepts depends on how erofs-utils was built (1.5 on Debian 12: lz4 and
// lz4hc only; newer ones add lzma, deflate, zstd). Asked once per process from `mkfs.erofs --help`.

const KNOWN = ["lz4hc", "lz4", "lzma", "deflate", "libdeflate", "zstd"] as const;
/** Names people use for an algorithm that mkfs.erofs calls otherwise. */
const ALIASES: Record<string, string> = { microlzma: "lzma" };

let cached: Promise<string[]> | undefined;

export function availableCompressors(): Promise<string[]> {
  cached ??= probe().catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

/** For tests: forget what was probed. */
export function resetCompressorCache(): void {
  cached = undefined;
}

async function probe(): Promise<string[]> {
  const help = await run("mkfs.erofs", ["--help"], { reject: false });
  return parseCompressors(help.stdout + "\n" + help.stderr);
}

/** Reads the algorithm list from mkfs.erofs --help, in the one-line (≤ 1.6) or one-per-line (≥ 1.7) form. */
export function parseCompressors(help: string): string[] {
  const at = help.search(/Available compressors are:?/i);
  if (at < 0) return [];
  const section = help.slice(at).replace(/^Available compressors are:?/i, "");
  const found = new Set<string>();
  // The list ends where the next option ("-C#", "--…") or a blank line after some entries begins.
  for (const line of section.split("\n")) {
    const text = line.trim();
    if (text.startsWith("-")) break;
    if (text === "") {
      if (found.size > 0) break;
      continue;
    }
    for (const word of text.split(/[\s,[\]]+/)) {
      if ((KNOWN as readonly string[]).includes(word)) found.add(word);
    }
  }
  return KNOWN.filter((k) => found.has(k));
}

export interface CompressionChoice {
  /** Argument for mkfs.erofs -z, or undefined for an uncompressed image. */
  mkfsArg: string | undefined;
  algorithm: string | undefined;
  level: number | undefined;
}

/**
 * Validates "none" | "<algorithm>[,<level>][,<key>=<value>…]" against what this machine's mkfs.erofs
 * supports. Options after the algorithm are passed through (newer mkfs.erofs takes e.g.
 * "lzma,level=6,dictsize=…"); mkfs.erofs itself rejects values it does not accept.
 */
export async function resolveCompression(compression: string): Promise<CompressionChoice> {
  if (compression === "none" || compression === "") return { mkfsArg: undefined, algorithm: undefined, level: undefined };
  const m = /^([A-Za-z0-9]+)((?:,(?:\d{1,3}|[a-z]+=[A-Za-z0-9]+))*)$/.exec(compression);
  const supported = await availableCompressors();
  const choices = `none, ${supported.map((s) => `${s}[,level]`).join(", ")}`;
  if (!m) {
    throw new UsageError(`compression '${compression}' is not of the form <algorithm>[,<level>]`, { hint: `this machine supports: ${choices}` });
  }
  const name = m[1]!.toLowerCase();
  const algorithm = ALIASES[name] ?? name;
  if (!supported.includes(algorithm)) {
    throw new UsageError(`mkfs.erofs on this machine does not support compression '${m[1]}'`, {
      hint: `this machine supports: ${choices}`,
    });
  }
  const options = m[2]!;
  const levelText = /^,(\d+)/.exec(options)?.[1] ?? /,level=(\d+)/.exec(options)?.[1];
  const level = levelText === undefined ? undefined : Number(levelText);
  if (algorithm === "lz4" && options !== "") {
    throw new UsageError("lz4 takes no compression level", { hint: "use lz4hc,<0-12> for a tunable level" });
  }
  return { mkfsArg: `${algorithm}${options}`, algorithm, level };
}
