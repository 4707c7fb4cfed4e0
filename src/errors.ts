// Errors come in two tiers, caught at one boundary (src/cli/main.ts):
// an ExtError is the user's business — its message and hint are printed and ext exits with its code;
// anything else is a bug — the stack is printed with a request to report it.

export const ExitCode = {
  ok: 0,
  user: 1,
  usage: 2,
  missingTool: 3,
  permission: 4,
  locked: 5,
  nix: 6,
  activation: 7,
  internal: 70,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ExtErrorOptions {
  hint?: string;
  exitCode?: ExitCode;
  cause?: unknown;
  /** Extra lines shown under the message, e.g. the tail of a build log. */
  details?: string;
}

export class ExtError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;
  readonly details: string | undefined;
  /** Stable machine-readable kind, used in --json error output. */
  readonly code: string = "error";

  constructor(message: string, options: ExtErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.user;
    this.details = options.details;
  }
}

export class UsageError extends ExtError {
  override readonly code = "usage";
  constructor(message: string, options: ExtErrorOptions = {}) {
    super(message, { exitCode: ExitCode.usage, ...options });
  }
}

export class InvalidNameError extends ExtError {
  override readonly code = "invalid-name";
}

export class MissingToolError extends ExtError {
  override readonly code = "missing-tool";
  constructor(readonly tool: string, hint: string) {
    super(`'${tool}' was not found on PATH`, { hint, exitCode: ExitCode.missingTool });
  }
}

export class ToolFailedError extends ExtError {
  override readonly code = "tool-failed";
}

export class UnknownPackageError extends ExtError {
  override readonly code = "unknown-package";
  constructor(readonly pkg: string, readonly source: string, readonly suggestions: string[]) {
    super(`unknown package '${pkg}' in ${source}`, {
      hint: suggestions.length > 0
        ? `did you mean ${suggestions.map((s) => `'${s}'`).join(", ")}?`
        : `run 'ext search ${pkg}' to look for it`,
      exitCode: ExitCode.nix,
    });
  }
}

export class BuildFailedError extends ExtError {
  override readonly code = "build-failed";
}

export class CollisionError extends ExtError {
  override readonly code = "collision";
}

export class UnsafeImageError extends ExtError {
  override readonly code = "unsafe-image";
}

/** An image whose bytes are not what its name (its sha256) and record say: never linked. */
export class DamagedImageError extends ExtError {
  override readonly code = "damaged-image";
}

export class StateError extends ExtError {
  override readonly code = "state";
}

export class PermissionError extends ExtError {
  override readonly code = "permission";
  constructor(message: string, options: ExtErrorOptions = {}) {
    super(message, { exitCode: ExitCode.permission, ...options });
  }
}

export class LockedError extends ExtError {
  override readonly code = "locked";
  constructor(message: string, options: ExtErrorOptions = {}) {
    super(message, { exitCode: ExitCode.locked, ...options });
  }
}

export class ActivationError extends ExtError {
  override readonly code = "activation";
  constructor(message: string, options: ExtErrorOptions = {}) {
    super(message, { exitCode: ExitCode.activation, ...options });
  }
}

export class ManifestError extends ExtError {
  override readonly code = "manifest";
}

export function isExtError(e: unknown): e is ExtError {
  return e instanceof ExtError;
}

/** Node's system errors carry a code; this reads it without an unsafe cast at every call site. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e && typeof (e as { code: unknown }).code === "string"
    ? (e as { code: string }).code
    : undefined;
}
