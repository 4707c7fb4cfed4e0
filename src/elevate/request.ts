import { realpathSync, statSync } from "node:fs";
import { dirname, delimiter, isAbsolute, resolve } from "node:path";
import type { ElevatorKind } from "./choose.js";

// The command line the root part runs. It is built by ext from what the unprivileged part resolved,
// not copied from what the user typed: paths are absolute and real (a symlink or a relative path
// cannot mean something else to root), the settings that came from the environment ($EXT_SOURCE,
// $EXT_STORE) become options, and of the environment only a short named list goes along.

/** Passed on to the root part as they are: they change how ext prints, never what it does. */
export const PASSED_ENV = ["TERM", "NO_COLOR", "COLUMNS", "LANG", "LC_ALL", "LC_MESSAGES", "EXT_TIMINGS"] as const;
/** PATH goes too, but only its directories that only root can change (see safePath). */
export const PASSED_ENV_NAMES: readonly string[] = [...PASSED_ENV, "PATH"];
/** Directories root's PATH always has, after the user's safe ones. */
const ROOT_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** The global options as the user gave them (before the context resolved them). */
export interface GivenGlobals {
  root: string;
  source?: string | undefined;
  store?: string | undefined;
  selinuxContexts?: string | undefined;
  name: string;
  compression: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  wait: boolean;
}

/** The global options for the root part: absolute, real paths; environment settings made explicit. */
export function resolvedGlobals(g: GivenGlobals, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string[] {
  const out: string[] = [];
  const root = realOrResolved(resolve(cwd, g.root));
  if (root !== "/") out.push("--root", root);
  const source = g.source ?? env["EXT_SOURCE"];
  if (source !== undefined && source !== "") out.push("--source", realSource(source));
  const store = g.store ?? (env["EXT_STORE"] || undefined);
  if (store !== undefined) out.push("--store", store === "auto" || store === "system" ? store : realOrResolved(resolve(cwd, store)));
  if (g.selinuxContexts !== undefined) {
    const s = g.selinuxContexts;
    out.push("--selinux-contexts", s === "auto" || s === "none" ? s : realOrResolved(resolve(cwd, s)));
  }
  out.push("--name", g.name, "--compression", g.compression);
  if (g.json) out.push("--json");
  if (g.quiet) out.push("--quiet");
  if (g.verbose) out.push("--verbose");
  if (!g.wait) out.push("--no-wait");
  return out;
}

/** `path:/dir` (and a plain absolute path) with the directory's symlinks resolved; other references as they are. */
function realSource(source: string): string {
  const m = /^(path:)?(\/[^?]*)(\?.*)?$/.exec(source);
  if (!m) return source;
  return `path:${realOrResolved(m[2]!)}${m[3] ?? ""}`;
}

function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** The environment the root part gets: the named variables that are set, and PATH cut down. */
export function passedEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED_ENV) {
    const v = env[name];
    if (v !== undefined) out[name] = v;
  }
  out["PATH"] = safePath(env["PATH"] ?? "");
  return out;
}

/** The user's PATH without the directories another user than root could change (root would run
 *  whatever they put there), then root's usual directories. A Nix profile's bin (root-owned store
 *  paths) stays, so root finds the user's `nix` where root's PATH alone would not. */
export function safePath(path: string, isSafe: (dir: string) => boolean = onlyRootWrites): string {
  const dirs: string[] = [];
  for (const d of path.split(delimiter)) {
    if (!isAbsolute(d) || dirs.includes(d) || !isSafe(d)) continue;
    dirs.push(d);
  }
  for (const d of ROOT_PATH) if (!dirs.includes(d)) dirs.push(d);
  return dirs.join(delimiter);
}

/** This path (its real location) and every directory above it belong to root and nobody else can
 *  change them. Above the path itself a sticky directory that others may write (/tmp, where CI keeps
 *  its clone) is fine: nobody but root can rename or remove root's entries in it. */
export function onlyRootWrites(path: string): boolean {
  let p: string;
  try {
    p = realpathSync(path);
  } catch {
    return false;
  }
  for (let leaf = true; ; leaf = false) {
    try {
      const s = statSync(p);
      const othersWrite = (s.mode & 0o022) !== 0;
      if (s.uid !== 0 || (othersWrite && (leaf || (s.mode & 0o1000) === 0))) return false;
    } catch {
      return false;
    }
    const up = dirname(p);
    if (up === p) return true;
    p = up;
  }
}

/** The part of the elevated command line that belongs to the elevator. */
export function elevatorArgv(kind: ElevatorKind, program: string, env: NodeJS.ProcessEnv = process.env, stdinIsTTY = process.stdin.isTTY === true): string[] {
  switch (kind) {
    case "run0":
      // run0 asks polkit (with its own terminal agent where there is a terminal).
      return [program];
    case "pkexec":
      return [program];
    case "sudo":
      // A terminal: sudo asks there. None (a launcher, a pipe): the askpass helper the user set up, or
      // nothing — then only a sudo that needs no password works, and says so otherwise.
      if (stdinIsTTY) return [program, "--"];
      if (env["SUDO_ASKPASS"]) return [program, "-A", "--"];
      return [program, "-n", "--"];
  }
}
