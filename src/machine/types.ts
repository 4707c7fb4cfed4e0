import type { LabelPolicy } from "../image/selinux.js";
import type { Layout } from "../generations/layout.js";
import type { GenerationRecord, InstalledPackage } from "../generations/record.js";
import type { Journal } from "../generations/journal.js";
import type { ClosureEntry, LockedSource, NixContext } from "../nix/types.js";
import type { Compression, StageReport, PackResult } from "../image/types.js";
import type { Reporter } from "../cli/reporter.js";
import type { ImportedImage } from "../fleet/import.js";

/** A package as the user asks for it (command line or tools.json entry). */
export interface PackageSpec {
  name: string;
  attr?: string;
  source?: string;
  outputs?: string[];
  priority?: number;
  allowShadow?: boolean;
  /** nixpkgs may evaluate it although its license is unfree. */
  allowUnfree?: boolean;
}

export type TxRequest =
  | { kind: "add"; packages: PackageSpec[] }
  | { kind: "remove"; names: string[] }
  /** Make the set exactly this (ext apply). `locked` holds packages already resolved by a lock. */
  | { kind: "set"; packages: PackageSpec[]; locked?: InstalledPackage[] }
  /** Switch to an existing generation (ext rollback). */
  | { kind: "switch"; generation: number }
  /** Make a verified published image a generation (ext update; src/fleet/import.ts). */
  | { kind: "import"; image: string; version: string; url: string };

/** Everything a transaction needs from outside; actors receive it, the machine never touches it. */
export interface TxEnv {
  layout: Layout;
  nix: NixContext;
  /** Default source for packages that name none. */
  source: string;
  extensionName: string;
  compression: Compression;
  /** SELinux labels for the image (src/image/selinux.ts), or none. */
  labels?: () => LabelPolicy | undefined;
  architecture: string;
  /** The command line, recorded in the generation. */
  command: string;
  reporter: Reporter;
  /** systemd-sysext refresh; unit tests replace it, everything else uses the real one. */
  refresh: (l: Layout) => Promise<void>;
  /** The on-disk journal of this transaction; steps update it before they take effect. */
  journal: Journal;
}

export type Plan =
  | { kind: "noop"; reason: string; current: GenerationRecord | null }
  | { kind: "import"; current: GenerationRecord | null; image: ImportedImage }
  | { kind: "switch"; target: GenerationRecord; current: GenerationRecord | null }
  | {
      kind: "build";
      current: GenerationRecord | null;
      /** Packages to resolve through Nix. */
      resolve: PackageSpec[];
      /** Packages kept as they are (already resolved: their store paths are reused). */
      keep: InstalledPackage[];
      lockedSource?: LockedSource;
    };

export interface TxContext {
  env: TxEnv;
  request: TxRequest;
  plan?: Plan;
  packages?: InstalledPackage[];
  closure?: ClosureEntry[];
  imageKey?: string | null;
  /** Set when an existing image with the same key is reused (stage and pack skipped). */
  reusedImage?: { sha256: string; size: number; compression: string } | null;
  stageDir?: string;
  stageReport?: StageReport;
  packed?: PackResult | null;
  record?: GenerationRecord;
  error?: unknown;
  rollbackError?: unknown;
}

export type TxOutcome =
  | { status: "noop"; reason: string; generation: number | null }
  | { status: "done"; record: GenerationRecord; previous: number | null; reusedImage: boolean }
  | { status: "failed"; error: unknown; rolledBack: boolean; rollbackError?: unknown };
