import { lstat, readFile } from "node:fs/promises";
import { StateError, errnoCode } from "../errors.js";

// Every JSON state file under /var/lib/ext is read here: files on disk can hold anything (a bad disk,
// an edit by hand, an older or newer ext), so what is read is checked against the shape ext relies on
// before any of it is used. A damaged file becomes a StateError that names the file, says what is
// wrong with it and what to do; never a TypeError from deep inside a command.

/** State files are small; a larger one is not ext's (and would only be read to fail). */
export const STATE_FILE_MAX_BYTES = 64 * 1024 * 1024;

/** What is wrong with a value, with the path to it ("packages[2].outPaths"). */
export class ShapeError extends Error {}

/** Checks a parsed value and returns it typed; throws ShapeError when it has the wrong shape. */
export type Shape<T> = (value: unknown) => T;

/** Reads and checks `file`. Undefined when it does not exist; StateError for anything else wrong.
 *  `repair` says what the user can do about a damaged one. */
export async function readStateFile<T>(file: string, shape: Shape<T>, repair: string): Promise<T | undefined> {
  const damaged = (what: string, cause?: unknown) => new StateError(`the state file ${file} ${what}`, { hint: repair, cause });
  let s;
  try {
    s = await lstat(file);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    if (errnoCode(e) === "ENOTDIR") throw damaged("cannot exist: one of its parent directories is a file", e);
    throw e;
  }
  if (!s.isFile()) throw damaged(`is ${kindOf(s)}, not a file`);
  if (s.size > STATE_FILE_MAX_BYTES) throw damaged(`is ${s.size} bytes, more than a state file can be (${STATE_FILE_MAX_BYTES})`);
  const text = await readFile(file, "utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw damaged(text.trim() === "" ? "is empty" : "is not valid JSON", e);
  }
  try {
    return shape(value);
  } catch (e) {
    if (e instanceof ShapeError) throw damaged(`is damaged: ${e.message}`, e);
    throw e;
  }
}

/** `dir` is a directory, or absent; anything else is a StateError naming it, with `hint`. */
export async function assertDirectory(dir: string, hint: string): Promise<void> {
  let s;
  try {
    s = await lstat(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return;
    if (errnoCode(e) === "ENOTDIR") throw new StateError(`${dir} cannot be a directory: one of its parents is a file`, { hint, cause: e });
    throw e;
  }
  if (!s.isDirectory()) throw new StateError(`${dir} is ${kindOf(s)}, where ext keeps a directory`, { hint });
}

export function kindOf(s: { isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (s.isDirectory()) return "a directory";
  if (s.isSymbolicLink()) return "a symbolic link";
  if (s.isFIFO()) return "a named pipe";
  if (s.isSocket()) return "a socket";
  return "a special file";
}

// Guards, composed into shapes. Each takes the value and where it is, for the message.

type Guard<T> = (value: unknown, at: string) => T;

function fail(at: string, what: string): never {
  throw new ShapeError(at === "" ? what : `'${at}' ${what}`);
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value).slice(0, 40)}`;
}

export const str: Guard<string> = (v, at) => (typeof v === "string" ? v : fail(at, `is ${describe(v)}, not a string`));
export const bool: Guard<boolean> = (v, at) => (typeof v === "boolean" ? v : fail(at, `is ${describe(v)}, not true or false`));
export const num: Guard<number> = (v, at) => (typeof v === "number" && Number.isFinite(v) ? v : fail(at, `is ${describe(v)}, not a number`));
export const count: Guard<number> = (v, at) => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : fail(at, `is ${describe(v)}, not a whole number ≥ 0`));
export const id: Guard<number> = (v, at) => (Number.isSafeInteger(v) && (v as number) >= 1 ? (v as number) : fail(at, `is ${describe(v)}, not a generation number`));
export const sha256: Guard<string> = (v, at) => (typeof v === "string" && /^[0-9a-f]{64}$/.test(v) ? v : fail(at, `is ${describe(v)}, not a sha256`));

export function oneOf<T extends string>(values: readonly T[]): Guard<T> {
  return (v, at) => (typeof v === "string" && (values as readonly string[]).includes(v) ? (v as T) : fail(at, `is ${describe(v)}, not one of ${values.join(", ")}`));
}

export function nullable<T>(g: Guard<T>): Guard<T | null> {
  return (v, at) => (v === null ? null : g(v, at));
}

export function list<T>(g: Guard<T>): Guard<T[]> {
  return (v, at) => (Array.isArray(v) ? v.map((x, i) => g(x, `${at}[${i}]`)) : fail(at, `is ${describe(v)}, not a list`));
}

export function dict<T>(g: Guard<T>): Guard<Record<string, T>> {
  return (v, at) => Object.fromEntries(Object.entries(object(v, at)).map(([k, x]) => [k, g(x, `${at}.${k}`)]));
}

export function object(v: unknown, at: string): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(at, `is ${describe(v)}, not an object`);
}

/** Reads field `key` of object `o` (at `at`) with guard `g`; absent optional fields stay absent. */
export function field<T>(o: Record<string, unknown>, at: string, key: string, g: Guard<T>): T {
  return g(o[key], at === "" ? key : `${at}.${key}`);
}

export function optional<T>(o: Record<string, unknown>, at: string, key: string, g: Guard<T>): { [k: string]: T } {
  return o[key] === undefined ? {} : { [key]: field(o, at, key, g) };
}
