import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { ManifestError, errnoCode, isExtError } from "../errors.js";
import { validateFlakeRef } from "../nix/index.js";
import { parseJson, positionOf, showPath, type JsonPath, type ParsedJson, type Position } from "./position.js";
import { checkLock, checkTools, type SchemaProblem } from "./schema.js";
import {
  LOCK_VERSION, MANIFEST_DEFAULT_SOURCE, MANIFEST_VERSION,
  type LockData, type ManifestData, type ManifestEntry,
} from "./types.js";

// Reading tools.json and its lock: strict JSON, then the JSON Schema, then what a schema cannot say
// (a source must be a flake reference ext accepts). Every error names the file, the line and column,
// the JSON path and what was expected; nothing is changed before a file has been read in full.

export interface Manifest {
  /** Absolute path. */
  file: string;
  /** How to name the file in messages (as the user gave it). */
  shown: string;
  text: string;
  parsed: ParsedJson;
  data: ManifestData;
  /** Top-level source, normalised (default nixpkgs). */
  source: string;
  /** The packages in file order, defaults filled in. */
  entries: ManifestEntry[];
}

export interface Lock {
  file: string;
  shown: string;
  text: string;
  data: LockData;
}

/** tools.json → tools.lock.json; any other name.json → name.lock.json. */
export function lockPathFor(manifestFile: string): string {
  const dir = dirname(manifestFile);
  const base = basename(manifestFile);
  return join(dir, base.endsWith(".json") ? `${base.slice(0, -".json".length)}.lock.json` : `${base}.lock.json`);
}

export async function readManifest(file: string, shown = file): Promise<Manifest> {
  const abs = resolve(file);
  const text = await readText(abs, shown, {
    missing: `create it (see docs/tools-json.md), or write the active set into it with 'ext export ${shown}'`,
  });
  return parseManifest(text, abs, shown);
}

/** The lock beside a manifest, or undefined when there is none yet. */
export async function readLock(manifestFile: string, shown?: string): Promise<Lock | undefined> {
  const file = lockPathFor(resolve(manifestFile));
  const name = shown ?? file;
  let text: string;
  try {
    text = await readBounded(file, name);
  } catch (e) {
    if (isExtError(e)) throw e;
    if (errnoCode(e) === "ENOENT") return undefined;
    throw unreadable(name, e);
  }
  return parseLock(text, file, name);
}

export function parseManifest(text: string, file: string, shown = file): Manifest {
  const hint = "see docs/tools-json.md for the format (schemas/tools.schema.json is its JSON Schema)";
  const parsed = parseStrict(text, shown, hint);
  checkVersion(parsed, shown, MANIFEST_VERSION, "format");
  fail(shown, checkTools(parsed), hint);
  const data = parsed.value as ManifestData;
  const problems: SchemaProblem[] = [];
  const source = flakeRef(parsed, data.source ?? MANIFEST_DEFAULT_SOURCE, ["source"], problems);
  const entries: ManifestEntry[] = [];
  for (const [name, pkg] of Object.entries(data.packages)) {
    const entry: ManifestEntry = {
      name,
      attr: pkg.attr ?? name,
      source: pkg.source === undefined ? source : flakeRef(parsed, pkg.source, ["packages", name, "source"], problems),
    };
    if (pkg.outputs !== undefined) entry.outputs = pkg.outputs;
    if (pkg.priority !== undefined) entry.priority = pkg.priority;
    if (pkg.allowUnfree !== undefined) entry.allowUnfree = pkg.allowUnfree;
    if (pkg.allowShadow !== undefined) entry.allowShadow = pkg.allowShadow;
    entries.push(entry);
  }
  fail(shown, problems, hint);
  return { file, shown, text, parsed, data, source, entries };
}

export function parseLock(text: string, file: string, shown = file): Lock {
  const hint = `ext writes this file; delete it and run 'ext apply' to resolve the packages again`;
  const parsed = parseStrict(text, shown, hint);
  checkVersion(parsed, shown, LOCK_VERSION, "lock format");
  fail(shown, checkLock(parsed), hint);
  return { file, shown, text, data: parsed.value as LockData };
}

