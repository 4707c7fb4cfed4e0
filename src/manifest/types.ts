// tools.json (what the user wants) and tools.lock.json (what it resolved to), as ext reads them.
// The JSON Schemas in schemas/ are the contract; these types mirror them.

/** The format version this ext reads and writes. */
export const MANIFEST_VERSION = 1;
export const LOCK_VERSION = 1;

/** The source of packages when tools.json names none. Fixed, so a file means the same everywhere. */
export const MANIFEST_DEFAULT_SOURCE = "nixpkgs";

export interface ManifestPackage {
  attr?: string;
  source?: string;
  outputs?: string[];
  priority?: number;
  allowUnfree?: boolean;
  allowShadow?: boolean;
}

export interface ManifestData {
  $schema?: string;
  version: number;
  source?: string;
  name?: string;
  compression?: string;
  /** SELinux labels of the images: "auto", "none" or a file_contexts path relative to the tools.json
   *  (docs/selinux.md). */
  selinuxContexts?: string;
  /** Where machines follow this set's published images (ext subscribe; docs/fleet.md). */
  subscription?: ManifestSubscription;
  packages: Record<string, ManifestPackage>;
}

export interface ManifestSubscription {
  url: string;
  /** The public key that signs SHA256SUMS, relative to the tools.json. */
  key?: string;
  /** OnCalendar= of ext-update.timer (default daily). */
  schedule?: string;
}

export interface LockSourceEntry {
  /** A reference that always means the same tree. */
  locked: string;
  rev?: string;
  narHash?: string;
  lastModified?: number;
}

export interface LockPackageEntry {
  attr: string;
  /** The source as tools.json names it (normalised), a key of `sources`. */
  source: string;
  /** The exact reference the package was resolved from (the pinned one when ext resolved it). */
  resolvedFrom: string;
  outputs?: string[];
  pname: string;
  version: string;
  outPaths: Record<string, string>;
  drvPath?: string;
  description?: string;
  license?: string;
  homepage?: string;
}

export interface LockData {
  $schema?: string;
  version: number;
  /** The Nix system the store paths are for (x86_64-linux…). */
  system: string;
  sources: Record<string, LockSourceEntry>;
  packages: Record<string, LockPackageEntry>;
}

/** One package of a manifest with its defaults filled in. */
export interface ManifestEntry {
  name: string;
  attr: string;
  /** Normalised flake reference (tools.json's per-package source, else its top-level one, else nixpkgs). */
  source: string;
  outputs?: string[];
  priority?: number;
  allowUnfree?: boolean;
  allowShadow?: boolean;
}
