import type { ClosureEntry, LockedSource, SearchResult } from "./types.js";

// Pure parsers for what nix prints. Nix's JSON output changed shape several times; each parser
// accepts every shape that a supported version prints and says which version printed which.

export class NixOutputError extends Error {
  constructor(what: string, detail: string) {
    super(`unexpected output from nix (${what}): ${detail}`);
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new NixOutputError(what, `not JSON (${(e as Error).message}): ${JSON.stringify(text.slice(0, 200))}`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

// ---------------------------------------------------------------------------------------------
// nix build --json (all versions): [{ drvPath, outputs: { out: "/nix/store/…" }, startTime?, stopTime? }]

export interface BuiltEntry {
  drvPath?: string;
  outputs: Record<string, string>;
}

export function parseBuildJson(stdout: string): BuiltEntry[] {
  const data = parseJson(stdout, "nix build --json");
  if (!Array.isArray(data)) throw new NixOutputError("nix build --json", "expected an array");
  return data.map((item, i) => {
    if (!isRecord(item)) throw new NixOutputError("nix build --json", `entry ${i} is not an object`);
    const outputs: Record<string, string> = {};
    if (isRecord(item.outputs)) {
      for (const [name, p] of Object.entries(item.outputs)) if (typeof p === "string") outputs[name] = p;
    }
    // A store-path installable (not a derivation) is reported as { path } by some versions.
    if (typeof item.path === "string" && Object.keys(outputs).length === 0) outputs.out = item.path;
    const drvPath = str(item.drvPath);
    return drvPath === undefined ? { outputs } : { drvPath, outputs };
  });
}

// ---------------------------------------------------------------------------------------------
// nix path-info --json [--recursive]
//
//  * Nix ≤ 2.18 (Debian 12's 2.8 included): an array of objects, each with `path`; an invalid path
//    is `{ path, valid: false }` and the exit code is still 0.
//  * Nix 2.19 – 2.32 (commit "Make `nix path-info --json` return an object not array"): an object
//    keyed by full store path; an invalid path maps to null.
//  * Nix ≥ 2.33 `--json-format 1`: the 2.19 shape, each value also carrying `version: 1` and `storeDir`.
//  * Nix ≥ 2.33 `--json-format 2` (rl-2.33 "Store path info JSON format changes"):
//    `{ version: 2, storeDir, info: { "<hash>-<name>": {…} | null } }` with references as base names.

export interface PathInfoResult {
  entries: ClosureEntry[];
  /** Paths nix reported as not valid (not in the store). */
  invalid: string[];
}

export function parsePathInfoJson(stdout: string, storeDirDefault = "/nix/store"): PathInfoResult {
  const what = "nix path-info --json";
  const data = parseJson(stdout, what);
  const entries: ClosureEntry[] = [];
  const invalid: string[] = [];

  const add = (key: string, info: unknown, storeDir: string): void => {
    const path = absolute(key, storeDir);
    if (info === null || (isRecord(info) && info.valid === false)) {
      invalid.push(path);
      return;
    }
    if (!isRecord(info)) throw new NixOutputError(what, `info for ${path} is not an object`);
    const narSize = info.narSize;
    if (typeof narSize !== "number" || !Number.isFinite(narSize) || narSize < 0) {
      throw new NixOutputError(what, `${path} has no valid narSize`);
    }
    const refs = info.references;
    if (!Array.isArray(refs) || !refs.every((r) => typeof r === "string")) {
      throw new NixOutputError(what, `${path} has no references list`);
    }
    const dir = str(info.storeDir) ?? storeDir;
    entries.push({ path, narSize, references: [...new Set(refs.map((r) => absolute(r, dir)))].sort() });
  };

  if (Array.isArray(data)) {
    for (const item of data) {
      if (!isRecord(item) || typeof item.path !== "string") throw new NixOutputError(what, "array entry without 'path'");
      add(item.path, item, storeDirDefault);
    }
  } else if (isRecord(data) && isRecord(data.info) && typeof data.version === "number") {
    const storeDir = str(data.storeDir) ?? storeDirDefault;
    for (const [key, info] of Object.entries(data.info)) add(key, info, storeDir);
  } else if (isRecord(data)) {
    const storeDir = str(data.storeDir) ?? storeDirDefault;
    for (const [key, info] of Object.entries(data)) {
      // Tolerate top-level metadata beside the paths (rl-2.33 describes `storeDir` there for format 1).
      if (!key.includes("/") && !looksLikeBaseName(key)) continue;
      add(key, info, storeDir);
    }
  } else {
    throw new NixOutputError(what, "neither an array nor an object");
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries, invalid };
}

function looksLikeBaseName(s: string): boolean {
  return /^[0-9a-df-np-sv-z]{32}-/.test(s);
}

function absolute(pathOrBase: string, storeDir: string): string {
  return pathOrBase.startsWith("/") ? pathOrBase : `${storeDir.replace(/\/+$/, "")}/${pathOrBase}`;
}

// ---------------------------------------------------------------------------------------------
// nix flake metadata --json
//  * `url` is the locked URL in every version (newer source: "FIXME: rename to lockedUrl"); some
//    releases also print `lockedUrl`.
//  * `locked` holds rev/narHash/lastModified; newer versions also print top-level `revision`.

export function parseFlakeMetadata(stdout: string, original: string): LockedSource {
  const what = "nix flake metadata --json";
  const data = parseJson(stdout, what);
  if (!isRecord(data)) throw new NixOutputError(what, "expected an object");
  const locked = isRecord(data.locked) ? data.locked : {};
  const lockedUrl = str(data.lockedUrl) ?? str(data.url);
  if (lockedUrl === undefined) throw new NixOutputError(what, "no 'url' or 'lockedUrl'");
  const result: LockedSource = { original, locked: lockedUrl };
  const rev = str(locked.rev) ?? str(data.revision);
  if (rev !== undefined) result.rev = rev;
  const narHash = str(locked.narHash);
  if (narHash !== undefined) result.narHash = narHash;
  const lastModified = typeof data.lastModified === "number" ? data.lastModified
    : typeof locked.lastModified === "number" ? locked.lastModified : undefined;
  if (lastModified !== undefined) result.lastModified = lastModified;
  // A local directory (`path:`) is pinned to the copy Nix made of it in the store: the directory
  // itself may change after the lock is written, and Nix ≥ 2.26 then refuses the locked reference
  // ("NAR hash mismatch in input"), where 2.8 quietly used its store copy. The copy is immutable.
  const storePath = str(data.path);
  if (locked.type === "path" && narHash !== undefined && storePath !== undefined && /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[^/]+$/.test(storePath)) {
    result.locked = `path:${storePath}?narHash=${encodeURIComponent(narHash)}`;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// nix search --json
//  * Nix ≥ 2.4 (flakes): `{ "legacyPackages.x86_64-linux.hello": { pname, version, description } }`.
//  * Nix 2.3 (pre-flakes, shown for completeness): `{ "nixpkgs.hello": { pkgName, version, description } }`.

export function parseSearchJson(stdout: string): SearchResult[] {
  const what = "nix search --json";
  const data = parseJson(stdout, what);
  if (!isRecord(data)) throw new NixOutputError(what, "expected an object");
  const results: SearchResult[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (!isRecord(value)) continue;
    const legacy = typeof value.pkgName === "string" && value.pname === undefined;
    const attr = legacy ? key.replace(/^[^.]+\./, "") : key.replace(/^(?:legacyPackages|packages)\.[^.]+\./, "");
    results.push({
      attr,
      pname: str(value.pname) ?? str(value.pkgName) ?? attr,
      version: str(value.version) ?? "",
      description: str(value.description) ?? "",
    });
  }
  results.sort((a, b) => (a.attr < b.attr ? -1 : a.attr > b.attr ? 1 : 0));
  return results;
}

// ---------------------------------------------------------------------------------------------
// nix eval --json <src>#<attr> --apply META_EXPR (see meta.ts)

export interface EvalMeta {
  isDerivation: boolean;
  isSet: boolean;
  name?: string;
  pname?: string;
  version?: string;
  drvPath?: string;
  outputName: string;
  outputs: string[];
  outputsToInstall?: string[];
  description?: string;
  homepage?: string;
  license?: string;
}

export function parseMetaJson(stdout: string): EvalMeta {
  const what = "nix eval (package metadata)";
  const data = parseJson(stdout, what);
  if (!isRecord(data)) throw new NixOutputError(what, "expected an object");
  const strings = (v: unknown): string[] | undefined =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined;
  const meta: EvalMeta = {
    isDerivation: data.isDerivation === true,
    isSet: data.isSet === true,
    outputName: str(data.outputName) ?? "out",
    outputs: strings(data.outputs) ?? ["out"],
  };
  for (const key of ["name", "pname", "version", "drvPath", "description", "homepage"] as const) {
    const v = str(data[key]);
    if (v !== undefined && v !== "") meta[key] = v;
  }
  const toInstall = strings(data.outputsToInstall);
  if (toInstall && toInstall.length > 0) meta.outputsToInstall = toInstall;
  const licenses = strings(data.licenses);
  if (licenses && licenses.length > 0) meta.license = licenses.join(", ");
  return meta;
}

export function parseAttrNames(stdout: string): string[] {
  const data = parseJson(stdout, "nix eval (attribute names)");
  if (!Array.isArray(data)) throw new NixOutputError("nix eval (attribute names)", "expected an array");
  return data.filter((x): x is string => typeof x === "string");
}

// ---------------------------------------------------------------------------------------------

/** Nix's own split of `name` into pname and version: the version starts at the first '-' that is
 *  followed by something other than a letter (builtins.parseDrvName). */
export function parseDrvName(name: string): { pname: string; version: string } {
  for (let i = 0; i < name.length - 1; i++) {
    if (name[i] === "-" && !/[A-Za-z]/.test(name[i + 1] ?? "")) {
      return { pname: name.slice(0, i), version: name.slice(i + 1) };
    }
  }
  return { pname: name, version: "" };
}

/** `/nix/store/<hash>-ripgrep-14.1.0` → `ripgrep-14.1.0`. */
export function storePathName(storePath: string): string {
  const base = storePath.split("/")[3] ?? storePath;
  return base.replace(/^[0-9a-df-np-sv-z]{32}-/, "");
}