function parseStrict(text: string, shown: string, hint: string): ParsedJson {
  const deep = jsonDepth(text, MANIFEST_MAX_DEPTH);
  if (deep) {
    const before = text.slice(0, deep.offset);
    const line = before.split("\n").length;
    const column = deep.offset - before.lastIndexOf("\n");
    throw new ManifestError(`${where(shown, { line, column })}: nested more than ${MANIFEST_MAX_DEPTH} levels deep`, { hint });
  }
  const result = parseJson(text);
  if (result.ok) return result.parsed;
  const [first, ...rest] = result.problems;
  throw new ManifestError(`${where(shown, first!.position)}: ${first!.duplicate ? "" : "not valid JSON: "}${first!.message}`, {
    hint,
    ...(rest.length > 0 ? { details: rest.slice(0, 5).map((p) => `${where(shown, p.position)}: ${p.message}`).join("\n") } : {}),
  });
}

/** A newer format may have keys this ext does not know: say so before the schema complains about them. */
function checkVersion(parsed: ParsedJson, shown: string, supported: number, what: string): void {
  const value = parsed.value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) return;
  const version = (value as Record<string, unknown>)["version"];
  if (typeof version === "number" && Number.isInteger(version) && version > supported) {
    throw new ManifestError(
      `${where(shown, positionOf(parsed, ["version"]))}: written by a newer ext (${what} version ${version}; this ext reads version ${supported})`,
      { hint: "upgrade ext on this machine, or write the file in the older format" },
    );
  }
}

function flakeRef(parsed: ParsedJson, value: string, path: JsonPath, problems: SchemaProblem[]): string {
  try {
    return validateFlakeRef(value);
  } catch (e) {
    if (!isExtError(e)) throw e;
    problems.push({ path, position: positionOf(parsed, path), message: e.message + (e.hint ? ` (${e.hint})` : "") });
    return value;
  }
}

function fail(shown: string, problems: SchemaProblem[], hint: string): void {
  if (problems.length === 0) return;
  const line = (p: SchemaProblem) => `${where(shown, p.position)}: ${showPath(p.path)}: ${p.message}`;
  const [first, ...rest] = problems;
  throw new ManifestError(line(first!), {
    hint,
    ...(rest.length > 0 ? { details: rest.slice(0, 9).map(line).join("\n") + (rest.length > 9 ? `\n… and ${rest.length - 9} more` : "") } : {}),
  });
}

export function where(shown: string, p: Position): string {
  return `${shown}:${p.line}:${p.column}`;
}

async function readText(abs: string, shown: string, hints: { missing: string }): Promise<string> {
  try {
    return await readBounded(abs, shown);
  } catch (e) {
    if (isExtError(e)) throw e;
    if (errnoCode(e) === "ENOENT") throw new ManifestError(`${shown} does not exist`, { hint: hints.missing });
    throw unreadable(shown, e);
  }
}

/** A tools.json (or its lock) is a few KiB; anything near this is not one. */
export const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;
/** tools.json nests four levels; the limit keeps every parser and validator far from the stack's end. */
export const MANIFEST_MAX_DEPTH = 64;

/** Reads a regular file of at most MANIFEST_MAX_BYTES. Opened without blocking and checked before any
 *  read, so a named pipe or a device (/dev/zero) is refused instead of hanging or filling memory. */
async function readBounded(abs: string, shown: string): Promise<string> {
  const handle = await open(abs, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const s = await handle.stat();
    if (s.isDirectory()) throw unreadable(shown, Object.assign(new Error("is a directory"), { code: "EISDIR" }));
    if (!s.isFile()) {
      throw new ManifestError(`${shown} is ${s.isFIFO() ? "a named pipe" : s.isSocket() ? "a socket" : "a device"}, not a regular file`, {
        hint: "ext reads tools.json only from a regular file; to use generated content, write it to a file first",
      });
    }
    if (s.size > MANIFEST_MAX_BYTES) {
      throw new ManifestError(`${shown} is ${s.size} bytes, more than a tools.json can be (${MANIFEST_MAX_BYTES})`, { hint: "is it the right file?" });
    }
    const buffer = Buffer.alloc(s.size);
    let read = 0;
    while (read < buffer.length) {
      const { bytesRead } = await handle.read(buffer, read, buffer.length - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    await handle.close();
  }
}

/** How deeply arrays and objects nest in JSON text (brackets inside strings do not count). */
export function jsonDepth(text: string, limit: number): { depth: number; offset: number } | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return { depth, offset: i };
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return undefined;
}

function unreadable(shown: string, e: unknown): ManifestError {
  const code = errnoCode(e);
  if (code === "EISDIR") return new ManifestError(`${shown} is a directory, not a tools.json file`);
  if (code === "EACCES") return new ManifestError(`${shown} cannot be read (permission denied)`);
  return new ManifestError(`${shown} cannot be read: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
