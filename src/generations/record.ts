import type { LockedSource, ResolvedPackage } from "../nix/types.js";
import { ShapeError, count, dict, field, id, list, nullable, num, object, optional, sha256, str, bool } from "../base/state-file.js";
import { isStorePath } from "../nix/validate.js";

// What one generation holds. Written once, atomically, and never modified afterwards:
// history is only ever appended to, so any record can be trusted as it was written.

export const RECORD_VERSION = 1;

export interface InstalledPackage extends ResolvedPackage {
  priority?: number;
  allowShadow?: boolean;
  /** One of the packages ext runs from (ext, its Node.js, its Nix: a bootstrap image's,
   *  docs/install.md): kept in every generation, and `ext remove` refuses it. */
  self?: boolean;
}

export interface ImageInfo {
  sha256: string;
  size: number;
  compression: string;
  /** How many appends (src/pipeline/pack.ts appendStage) since this image's chain was last packed
   *  in full; absent: packed in full. */
  appended?: number;
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
  /** Where an imported generation came from (ext update; docs/fleet.md): none for local builds. */
  origin?: { url: string; version: string };
}

/** Every store path a generation needs to be rebuilt or rolled back to: its closure and its packages'
 *  outputs (what `ext gc` and the private store's GC roots keep). */
export function storePathsOf(records: readonly GenerationRecord[]): string[] {
  return records.flatMap((r) => [...r.closure.paths, ...r.packages.flatMap((p) => Object.values(p.outPaths))]);
}

/** The shape a record on disk must have before ext uses it (src/base/state-file.ts). */
export function generationRecordShape(value: unknown): GenerationRecord {
  const o = object(value, "");
  const recordVersion = field(o, "", "recordVersion", count);
  // A newer record may have fields this ext does not know; the caller says "upgrade ext" instead.
  if (recordVersion > RECORD_VERSION) return o as unknown as GenerationRecord;
  const source = object(o["source"], "source");
  const image = field(o, "", "image", nullable((v, at) => {
    const i = object(v, at);
    const appended = i["appended"] === undefined ? {} : { appended: field(i, at, "appended", count) };
    return { sha256: field(i, at, "sha256", sha256), size: field(i, at, "size", count), compression: field(i, at, "compression", str), ...appended };
  }));
  const closure = object(o["closure"], "closure");
  return {
    recordVersion,
    id: field(o, "", "id", id),
    createdAt: field(o, "", "createdAt", str),
    command: field(o, "", "command", str),
    extensionName: field(o, "", "extensionName", str),
    source: { ...source, original: field(source, "source", "original", str) } as GenerationRecord["source"],
    packages: field(o, "", "packages", list(packageShape)),
    closure: { paths: field(closure, "closure", "paths", list(storePath)), narSize: field(closure, "closure", "narSize", count) },
    links: field(o, "", "links", list(str)),
    image,
    imageKey: field(o, "", "imageKey", nullable(str)),
    parent: field(o, "", "parent", nullable(id)),
    ...optional(o, "", "origin", (v, at) => {
      const i = object(v, at);
      return { url: field(i, at, "url", str), version: field(i, at, "version", str) };
    }),
  };
}

/** Store paths become GC roots and Nix arguments: only the plain /nix/store/<hash>-<name> form. */
export function storePath(value: unknown, at: string): string {
  const s = str(value, at);
  if (!isStorePath(s)) throw new ShapeError(`'${at}' is ${JSON.stringify(s).slice(0, 60)}, not a store path`);
  return s;
}

export function packageShape(value: unknown, at: string): InstalledPackage {
  const p = object(value, at);
  return {
    ...p,
    name: field(p, at, "name", str),
    attr: field(p, at, "attr", str),
    source: field(p, at, "source", str),
    ...optional(p, at, "pname", str),
    version: field(p, at, "version", str),
    outPaths: field(p, at, "outPaths", dict(storePath)),
    ...optional(p, at, "outputs", list(str)),
    ...optional(p, at, "description", str),
    ...optional(p, at, "priority", num),
    ...optional(p, at, "allowShadow", bool),
    ...optional(p, at, "allowUnfree", bool),
    ...optional(p, at, "self", bool),
  } as InstalledPackage;
}
