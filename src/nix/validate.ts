import { InvalidNameError } from "../errors.js";

// Everything a user types reaches Nix only as one argv element (`<source>#<attr>`), never as Nix
// code and never through a shell. These checks are still strict: a name that fails here would fail
// in Nix anyway, only later and with a worse message, and a strict charset keeps names safe to show
// in file names, logs and error messages.

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_+-]*$/;
const MAX_ATTR_LENGTH = 200;
const MAX_SEGMENTS = 8;
const MAX_FLAKE_REF_LENGTH = 1000;

/** Shows the input with control characters visible, so an error about `a\nb` does not print two lines. */
export function showInput(input: string): string {
  return JSON.stringify(input);
}

function invalid(what: string, input: string, why: string, hint: string): InvalidNameError {
  return new InvalidNameError(`invalid ${what} ${showInput(input)}: ${why}`, { hint });
}

const ATTR_HINT = "package names are Nix attribute paths such as 'ripgrep' or 'python3Packages.requests' " +
  "(letters, digits, '_', '-', '+', separated by dots)";

/** Checks a package name or attribute path (`ripgrep`, `python3Packages.requests`); returns its segments. */
export function validateAttrPath(input: string, what = "package name"): string[] {
  if (typeof input !== "string" || input.length === 0) {
    throw invalid(what, String(input ?? ""), "it is empty", ATTR_HINT);
  }
  if (input.length > MAX_ATTR_LENGTH) {
    throw invalid(what, input.slice(0, 40) + "…", `it is longer than ${MAX_ATTR_LENGTH} characters`, ATTR_HINT);
  }
  const bad = firstForbidden(input);
  if (bad !== undefined) {
    throw invalid(what, input, `it contains ${bad}`, ATTR_HINT);
  }
  const segments = input.split(".");
  if (segments.length > MAX_SEGMENTS) {
    throw invalid(what, input, `it has more than ${MAX_SEGMENTS} dot-separated parts`, ATTR_HINT);
  }
  for (const segment of segments) {
    if (segment.length === 0) {
      throw invalid(what, input, "it has an empty part (leading, trailing or doubled dot)", ATTR_HINT);
    }
    if (!SEGMENT.test(segment)) {
      throw invalid(what, input, `part ${showInput(segment)} must start with a letter or '_' and contain only letters, digits, '_', '-' or '+'`, ATTR_HINT);
    }
  }
  return segments;
}

