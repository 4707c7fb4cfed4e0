import { lstat, readlink } from "node:fs/promises";
import { isAbsolute, join, dirname, relative } from "node:path";
import { errnoCode } from "../errors.js";
import type { Layout } from "../base/layout.js";

// After a refresh, prove the generation is what /usr shows. Symlinks in the image are absolute
// (/usr/store/…), so under --root they are resolved by hand against the root, never the host.

export async function existsUnderRoot(root: string, rel: string, hops = 0): Promise<boolean> {
  if (hops > 40) return false;
  const full = join(root, rel);
  let s;
  try {
    s = await lstat(full);
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return false;
    throw e;
  }
  if (!s.isSymbolicLink()) return true;
  const target = await readlink(full);
  const next = isAbsolute(target) ? target.slice(1) : relative(root, join(dirname(full), target));
  return existsUnderRoot(root, next, hops + 1);
}

export interface Expectation {
  /** Paths relative to the root that must exist (following links). */
  present: string[];
  /** Paths relative to the root that must not exist. */
  absent: string[];
}

export async function missingFiles(l: Layout, expect: Expectation): Promise<{ missing: string[]; unexpected: string[] }> {
  const missing: string[] = [];
  const unexpected: string[] = [];
  for (const rel of expect.present) if (!(await existsUnderRoot(l.root, rel))) missing.push(rel);
  for (const rel of expect.absent) if (await existsUnderRoot(l.root, rel)) unexpected.push(rel);
  return { missing, unexpected };
}
