import { NIX_STORE, RELOCATED_STORE } from "./store-paths.js";

// Relocation is a byte substitution /nix/store → /usr/store. Both are 10 bytes, so ELF offsets
// (PT_INTERP, DT_RUNPATH, string tables), script lengths and any length-prefixed data stay valid.
// Only bytes 1..3 change ("nix" → "usr"), and since 'u' never occurs in the pattern a substitution
// cannot create a new match: one left-to-right pass replaces every occurrence.
export const STORE_NEEDLE = Buffer.from(NIX_STORE, "latin1");
const RELOCATED = Buffer.from(RELOCATED_STORE, "latin1");
if (STORE_NEEDLE.length !== RELOCATED.length) throw new Error("relocated store prefix must keep the length of /nix/store");

// Buffer.indexOf scans for the needle's first byte with memchr and verifies from there; '/' is one of
// the most frequent bytes in binaries and text, so "/nix/store" is searched as "x/store" (whose 'x' is
// rare) and the three bytes before are checked. About three times faster on real closures.
const TAIL = Buffer.from("x/store", "latin1");
const TAIL_AT = STORE_NEEDLE.length - TAIL.length;

/** Offset of the first /nix/store at or after `from`, or -1. */
export function indexOfStoreReference(buf: Buffer, from = 0): number {
  let j = buf.indexOf(TAIL, from + TAIL_AT);
  while (j !== -1) {
    if (buf[j - 3] === 0x2f && buf[j - 2] === 0x6e && buf[j - 1] === 0x69) return j - TAIL_AT;
    j = buf.indexOf(TAIL, j + 1);
  }
  return -1;
}

export function containsStoreReference(buf: Buffer): boolean {
  return indexOfStoreReference(buf) !== -1;
}

/** Replaces every /nix/store in `buf` in place; returns how many were replaced. */
export function rewriteStoreReferences(buf: Buffer): number {
  let count = 0;
  let i = indexOfStoreReference(buf);
  while (i !== -1) {
    RELOCATED.copy(buf, i);
    count++;
    i = indexOfStoreReference(buf, i + STORE_NEEDLE.length);
  }
  return count;
}

/** A symlink target with every /nix/store relocated; the input is not modified. */
export function rewriteLinkTarget(target: Buffer): { target: Buffer; changed: boolean } {
  if (!containsStoreReference(target)) return { target, changed: false };
  const copy = Buffer.from(target);
  rewriteStoreReferences(copy);
  return { target: copy, changed: true };
}

/**
 * Rewrites a stream of chunks: call `push` with each chunk in order; it returns the bytes that are final
 * (a reference split across two chunks is completed by holding back the last 9 bytes), and `end`
 * returns the rest.
 */
export class StreamRewriter {
  private carry = Buffer.alloc(0);
  replaced = 0;

  push(chunk: Buffer): Buffer {
    const window = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : Buffer.from(chunk);
    this.replaced += rewriteStoreReferences(window);
    // A complete reference in the window has already been replaced; fewer than 10 held-back bytes
    // cannot hold a complete one, only the start of one.
    const keep = Math.min(STORE_NEEDLE.length - 1, window.length);
    this.carry = window.subarray(window.length - keep);
    return window.subarray(0, window.length - keep);
  }

  end(): Buffer {
    const rest = this.carry;
    this.carry = Buffer.alloc(0);
    return rest;
  }
}
