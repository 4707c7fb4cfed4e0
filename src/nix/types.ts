// The contract between the Nix adapter and the rest of ext. Store paths are always the logical
// `/nix/store/<hash>-<name>` form; where their bytes physically live is `physicalPath()`.

/** Where Nix keeps its store. `root: "/"` is the system store; otherwise a chroot store
 *  (`nix --store <root>`) whose files live under `<root>/nix/store` while paths stay `/nix/store/…`. */
export interface StoreLocation {
  root: string;
  /** For a chroot store: the directory below which ext made the store's directories and may fix
   *  their permissions (src/nix/store-permissions.ts). Unset: none of them is ext's. */
  owned?: string;
}

export interface NixContext {
  store: StoreLocation;
  /** Nix `system` to build for, e.g. `x86_64-linux`. */
  system: string;
  /** Extra environment for every nix call (NIX_CONFIG for offline use, etc.). */
  env?: Record<string, string>;
  /** Progress lines from nix's stderr. */
  onLog?: (line: string) => void;
}

/** One package as the user asked for it and as Nix resolved it. */
export interface PackageRequest {
  /** The name the user typed (key in tools.json). */
  name: string;
  /** Attribute path inside the source (defaults to name). */
  attr: string;
  /** Flake reference of the package source, e.g. `nixpkgs`, `path:/abs/fixtures`, `github:NixOS/nixpkgs/<rev>`. */
  source: string;
  /** Outputs wanted; empty = the package's default outputs. */
  outputs?: string[];
  /** nixpkgs may evaluate it although its license is unfree (see NixCommandOptions.allowUnfree). */
  allowUnfree?: boolean;
}

export interface PackageMeta {
  pname: string;
  version: string;
  description?: string;
  license?: string;
  homepage?: string;
}

export interface ResolvedPackage extends PackageRequest, PackageMeta {
  /** Output name → store path, for the outputs that were realised. */
  outPaths: Record<string, string>;
  /** The derivation that produced outPaths (for `nix log`, and to tell rebuilds apart). */
  drvPath?: string;
}

export interface ClosureEntry {
  path: string;
  narSize: number;
  references: string[];
}

export interface LockedSource {
  /** What the user wrote. */
  original: string;
  /** A reference that always means the same tree (with rev and/or narHash). */
  locked: string;
  rev?: string;
  narHash?: string;
  lastModified?: number;
}

/** One hit of `search()`. */
export interface SearchResult {
  /** Attribute path inside the source, usable as a package name (`ripgrep`, `python3Packages.requests`). */
  attr: string;
  pname: string;
  version: string;
  description: string;
}
