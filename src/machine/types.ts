import type { LabelPolicy } from "../image/selinux.js";
import type { Layout } from "../base/layout.js";
import type { GenerationRecord, InstalledPackage } from "../generations/record.js";
import type { LockedSource, NixContext } from "../nix/types.js";
import type { PackageSpec } from "../pipeline/packages.js";
import type { Compression } from "../image/types.js";
import type { Reporter } from "../base/reporter.js";
import type { ImportedImage } from "./steps/import.js";

export type { PackageSpec } from "../pipeline/packages.js";

export type TxRequest =
  | { kind: "add"; packages: PackageSpec[] }
  | { kind: "remove"; names: string[] }
  /** Make the set exactly this (ext apply). `locked` holds packages already resolved by a lock. */
  | { kind: "set"; packages: PackageSpec[]; locked?: InstalledPackage[] }
  /** Switch to an existing generation (ext rollback). */
  | { kind: "switch"; generation: number }
  /** Make a verified published image a generation (ext pull; src/machine/steps/import.ts). */
  | { kind: "import"; image: string; version: string; url: string; certificate?: string };

/** Everything a transaction needs from outside; steps receive it, the machine never touches it. */
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
  /** Seams for tests and measurements, made once where the command's context is made. */
  hooks?: TxHooks;
  /** This boot, when not the kernel's (tests): the stage cache belongs to one boot. */
  bootId?: string;
  /** false: never append to the previous image, always pack in full ($EXT_APPEND_IMAGES=0; tests
   *  that need full packs). Absent or true: an add that only adds appends where mkfs.erofs can. */
  appendImages?: boolean;
}

/** Called around every step (the machine's, never a step's own code): the CLI makes them from
 *  EXT_TEST_PAUSE_AT / EXT_TEST_FAIL_AT / EXT_TIMINGS (src/cli/seams.ts); unit tests pass their own. */
export interface TxHooks {
  /** After the journal names the step and before it runs: a test pauses (to kill -9) or fails here. */
  beforeStep?(step: string): Promise<void>;
  /** When the step ends, whether it succeeded or not (ms since the process started). */
  afterStep?(step: string, start: number, end: number): void;
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

export type TxOutcome =
  | { status: "noop"; reason: string; generation: number | null }
  | { status: "done"; record: GenerationRecord; previous: number | null; reusedImage: boolean }
  | { status: "failed"; error: unknown; rolledBack: boolean; rollbackError?: unknown };
