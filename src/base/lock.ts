import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { lstat, mkdir, open, type FileHandle } from "node:fs/promises";
import { LockedError, MissingToolError, StateError, errnoCode } from "../errors.js";
import { kindOf } from "./state-file.js";
import type { Layout } from "./layout.js";

// The lock is flock(2) on /var/lib/ext/lock, a file only root can open (mode 0600 in a directory only
// root can write): another user can neither create it first nor open it to hold the lock, which an
// abstract Unix socket (the lock before this one) could not promise — its name was computable and
// anyone could bind it first. The kernel frees a flock when the last descriptor of the open file goes,
// so a holder killed by kill -9 leaves no stale lock. Node has no flock(); util-linux's flock(1) takes
// it on the descriptor ext passes it as fd 3: a lock belongs to the open file description, which ext
// keeps open after flock(1) exits (and Node opens files close-on-exec, so tools ext runs later never
// inherit it and outlive ext holding the lock). The file's contents only say who holds it.

export interface Lock {
  release(): Promise<void>;
}

export interface LockOptions {
  wait: boolean;
  /** Called once when the lock is busy and we start waiting. */
  onWait?: (holder: LockHolder | undefined) => void;
  /** Give up after this long even when waiting (0 = forever). */
  timeoutMs?: number;
}

export interface LockHolder {
  pid: number;
  command: string;
  since: string;
}

/** flock(1)'s exit status when the lock is taken (--conflict-exit-code), apart from its own errors. */
const BUSY = 75;

export async function acquireLock(l: Layout, command: string, options: LockOptions): Promise<Lock> {
  const handle = await openLockFile(l);
  try {
    if (!(await flock(handle, false))) {
      const holder = await readHolder(handle);
      if (!options.wait) {
        throw new LockedError(`another ext is working on ${l.root === "/" ? "this system" : l.root}${holder ? ` (pid ${holder.pid}: ${holder.command})` : ""}`, {
          hint: "wait for it to finish, or run again without --no-wait to queue behind it",
        });
      }
      options.onWait?.(holder);
      if (!(await flock(handle, true, options.timeoutMs))) {
        throw new LockedError("timed out waiting for another ext to finish", { hint: "see which ext process is running with 'ps'" });
      }
    }
    const who: LockHolder = { pid: process.pid, command, since: new Date().toISOString() };
    await handle.truncate(0);
    await handle.write(JSON.stringify(who) + "\n", 0);
  } catch (e) {
    await handle.close();
    throw e;
  }
  // Closing the only descriptor of the open file releases the flock.
  return { release: () => handle.close() };
}

/** The lock file is a regular file or absent: anything else is a StateError naming it (for ext doctor,
 *  which reads and never opens it). */
export async function checkLockFile(l: Layout): Promise<void> {
  let s;
  try {
    s = await lstat(l.lockFile);
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return;
    throw e;
  }
  if (!s.isFile()) throw new StateError(`the lock file ${l.lockFile} is ${kindOf(s)}, not a file`, { hint: `'sudo ext repair' moves it aside (or: sudo mv ${l.lockFile} /root/); ext makes a new one` });
}

/** Opens (creating) the lock file for root only; refuses a symlink or anything but a regular file
 *  owned by this user. */
async function openLockFile(l: Layout): Promise<FileHandle> {
  await mkdir(l.stateDir, { recursive: true });
  let handle: FileHandle;
  try {
    handle = await open(l.lockFile, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (e) {
    const code = errnoCode(e);
    if (code === "EISDIR" || code === "ELOOP" || code === "ENXIO") {
      throw new StateError(`the lock file ${l.lockFile} is ${code === "EISDIR" ? "a directory" : code === "ELOOP" ? "a symbolic link" : "a special file"}, not a file`, {
        hint: `'sudo ext repair' moves it aside (or: sudo mv ${l.lockFile} /root/); ext makes a new one`,
      });
    }
    throw e;
  }
  const s = await handle.stat();
  const uid = process.geteuid?.() ?? 0;
  if (!s.isFile() || s.uid !== uid) {
    await handle.close();
    throw new StateError(`the lock file ${l.lockFile} is ${!s.isFile() ? kindOf(s) : `owned by uid ${s.uid}`}: another user could hold ext's lock`, {
      hint: `'sudo ext repair' moves it aside (or: sudo mv ${l.lockFile} /root/); ext makes a new one`,
    });
  }
  // Files made by an ext before this one were readable by everyone (and so lockable by anyone).
  if ((s.mode & 0o077) !== 0) await handle.chmod(0o600);
  return handle;
}

/** Takes the flock on the handle's open file: true when taken, false when another holds it (at once
 *  without `wait`, else after `timeoutMs` if given). */
function flock(handle: FileHandle, wait: boolean, timeoutMs = 0): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const args = ["--exclusive", "--conflict-exit-code", String(BUSY), ...(wait ? (timeoutMs > 0 ? ["--timeout", String(timeoutMs / 1000)] : []) : ["--nonblock"]), "3"];
    const child = spawn("flock", args, { stdio: ["ignore", "ignore", "pipe", handle.fd] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", (e) => {
      reject(errnoCode(e) === "ENOENT" ? new MissingToolError("flock", "install util-linux (ext takes its lock with flock(1))") : e);
    });
    child.once("close", (code) => {
      if (code === 0) resolve(true);
      else if (code === BUSY) resolve(false);
      else reject(new Error(`flock ${args.join(" ")} failed (exit ${code}): ${stderr.trim()}`));
    });
  });
}

/** Who holds the lock, if its note is readable and that process still runs. */
async function readHolder(handle: FileHandle): Promise<LockHolder | undefined> {
  try {
    const buffer = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const parsed = JSON.parse(buffer.subarray(0, bytesRead).toString("utf8")) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number" || typeof parsed.command !== "string") return undefined;
    process.kill(parsed.pid, 0);
    return { pid: parsed.pid, command: parsed.command, since: String(parsed.since) };
  } catch {
    return undefined;
  }
}
