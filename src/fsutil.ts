import { chown, open, rename, unlink, mkdir, stat, writeFile } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

// Durable writes: temp file in the same directory → write → fsync → rename → fsync the directory.
// A crash at any point leaves either the old file or the new one, never a torn one.

export function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

/** Is `name` a temporary name tempName() gave, for a file named `base` (any base when omitted)? */
export function isTempNameOf(name: string, base?: string): boolean {
  const m = /^\.(.+)\.\d+\.[0-9a-f]{8}\.tmp$/.exec(name);
  return m !== null && (base === undefined || m[1] === base);
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface AtomicWriteOptions {
  mode?: number;
  /** Give the file this owner before it appears (a file in a person's home written by root). */
  owner?: { uid: number; gid: number };
}

export async function writeFileAtomic(target: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const tmp = tempName(target);
  const handle = await open(tmp, "wx", options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (e) {
    // A full disk fails here: the partial temp file goes too (the next transaction sweeps it otherwise).
    await handle.close();
    await unlink(tmp).catch(() => {});
    throw withPath(e, target);
  }
  await handle.close();
  try {
    if (options.owner) await chown(tmp, options.owner.uid, options.owner.gid);
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dirname(target));
}

/** A failed write(2) carries no path ("no space left on the device" — which one?): name the file. */
function withPath(e: unknown, path: string): unknown {
  if (e instanceof Error && (e as NodeJS.ErrnoException).code !== undefined && (e as NodeJS.ErrnoException).path === undefined) {
    (e as NodeJS.ErrnoException).path = path;
  }
  return e;
}

export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, JSON.stringify(value, null, 2) + "\n");
}

/** Plain write for files nobody relies on surviving a crash (logs, scratch). */
export async function writeFileEnsuringDir(target: string, data: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, data);
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
