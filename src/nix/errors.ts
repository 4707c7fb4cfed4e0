import { BuildFailedError, ExitCode, ExtError, ToolFailedError, UnknownPackageError, type ExtErrorOptions } from "../errors.js";
import { tail } from "../exec.js";
import { parseDrvName, storePathName } from "./parse.js";

// Nix reports every failure as prose on stderr, worded differently across versions. This file turns
// that prose into a small set of facts (classifyNixStderr, pure and table-tested on recorded stderr)
// and the facts into ext's typed errors.

/** The package source cannot be used at all: missing directory, not a flake, unknown registry name… */
export class NixSourceError extends ExtError {
  override readonly code = "nix-source";
  constructor(message: string, options: ExtErrorOptions = {}) {
    super(message, { exitCode: ExitCode.nix, ...options });
  }
}

export type NixFailure =
  | { kind: "unknown-attribute"; flake: string; attr: string; tried: string[]; suggestions: string[] }
  | { kind: "build-failed"; drv: string; exitCode?: number; log: string[] }
  | { kind: "source-missing"; path: string }
  | { kind: "not-a-flake"; path?: string }
  | { kind: "registry"; ref?: string }
  | { kind: "network"; url?: string }
  | { kind: "bad-reference"; ref?: string }
  | { kind: "store-permissions"; path: string }
  | { kind: "source-changed"; ref: string }
  | { kind: "eval"; message: string }
  | { kind: "other"; message: string };

const LOG_TAIL_LINES = 20;
const DRV = "(/nix/store/[0-9a-df-np-sv-z]{32}-[^'\\s]+\\.drv)";

export function classifyNixStderr(stderr: string): NixFailure {
  // eslint-disable-next-line no-control-regex
  const text = stderr.replace(/\r/g, "").replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
  // Offline, Nix warns about every unreachable cache before the real error; only errors count below.
  const errors = text.split("\n").filter((l) => !l.startsWith("warning:")).join("\n");

  const unknown = /flake '([^']+)' does not provide attribute (.+)/.exec(text);
  if (unknown) {
    const tried = [...(unknown[2] ?? "").matchAll(/'([^']*)'/g)].map((m) => m[1] ?? "");
    return { kind: "unknown-attribute", flake: unknown[1] ?? "", attr: tried[tried.length - 1] ?? "", tried, suggestions: nixSuggestions(text) };
  }

  // Root causes first: when a dependency fails, Nix also reports every dependent as failed.
  const failed =
    new RegExp(`builder for '${DRV}' failed with exit code (\\d+)`).exec(text) ??
    new RegExp(`Cannot build '${DRV}'\\.\\s*\\n\\s*Reason: builder failed with exit code (\\d+)`).exec(text) ??
    new RegExp(`builder for '${DRV}' failed`).exec(text) ??
    new RegExp(`hash mismatch in fixed-output derivation '${DRV}'`).exec(text) ??
    new RegExp(`Cannot build '${DRV}'`).exec(text) ??
    new RegExp(`dependencies of derivation '${DRV}' failed to build`).exec(text) ??
    new RegExp(`build of '${DRV}' failed`).exec(text);
  if (failed) {
    const drv = failed[1] ?? "";
    const code = failed[2] === undefined ? undefined : Number(failed[2]);
    return { kind: "build-failed", drv, ...(code === undefined ? {} : { exitCode: code }), log: buildLogFromStderr(text, drv) };
  }

  // Nix ≥ 2.26: a locked source whose content is no longer what the lock says.
  const changed = /NAR hash mismatch in input '([^']+)'/.exec(errors);
  if (changed) return { kind: "source-changed", ref: changed[1] ?? "" };
  // Nix 2.34 (and later): a chroot store below a world-writable directory or a symlink.
  const unsafe = /Path "([^"]+)" is world-writable or a symlink/.exec(errors);
  if (unsafe) return { kind: "store-permissions", path: unsafe[1] ?? "" };

  // Nix 2.8: "getting status of '…': No such file or directory"; 2.26 and 2.34: "path '//tmp/x' does not exist".
  const missing = /getting status of '([^']+)': No such file or directory/.exec(errors) ?? /path '([^']+)' does not exist/.exec(errors);
  const missingPath = missing?.[1]?.replace(/\/{2,}/g, "/");
  // A `path:` source is copied to the store first, so its missing flake.nix is reported there.
  if (missingPath !== undefined && /^\/nix\/store\/[^/]+\/flake\.nix$/.test(missingPath)) return { kind: "not-a-flake" };
  if (missingPath !== undefined) return { kind: "source-missing", path: missingPath };
  // 2.8 and 2.26 quote the path with '…', 2.34 with "…".
  const notFlake = /path ['"]([^'"]+)['"] does not contain a '\/?flake\.nix'/.exec(errors) ??
    /path '([^']+)' is not a flake/.exec(errors) ??
    /could not find a flake\.nix file/.exec(errors) ??
    /does not contain a '\/?flake\.nix' file/.exec(errors);
  if (notFlake) return notFlake[1] === undefined ? { kind: "not-a-flake" } : { kind: "not-a-flake", path: notFlake[1] };
  const registry = /cannot find flake '([^']+)' in the flake registries/.exec(errors);
  if (registry) return { kind: "registry", ref: (registry[1] ?? "").replace(/^flake:/, "") };
  // Nix 2.8 with `flake-registry =` (offline) tries to download the empty registry URL.
  if (/unable to download ''/.test(errors)) return { kind: "registry" };
  const network = /unable to download '([^']+)'/.exec(errors);
  if (network || /Couldn't resolve host|Could not resolve host|Connection refused|timed out/.test(errors)) {
    return network?.[1] === undefined ? { kind: "network" } : { kind: "network", url: network[1] };
  }
  const badRef = /'([^']*)' is not a valid URL/.exec(errors) ?? /invalid flake reference '([^']*)'/.exec(errors) ??
    /unsupported flake input type|input '([^']*)' is unsupported/.exec(errors);
  if (badRef) return badRef[1] === undefined ? { kind: "bad-reference" } : { kind: "bad-reference", ref: badRef[1] };

  const message = errorBlock(errors);
  if (message) return { kind: "eval", message };
  return { kind: "other", message: tail(text, LOG_TAIL_LINES) };
}

