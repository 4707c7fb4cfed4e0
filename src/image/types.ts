import type { FarmRecord } from "./stage-cache.js";
import type { ClosureEntry, StoreLocation } from "../nix/types.js";

/** A package whose outputs become links in the image's farm (usr/bin, usr/share/man, …). */
export interface FarmPackage {
  name: string;
  /** Store paths (logical, /nix/store/…) of the outputs whose files get linked. */
  outPaths: string[];
  /** Higher wins a file collision between packages; equal priority on the same path is an error. */
  priority?: number;
  /** The user allowed this package to shadow files of the host's own /usr. */
  allowShadow?: boolean;
}

export interface StageInput {
  /** Runtime closure of all packages together. */
  closure: ClosureEntry[];
  packages: FarmPackage[];
  store: StoreLocation;
  /** Empty directory that receives `usr/…`. */
  stageDir: string;
  /** Extension name: image file `<name>.raw` ↔ `extension-release.<name>`. */
  extensionName: string;
  /** systemd architecture string (x86-64, arm64, …). */
  architecture: string;
  /** Host root used to check where the host has symlinks (usr/sbin, usr/lib64) and, when given,
   *  which files of the host's /usr an image would shadow. "/" normally; `--root` otherwise. */
  hostRoot: string;
}

/** Tuning knobs for stage(); the defaults suit a local disk. */
export interface StageOptions {
  /** Decompression tools (xz, zstd, …) run at once to look inside compressed files (default 4). */
  concurrency?: number;
  /** How files that need no rewrite reach the stage: "copy" (default; copy_file_range, or a reflink
   *  on btrfs/xfs) or "link" (hard link into the store when on the same file system). */
  reuse?: "copy" | "link";
  /** A directory for the stage cache (stage-cache.ts): store paths staged by an earlier transaction
   *  are moved from there instead of staged again. Must be on the stage's file system. */
  cacheDir?: string;
  /** This boot, when not the kernel's (tests): the cache belongs to one boot. */
  bootId?: string;
}

/** What one store path contributed to a stage. The stage cache keeps it beside the path's tree. */
export interface StagedPath {
  /** The logical store path, /nix/store/<hash>-<name>. */
  path: string;
  files: number;
  bytes: number;
  rewritten: number;
  symlinks: number;
  rewrittenLinks: number;
  directories: number;
  /** Store inodes ("dev:ino") its files are hard links to: no other file of a stage may link them. */
  linkedInodes: string[];
  opaqueReferences: OpaqueReference[];
  relocatedContainers: RelocatedContainer[];
}

export interface StageReport {
  files: number;
  /** Bytes of regular file content staged. */
  bytes: number;
  /** Files whose content was rewritten /nix/store → /usr/store. */
  rewritten: number;
  /** Compressed files and archives left byte-identical that name, or may name, the store inside. */
  opaqueReferences: OpaqueReference[];
  /** Compressed files and archives whose content named the store and was relocated (recompressed). */
  relocatedContainers: RelocatedContainer[];
  /** Links created in the farm, relative to the stage root (e.g. usr/bin/rg). */
  links: string[];
  /** Files of the host's /usr that the farm would shadow, allowed by allowShadow. */
  shadowed: string[];
  /** Symlinks copied from the closure, and how many of their targets were relocated. */
  symlinks: number;
  rewrittenLinks: number;
  directories: number;
  /** Stage-relative path of the extension-release file. */
  releaseFile: string;
  /** Every store path of the closure, in order, and what it holds. */
  paths: StagedPath[];
  /** How many of them came from the stage cache instead of being staged again. */
  fromCache: number;
  /** The farm as planned, for the stage cache to keep beside its trees. */
  farm: FarmRecord;
}

export interface RelocatedContainer {
  /** Path inside the image. */
  path: string;
  kind: string;
  /** For archives: which entries. */
  detail?: string;
}

export interface OpaqueReference {
  /** Path inside the image, e.g. usr/store/<hash>-foo/share/x.gz. */
  path: string;
  /** Container format: gzip, xz, zstd, bzip2, zip, lz4. */
  kind: string;
  /** true: decompressed and a /nix/store reference was found; false: could not be searched, may contain one. */
  confirmed: boolean;
  detail?: string;
}

export type Compression = "none" | "lz4" | "lz4hc" | (string & {});

export interface PackResult {
  path: string;
  sha256: string;
  size: number;
}
