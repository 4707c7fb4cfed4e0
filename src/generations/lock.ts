import { createServer, type Server } from "node:net";
import { createHash } from "node:crypto";
import { realpath, mkdir, stat } from "node:fs/promises";
import { LockedError } from "../errors.js";
import { writeFileAtomic } from "../fsutil.js";
import { readFile } from "node:fs/promises";
import type { Layout } from "./layout.js";

// The lock is an abstract Unix socket named after the state directory. The kernel owns it and frees
// it when the process dies, even by kill -9, so a crashed run can never leave a stale lock behind
// (a lock file would need guessing from PIDs). The lock file beside it only says who holds it.
// Abstract sockets are per network namespace: two ext processes in different network namespaces
// sharing one state directory would not exclude each other — not a setup ext supports.

export interface Lock {
  release(): Promise<void>;
}

export interface LockOptions {
  wait: boolean;
  /** Called once when the lock is busy and we start waiting. */
  onWait?: (holder: LockHolder | undefined) => void;
  pollMs?: number;
  /** Give up after this long even when waiting (0 = forever). */
  timeoutMs?: number;
}

export interface LockHolder {
  pid: number;
  command: string;
  since: string;
}

async function socketName(l: Layout): Promise<string> {
  await mkdir(l.stateDir, { recursive: true });
  const dir = await realpath(l.stateDir);
  // The device and inode tell apart two state directories with the same path in different mount
  // namespaces (a container, a test namespace): they are different systems and must not exclude each other.
  const { dev, ino } = await stat(dir);
  return `\0ext-lock-${createHash("sha256").update(`${dir}\0${dev}\0${ino}`).digest("hex").slice(0, 32)}`;
}

function tryListen(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") resolve(undefined);
      else reject(e);
    });
    server.listen({ path: name, exclusive: true }, () => {
      // Do not keep the event loop alive just for the lock.
      server.unref();
      resolve(server);
    });
  });
}

export async function acquireLock(l: Layout, command: string, options: LockOptions): Promise<Lock> {
  const name = await socketName(l);
  const started = Date.now();
  let told = false;
  for (;;) {
    const server = await tryListen(name);
    if (server) {
      await writeFileAtomic(l.lockFile, JSON.stringify({ pid: process.pid, command, since: new Date().toISOString() }) + "\n");
      return {
        release: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
    const holder = await readFile(l.lockFile, "utf8").then((t) => JSON.parse(t) as LockHolder).catch(() => undefined);
    if (!options.wait) {
      throw new LockedError(`another ext is working on ${l.root === "/" ? "this system" : l.root}${holder ? ` (pid ${holder.pid}: ${holder.command})` : ""}`, {
        hint: "wait for it to finish, or run again without --no-wait to queue behind it",
      });
    }
    if (!told) {
      options.onWait?.(holder);
      told = true;
    }
    if (options.timeoutMs && Date.now() - started > options.timeoutMs) {
      throw new LockedError("timed out waiting for another ext to finish", { hint: "see which ext process is running with 'ps'" });
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 100));
  }
}
