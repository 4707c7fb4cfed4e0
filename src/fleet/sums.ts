import { ShapeError } from "../base/state-file.js";

// SHA256SUMS as sha256sum(1) writes it and systemd-sysupdate reads it: "<hex>  <name>" (or "<hex> *<name>"
// in binary mode), one file a line, sorted by name so the same files give the same bytes.

export interface SumEntry {
  sha256: string;
  file: string;
}

export function formatSums(entries: readonly SumEntry[]): string {
  return [...entries].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)).map((e) => `${e.sha256}  ${e.file}\n`).join("");
}

/** A line ext cannot read is an error, not skipped: this file decides what is trusted. */
export function parseSums(text: string): SumEntry[] {
  const out: SumEntry[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    const m = /^([0-9a-f]{64}) [ *]([^/\0\s][^/\0]*)$/.exec(line);
    if (!m) throw new ShapeError(`line ${i + 1} of SHA256SUMS is not '<sha256>  <file name>'`);
    out.push({ sha256: m[1]!, file: m[2]! });
  }
  return out;
}