/** Nix ≥ 2.8 appends its own guesses: "Did you mean recgood?" / "Did you mean one of a, b or c?". */
export function nixSuggestions(text: string): string[] {
  const m = /Did you mean (?:one of )?(.+?)\?\s*$/m.exec(text);
  if (!m) return [];
  return (m[1] ?? "").split(/, | or /).map((s) => s.trim()).filter((s) => /^[A-Za-z_][A-Za-z0-9_+'.-]*$/.test(s));
}

/**
 * What Nix's error says, without its evaluation trace: Nix ≥ 2.13 prints `error:`, then "… while
 * evaluating …" frames with source excerpts, and the root cause last as an indented `error:`; that
 * last one is the message (2.8 prints it alone). No "--show-trace" advice.
 */
export function errorBlock(text: string): string | undefined {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("error:"));
  if (start < 0) return undefined;
  let last = start;
  for (let i = start + 1; i < lines.length; i++) if (/^\s+error: /.test(lines[i] ?? "")) last = i;
  const indent = /^\s*/.exec(lines[last] ?? "")?.[0].length ?? 0;
  const block = lines.slice(last)
    .filter((l) => !/^\s*\((use '--show-trace'|stack trace truncated)/.test(l))
    .map((l) => l.slice(Math.min(indent, /^\s*/.exec(l)?.[0].length ?? 0)));
  return block.slice(0, 30).join("\n").trimEnd();
}

/** The builder's own output as Nix echoes it: the `name> line` stream of `-L`, else the
 *  "last N log lines" excerpt of the error message. */
export function buildLogFromStderr(text: string, drv: string): string[] {
  const prefix = `${parseDrvName(storePathName(drv).replace(/\.drv$/, "")).pname}> `;
  const streamed = text.split("\n").filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
  if (streamed.length > 0) return streamed.slice(-LOG_TAIL_LINES);
  const lines = text.split("\n");
  const at = lines.findIndex((l, i) => /[Ll]ast \d+ log lines:/.test(l) && lines.slice(0, i + 1).join("\n").includes(drv));
  const from = at >= 0 ? at : lines.findIndex((l) => /[Ll]ast \d+ log lines:/.test(l));
  if (from < 0) return [];
  const excerpt: string[] = [];
  for (const line of lines.slice(from + 1)) {
    const m = /^\s*> ?(.*)$/.exec(line);
    if (!m) break;
    excerpt.push(m[1] ?? "");
  }
  return excerpt.slice(-LOG_TAIL_LINES);
}

/**
 * A build log line as ext shows it: colour and cursor sequences and other control bytes removed. A
 * builder's output is anyone's text; on a terminal its escape sequences could move the cursor or
 * retitle the window, and in a file or pipe they are noise ("\x1b[31;1merror").
 */
export function printable(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g, "").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
}

export function logTail(log: string, lines = LOG_TAIL_LINES): string[] {
  const all = log.replace(/\r/g, "").trimEnd().split("\n");
  return all.length === 1 && all[0] === "" ? [] : all.slice(-lines);
}

/** Turns a failure about a whole source (not one package) into an ExtError; `undefined` when the
 *  failure is about something else. */
export function sourceError(failure: NixFailure, source: string): ExtError | undefined {
  switch (failure.kind) {
    case "source-missing": {
      // A package may read a missing file during evaluation too; only the source's own path counts.
      const dir = localDirectory(source);
      if (dir === undefined || !(failure.path === dir || dir.startsWith(failure.path.replace(/\/+$/, "") + "/") || failure.path.startsWith(dir + "/"))) {
        return undefined;
      }
      return new NixSourceError(`package source '${source}' does not exist (${failure.path})`, {
        hint: "check the path in the package source; local sources must be absolute paths to a directory with a flake.nix",
      });
    }
    case "not-a-flake":
      return new NixSourceError(`package source '${source}' is not a flake${failure.path ? ` (${failure.path} has no flake.nix)` : ""}`, {
        hint: "a package source must contain a flake.nix; point it at the directory that has one",
      });
    case "registry":
      return new NixSourceError(`package source '${source}' is not in the flake registry${failure.ref ? ` ('${failure.ref}')` : ""}`, {
        hint: "use a full flake reference such as 'github:NixOS/nixpkgs/nixos-unstable', or add the name with 'nix registry add'",
      });
    case "network":
      return new NixSourceError(`cannot fetch package source '${source}'${failure.url ? `: download of ${failure.url} failed` : ""}`, {
        hint: "check the network connection, or use a local source ('path:/…') or one already in the Nix store",
      });
    case "source-changed":
      return new NixSourceError(`package source '${source}' is no longer what the lock pinned (${failure.ref})`, {
        hint: "the source changed since it was locked and Nix's copy of the locked version is gone: 'ext upgrade' locks the source as it is now (tools.lock.json), or restore the locked version",
      });
    case "store-permissions":
      return new NixSourceError(`Nix refuses the store: ${failure.path} is world-writable or a symlink`, {
        hint: `make it writable by its owner only ('chmod o-w ${failure.path}'), or put the store elsewhere with --store DIR`,
        exitCode: ExitCode.permission,
      });
    case "bad-reference":
      return new NixSourceError(`'${source}' is not a flake reference Nix understands`, {
        hint: "use a reference such as 'nixpkgs', 'github:owner/repo/rev', 'path:/abs/dir' or 'git+file:///abs/repo'",
      });
    default:
      return undefined;
  }
}

export function unknownPackage(pkg: string, source: string, suggestions: string[]): UnknownPackageError {
  return new UnknownPackageError(pkg, source, suggestions);
}

/** A build failure, named after the package the user asked for (not Nix's derivation hash). */
export function buildFailed(options: { packages: string[]; drv: string; rootOfPackage: boolean; log: string[]; exitCode?: number; storeRoot?: string }): BuildFailedError {
  const names = options.packages.map((p) => `'${p}'`).join(", ");
  const drvName = storePathName(options.drv).replace(/\.drv$/, "");
  const subject = options.packages.length === 0 ? `building '${drvName}'`
    : options.packages.length === 1 ? `package ${names}` : `packages ${names}`;
  const why = options.rootOfPackage || options.packages.length === 0
    ? `failed to build${options.exitCode === undefined ? "" : ` (builder exit code ${options.exitCode})`}`
    : `failed to build: its dependency '${drvName}' failed${options.exitCode === undefined ? "" : ` (builder exit code ${options.exitCode})`}`;
  const log = options.log.map(printable);
  const details = log.length > 0 ? `last ${log.length} log lines of ${drvName}:\n${log.map((l) => `  > ${l}`).join("\n")}` : undefined;
  // A private store must be named, or `nix log` looks in the system store and finds nothing.
  const store = options.storeRoot === undefined || options.storeRoot === "/" ? "" : `--store ${options.storeRoot} `;
  return new BuildFailedError(`${subject} ${why}`, {
    hint: `see the full build log with 'nix log ${store}${options.drv}'`,
    exitCode: ExitCode.nix,
    ...(details === undefined ? {} : { details }),
  });
}

/** Evaluating a package failed (nixpkgs refuses broken/unfree/insecure packages this way too). */
export function evalFailed(pkg: string, source: string, message: string): BuildFailedError {
  const unfree = /has an unfree license/.test(message);
  const refusing = /refusing to evaluate|is marked as (broken|insecure)|is not available on the requested hostPlatform/.test(message);
  return new BuildFailedError(unfree ? `package '${pkg}' from ${source} has an unfree license` : `package '${pkg}' from ${source} could not be evaluated`, {
    details: message,
    hint: unfree
      ? `to allow it: --allow-unfree (ext add, ext build), or "allowUnfree": true for '${pkg}' in tools.json`
      : refusing
        ? "nixpkgs refuses this package in its default configuration (broken, insecure or unsupported on this system)"
        : "the package definition fails to evaluate; the message above is Nix's",
    exitCode: ExitCode.nix,
  });
}

/** Anything else: show what Nix said. */
export function nixFailed(what: string, command: string, stderr: string): ToolFailedError {
  return new ToolFailedError(`nix failed while ${what}`, {
    details: errorBlock(stderr) ?? tail(stderr, LOG_TAIL_LINES),
    hint: `the command was: ${command}`,
    exitCode: ExitCode.nix,
  });
}

/** The directory a local flake reference points at (`path:/x?…`, `git+file:///x`), if it is one. */
export function localDirectory(source: string): string | undefined {
  const m = /^(?:path:|git\+file:\/\/|file:\/\/)?(\/[^?]*)/.exec(source);
  return m?.[1]?.replace(/\/+$/, "") || undefined;
}
