import { createHash } from "node:crypto";
import { open, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ExtError, errnoCode } from "../errors.js";
import { ShapeError } from "../base/state-file.js";
import type { Reporter } from "../base/reporter.js";
import { verifyDetached } from "./keys.js";
import { parseSums, type SumEntry } from "./sums.js";
import { compareVersions, versionOf } from "./versions.js";

// ext's own pull, for hosts without systemd-sysupdate (Debian 12): the same files, checked the same
// way — SHA256SUMS must carry a valid detached signature by the subscription's key (gpgv), and the
// image must have the sha256 that list gives — before anything is renamed into incoming/. The
// download goes to a dot-file in incoming/ (on the same file system, ignored by the import, as
// sysupdate's own partial files are), so a broken-off or tampered download never has the final name.

export class FetchError extends ExtError {
  override readonly code = "fetch-failed";
}

export class TamperedError extends ExtError {
  override readonly code = "tampered";
}

const LIST_MAX = 1024 * 1024;
const TIMEOUT_MS = 60_000;

export interface Listed {
  /** When SHA256SUMS was signed, by the signer's clock (null: gpgv did not say). */
  signedAt: number | null;
  entries: SumEntry[];
  newest: { version: string; entry: SumEntry } | null;
}

function urlOf(base: string, file: string): string {
  return `${base.replace(/\/+$/, "")}/${encodeURIComponent(file)}`;
}

async function get(url: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: "follow" });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new FetchError(`cannot fetch ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`, {
      hint: "the server is down or unreachable; nothing was changed, the next check tries again",
    });
  }
  if (!res.ok) {
    throw new FetchError(`cannot fetch ${url}: HTTP ${res.status} ${res.statusText}`, { hint: "check the subscription's URL ('ext status'); nothing was changed" });
  }
  return res;
}

async function getSmall(url: string): Promise<Buffer> {
  const body = Buffer.from(await (await get(url)).arrayBuffer());
  if (body.length > LIST_MAX) throw new FetchError(`${url} is larger than ${LIST_MAX} bytes; it is not a SHA256SUMS list`);
  return body;
}

/** The signed list at URL, verified with the keyring; the newest NAME_VERSION.raw it lists. */
export async function fetchList(url: string, name: string, keyring: string, scratch: string): Promise<Listed> {
  const sums = await getSmall(urlOf(url, "SHA256SUMS"));
  const signature = await getSmall(urlOf(url, "SHA256SUMS.gpg"));
  await writeFile(join(scratch, "SHA256SUMS"), sums);
  await writeFile(join(scratch, "SHA256SUMS.gpg"), signature);
  const { signedAt } = await verifyDetached(keyring, join(scratch, "SHA256SUMS"), join(scratch, "SHA256SUMS.gpg"), `${url}/SHA256SUMS`);
  let entries: SumEntry[];
  try {
    entries = parseSums(sums.toString("utf8"));
  } catch (e) {
    if (e instanceof ShapeError) throw new TamperedError(`${url}/SHA256SUMS is signed but not a list ext can read: ${e.message}`);
    throw e;
  }
  let newest: Listed["newest"] = null;
  for (const entry of entries) {
    const version = versionOf(entry.file, name);
    if (version !== undefined && (newest === null || compareVersions(version, newest.version) > 0)) newest = { version, entry };
  }
  return { signedAt, entries, newest };
}

/** Downloads one listed file into DIR under its name, only once its sha256 is the listed one. */
export async function download(url: string, entry: SumEntry, dir: string, reporter: Reporter): Promise<string> {
  const target = join(dir, entry.file);
  // Named after this process: a second pull at the same time (the timer and a person) writes its own.
  const partial = join(dir, `.partial-${process.pid}-${entry.file}`);
  await rm(partial, { force: true });
  const res = await get(urlOf(url, entry.file));
  const total = Number(res.headers.get("content-length") ?? NaN);
  reporter.phase("downloading", entry.file);
  const hash = createHash("sha256");
  let received = 0;
  const fh = await open(partial, "wx", 0o444);
  try {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        received += chunk.length;
        await fh.write(chunk);
        reporter.progress?.(received, Number.isFinite(total) ? total : undefined, "bytes");
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    await rm(partial, { force: true });
    if (errnoCode(e) === "ENOSPC") {
      throw new ExtError(`no space left to download ${entry.file} into ${dir}`, { hint: "free space under /var/lib/ext ('ext gc' removes images no kept generation uses); nothing was changed" });
    }
    if (errnoCode(e) !== undefined) throw e;
    const of = Number.isFinite(total) ? ` of the ${total} the server announced` : "";
    throw new FetchError(`the download of ${urlOf(url, entry.file)} broke off after ${received} bytes${of}`, { hint: "nothing was changed; the next check tries again" });
  }
  const got = hash.digest("hex");
  if (got !== entry.sha256) {
    await rm(partial, { force: true });
    throw new TamperedError(`${entry.file} from ${url} does not match its signed SHA256SUMS (${received} bytes, sha256 ${got.slice(0, 16)}…, listed ${entry.sha256.slice(0, 16)}…): refused, nothing was installed`, {
      hint: Number.isFinite(total) && received < total ? "the download was cut short; the next check tries again" : "the file on the server is not the one that was signed; tell whoever publishes it",
    });
  }
  await rename(partial, target);
  return target;
}

/** Leftovers of pulls that were killed (their process is gone), and all but the newest `keep`
 *  versions (what sysupdate's InstancesMax does for its own downloads). */
export async function pruneIncoming(dir: string, name: string, keep: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const files = await readdir(dir);
  for (const f of files) {
    const m = /^\.partial-(\d+)-/.exec(f);
    if (m && !isRunning(Number(m[1]))) await rm(join(dir, f), { force: true });
  }
  const versions = files.map((f) => ({ f, v: versionOf(f, name) })).filter((x): x is { f: string; v: string } => x.v !== undefined)
    .sort((a, b) => compareVersions(b.v, a.v));
  for (const { f } of versions.slice(keep)) await rm(join(dir, f), { force: true });
}

/** The files in incoming/ with their versions, newest first. */
export async function incomingVersions(dir: string, name: string): Promise<{ file: string; version: string }[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw e;
  }
  return files.map((f) => ({ file: join(dir, f), version: versionOf(f, name) }))
    .filter((x): x is { file: string; version: string } => x.version !== undefined)
    .sort((a, b) => compareVersions(b.version, a.version));
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === "EPERM";
  }
}
