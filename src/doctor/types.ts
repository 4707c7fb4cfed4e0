import type { MkfsCapabilities } from "../image/compressors.js";
import type { Layout } from "../base/layout.js";
import type { NixContext } from "../nix/types.js";
import type { ElevationChoice } from "../elevate/choose.js";

// `ext doctor` looks at the host and says, for each finding, how to fix it. A check never changes
// anything and never needs root to run (it says when it could not look).

/** ok: fine · info: worth knowing · warning: ext works, but something will surprise you ·
 *  error: ext cannot work here until it is fixed. */
export type Status = "ok" | "info" | "warning" | "error";

export interface Finding {
  /** Stable identifier of the check (`systemd-sysext`, `kernel-erofs`, …). */
  check: string;
  status: Status;
  message: string;
  /** What to do about it; null when there is nothing to do. */
  fix: string | null;
  /** Facts behind the finding (versions, sizes, paths) for --json. */
  details?: Record<string, unknown>;
}

export interface CommandOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface FsSpace {
  /** Bytes available to unprivileged users. */
  available: number;
  total: number;
}

/** Everything the checks read from the machine, so tests can describe a machine instead. */
export interface Host {
  readText(path: string): Promise<string | undefined>;
  exists(path: string): Promise<boolean>;
  /** lstat-like facts; undefined when the path does not exist. */
  stat(path: string): Promise<{ uid: number; mode: number; dev: number; isDirectory: boolean; isSymlink: boolean } | undefined>;
  readDir(path: string): Promise<string[] | undefined>;
  /** undefined when the program is not on PATH. */
  run(file: string, args: string[]): Promise<CommandOutput | undefined>;
  statfs(path: string): Promise<FsSpace>;
  uid(): number;
  kernelRelease(): string;
  /** What mkfs.erofs can do, found by trying (src/image/compressors.ts); undefined when it is missing. */
  mkfs(): Promise<MkfsCapabilities | undefined>;
  /** Does the EROFS image at `image` contain `path`? undefined when it cannot be read as EROFS. */
  imageHas(image: string, path: string): Promise<boolean | undefined>;
  /** A file of the EROFS image as text; undefined when it is not there or cannot be read. */
  imageText(image: string, path: string): Promise<string | undefined>;
  /** The SELinux label (security.selinux, without its NUL) of every entry of the EROFS image, with
   *  its kind as file_contexts names it; undefined when it cannot be read as EROFS. */
  imageLabels(image: string): Promise<ImageLabel[] | undefined>;
  /** The target of a symlink; undefined when it is none. */
  readLink(path: string): Promise<string | undefined>;
  /** How a user who is not root would be asked for root (src/elevate/choose.ts); absent: not known. */
  elevation?(): ElevationChoice;
  /** The file attributes `lsattr -d` shows (`----i---------e-------`); undefined when they cannot be read. */
  fileAttributes(path: string): Promise<string | undefined>;
}

export interface ImageLabel {
  path: string;
  kind: "--" | "-d" | "-l";
  label: string | undefined;
}

export interface DoctorInput {
  layout: Layout;
  extensionName: string;
  compression: string;
  nix: NixContext;
  /** Where ext's unit templates are (templates/ of the installed package). */
  templatesDir: string;
  host: Host;
  /** This machine's architecture as systemd names it (x86-64, arm64…); images for another are not merged. */
  architecture?: string;
}

export type Check = (input: DoctorInput) => Promise<Finding[]>;
