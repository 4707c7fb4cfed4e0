import type { LockedSource, ResolvedPackage } from "../nix/types.js";

// What one generation holds. Written once, atomically, and never modified afterwards:
// history is only ever appended to, so any record can be trusted as it was written.

export const RECORD_VERSION = 1;

export interface InstalledPackage extends ResolvedPackage {
  priority?: number;
  allowShadow?: boolean;
}

export interface ImageInfo {
  sha256: string;
  size: number;
  compression: string;
}

export interface GenerationRecord {
  recordVersion: number;
  id: number;
  createdAt: string;
  /** The command line that made it, for `ext generations`. */
  command: string;
  extensionName: string;
  /** The default source at the time and its locked revision. */
  source: LockedSource | { original: string; locked?: undefined };
  packages: InstalledPackage[];
  closure: { paths: string[]; narSize: number };
  /** The image's executables (usr/bin/…, usr/sbin/…), checked after activation. */
  links: string[];
  /** null when the set is empty: no extension is linked. */
  image: ImageInfo | null;
  /** Identifies the image's inputs (store paths, name, compression, arch); equal keys reuse the image. */
  imageKey: string | null;
  parent: number | null;
}

/** Every store path a generation needs to be rebuilt or rolled back to: its closure and its packages'
 *  outputs (what `ext gc` and the private store's GC roots keep). */
export function storePathsOf(records: readonly GenerationRecord[]): string[] {
  return records.flatMap((r) => [...r.closure.paths, ...r.packages.flatMap((p) => Object.values(p.outPaths))]);
}