/** Names what makes a string unacceptable in a way a person recognises, before the generic charset rule. */
function firstForbidden(input: string): string | undefined {
  if (input.includes("${")) return "'${' (Nix interpolation)";
  if (/\s/.test(input)) return "whitespace";
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(input)) return "a control character";
  if (/['"`]/.test(input)) return "a quote";
  if (input.includes("#")) return "'#' (the package source and the name are given separately)";
  if (input.includes("/")) return "'/' (names are attribute paths, not file paths)";
  if (/[;&|<>$\\]/.test(input)) return "a shell or Nix metacharacter";
  return undefined;
}

export function validateOutputName(input: string): void {
  if (typeof input !== "string" || !SEGMENT.test(input) || input.length > 64) {
    throw invalid("output name", String(input ?? ""), "outputs are names such as 'out', 'bin', 'man'", "list the outputs a package has with 'ext info <package>'");
  }
}

const FLAKE_HINT = "use a flake reference such as 'nixpkgs', 'github:NixOS/nixpkgs/<rev>', 'path:/abs/dir', " +
  "'git+file:///abs/repo' or an absolute directory path; the package name goes separately";

// Characters that appear in real flake references (URLs with queries, registry ids, paths). Anything
// else, quotes and shell metacharacters in particular, is rejected rather than passed on.
const FLAKE_CHARS = /^[A-Za-z0-9._~:/?&=+%@!,*-]+$/;
const SCHEME = /^([a-z][a-z0-9+.-]*):(.*)$/;
const INDIRECT = /^[A-Za-z][A-Za-z0-9_-]*(\/[A-Za-z0-9._-]+){0,2}(\?[A-Za-z0-9._~:/?&=+%@!,*-]*)?$/;

/** Checks a flake reference and returns it normalised (a plain absolute path becomes `path:/abs`). */
export function validateFlakeRef(input: string): string {
  if (typeof input !== "string" || input.length === 0) {
    throw invalid("package source", String(input ?? ""), "it is empty", FLAKE_HINT);
  }
  if (input.length > MAX_FLAKE_REF_LENGTH) {
    throw invalid("package source", input.slice(0, 40) + "…", `it is longer than ${MAX_FLAKE_REF_LENGTH} characters`, FLAKE_HINT);
  }
  if (/\s/.test(input)) throw invalid("package source", input, "it contains whitespace", FLAKE_HINT);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(input)) throw invalid("package source", input, "it contains a control character", FLAKE_HINT);
  if (input.includes("#")) {
    throw invalid("package source", input, "it contains '#'; give the package name separately", FLAKE_HINT);
  }
  if (input.startsWith("-")) throw invalid("package source", input, "it starts with '-'", FLAKE_HINT);
  if (!FLAKE_CHARS.test(input)) {
    throw invalid("package source", input, "it contains characters that do not belong in a flake reference (quotes, '$', ';', spaces…)", FLAKE_HINT);
  }
  if (input.startsWith("/")) {
    return `path:${normaliseAbsolute(input)}`;
  }
  if (input.startsWith(".") || input.startsWith("~")) {
    throw invalid("package source", input, "relative paths depend on the directory ext runs in", "use an absolute path such as 'path:/home/me/flake'");
  }
  const scheme = SCHEME.exec(input);
  if (scheme) {
    const [, kind, rest = ""] = scheme;
    if (rest.length === 0) throw invalid("package source", input, `nothing follows '${kind}:'`, FLAKE_HINT);
    if (kind === "path") {
      if (!rest.startsWith("/")) {
        throw invalid("package source", input, "a 'path:' source must be an absolute path", "use 'path:/absolute/dir'");
      }
      return `path:${normaliseAbsolute(rest)}`;
    }
    if ((kind === "git+file" || kind === "file") && !rest.startsWith("/")) {
      throw invalid("package source", input, `a '${kind}:' source must be an absolute path`, `use '${kind}:///absolute/dir'`);
    }
    return input;
  }
  if (INDIRECT.test(input)) return input;
  throw invalid("package source", input, "it is not a flake reference", FLAKE_HINT);
}

/** Drops `//`, `/./` and a trailing `/` (but keeps `?query`), so one directory has one spelling in tools.json. */
function normaliseAbsolute(path: string): string {
  const q = path.indexOf("?");
  const dir = q >= 0 ? path.slice(0, q) : path;
  const query = q >= 0 ? path.slice(q) : "";
  const parts = dir.split("/").filter((p) => p.length > 0 && p !== ".");
  return `/${parts.join("/")}${query}`;
}

/** The argv string naming one package (or one output of it) for `nix build` / `nix eval`. */
/** `source#attr`, or one output of it: `source#attr^out` where Nix has that syntax (see NixFeatures). */
export function installable(source: string, attr: string, output?: string, caret = true): string {
  if (output === undefined) return `${source}#${attr}`;
  return caret ? `${source}#${attr}^${output}` : `${source}#${attr}.${output}`;
}

const SYSTEM = /^[A-Za-z0-9_]+-[A-Za-z0-9_]+$/;

export function validateSystem(system: string): void {
  if (!SYSTEM.test(system)) {
    throw invalid("Nix system", system, "systems look like 'x86_64-linux' or 'aarch64-linux'", "check the configured system");
  }
}

const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/;

export function isStorePath(path: string): boolean {
  return STORE_PATH.test(path) && !path.endsWith("/.") && !path.endsWith("/..");
}

export function validateStorePath(path: string): void {
  if (!isStorePath(path)) {
    throw invalid("store path", path, "store paths look like /nix/store/<32-character hash>-<name>", "pass paths that Nix printed");
  }
}
