import type { Options as ExecaOptions } from "execa";
import { MissingToolError, ToolFailedError } from "./errors.js";
import { commandObserver, type CommandEvent } from "./exec-observer.js";

export type { CommandEvent, CommandObserver } from "./exec-observer.js";
export { observeCommands } from "./exec-observer.js";

// Every external program ext runs goes through here, so that a missing tool becomes a
// MissingToolError with an install hint, and a failure shows the exact command line and exit code.

const INSTALL_HINTS: Record<string, string> = {
  nix: "install Nix (Debian/Ubuntu: apt install nix-bin; elsewhere: https://nixos.org/download)",
  "nix-store": "install Nix (Debian/Ubuntu: apt install nix-bin)",
  "mkfs.erofs": "install erofs-utils (apt install erofs-utils / dnf install erofs-utils)",
  "dump.erofs": "install erofs-utils (apt install erofs-utils / dnf install erofs-utils)",
  "fsck.erofs": "install erofs-utils (apt install erofs-utils / dnf install erofs-utils)",
  "systemd-sysext": "systemd-sysext ships with systemd ≥ 248; this host's systemd is too old or missing",
  patchelf: "install patchelf",
  gpg: "install GnuPG (apt install gpg gpg-agent / dnf install gnupg2)",
  gpgv: "install gpgv (apt install gpgv / dnf install gnupg2)",
  veritysetup: "install cryptsetup-bin (apt install cryptsetup-bin / dnf install cryptsetup)",
  openssl: "install openssl (apt install openssl / dnf install openssl)",
  "systemd-repart": "install systemd-repart (Debian ≥ 13: apt install systemd-repart; it ships with systemd ≥ 254 elsewhere)",
};

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  /** Do not throw on a non-zero exit; the caller inspects exitCode. */
  reject?: boolean;
  timeoutMs?: number;
  /** Called with each stderr line as it arrives (progress). */
  onStderrLine?: (line: string) => void;
}

export interface RunResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** execa is about 150 modules: it loads with the first command run, not at start-up (a no-op
 *  `ext apply` runs no command at all). */
let execaModule: Promise<typeof import("execa")> | undefined;
function loadExeca(): Promise<typeof import("execa")> {
  return (execaModule ??= import("execa"));
}

/** Runs argv without a shell: names are never spliced into shell text. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const execaOptions: ExecaOptions = {
    cwd: options.cwd,
    env: options.env,
    extendEnv: true,
    input: options.input,
    reject: false,
    stripFinalNewline: false,
    timeout: options.timeoutMs,
    encoding: "utf8",
  };
  const { execa } = await loadExeca();
  const lines = options.onStderrLine;
  const command = [file, ...args].map(quoteForDisplay).join(" ");
  const event: CommandEvent = { file, args, command };
  const started = Date.now();
  commandObserver()?.commandStarted?.(event);
  let result;
  if (lines) {
    const child = execa(file, args, { ...execaOptions, buffer: true });
    let pending = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      let i;
      while ((i = pending.indexOf("\n")) >= 0) {
        lines(pending.slice(0, i));
        pending = pending.slice(i + 1);
      }
    });
    result = await child;
  } else {
    result = await execa(file, args, execaOptions);
  }
  commandObserver()?.commandFinished?.({ ...event, exitCode: result.exitCode ?? -1, durationMs: Date.now() - started });
  const code = (result as { code?: string }).code;
  if (code === "ENOENT" && (result as { failed?: boolean }).failed && result.exitCode === undefined) {
    throw new MissingToolError(file, INSTALL_HINTS[file] ?? `install '${file}' and make sure it is on PATH`);
  }
  const out: RunResult = {
    command,
    exitCode: result.exitCode ?? (result.signal ? 128 : -1),
    stdout: String(result.stdout ?? ""),
    stderr: String(result.stderr ?? ""),
  };
  if (out.exitCode !== 0 && options.reject !== false) {
    throw new ToolFailedError(`'${command}' failed with exit code ${out.exitCode}${result.signal ? ` (${result.signal})` : ""}`, {
      details: tail(out.stderr, 20),
    });
  }
  return out;
}

export interface BytesResult {
  command: string;
  exitCode: number;
  stdout: Buffer;
  stderr: string;
  /** stdout grew past `maxOutput` and the tool was stopped. */
  overflowed: boolean;
}

/**
 * Runs argv with `input` on stdin and returns stdout as bytes: for decompressors and compressors, whose
 * output is not text. A missing tool is a MissingToolError; a non-zero exit is the caller's to judge.
 */
export async function runBytes(file: string, args: readonly string[], input: Uint8Array, maxOutput: number): Promise<BytesResult> {
  const { execa } = await loadExeca();
  const command = [file, ...args].map(quoteForDisplay).join(" ");
  const event: CommandEvent = { file, args, command };
  const started = Date.now();
  commandObserver()?.commandStarted?.(event);
  const result = await execa(file, args, {
    input, encoding: "buffer", reject: false, stripFinalNewline: false, extendEnv: true, maxBuffer: maxOutput,
  });
  commandObserver()?.commandFinished?.({ ...event, exitCode: result.exitCode ?? -1, durationMs: Date.now() - started });
  if ((result as { code?: string }).code === "ENOENT" && result.exitCode === undefined) {
    throw new MissingToolError(file, INSTALL_HINTS[file] ?? `install '${file}' and make sure it is on PATH`);
  }
  const stdout = result.stdout as unknown as Uint8Array | undefined;
  const stderr = result.stderr as unknown as Uint8Array | undefined;
  return {
    command,
    exitCode: result.exitCode ?? (result.signal ? 128 : -1),
    stdout: stdout === undefined ? Buffer.alloc(0) : Buffer.from(stdout.buffer, stdout.byteOffset, stdout.byteLength),
    stderr: stderr === undefined ? "" : Buffer.from(stderr).toString("utf8"),
    overflowed: (result as { isMaxBuffer?: boolean }).isMaxBuffer === true,
  };
}

/** Is the tool on PATH? Used by doctor and for early checks before any work starts. */
export async function hasTool(file: string): Promise<boolean> {
  const { execa } = await loadExeca();
  const result = await execa("sh", ["-c", 'command -v "$1"', "sh", file], { reject: false });
  return result.exitCode === 0;
}

export function tail(text: string, lines: number): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}

function quoteForDisplay(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
