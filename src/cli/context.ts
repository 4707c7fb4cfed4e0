import { layout, type Layout } from "../base/layout.js";
import { acquireLock, type LockOptions } from "../base/lock.js";
import { ensureStateDirs } from "../generations/store.js";
import { sweepLeftovers } from "../generations/sweep.js";
import { existsSync } from "node:fs";
import type { Recovery } from "../machine/recover.js";
import { PermissionError } from "../errors.js";
import type { NixContext } from "../nix/types.js";
import type { Compression } from "../image/types.js";
import type { LabelPolicy } from "../image/selinux.js";
import type { Reporter } from "../base/reporter.js";
import type { TxHooks } from "../machine/types.js";
import type { BootGiven } from "./seams.js";
import { output } from "./streams.js";

/** What every command receives: the global options, resolved once. */
export interface CommandContext {
  layout: Layout;
  source: string;
  json: boolean;
  wait: boolean;
  extensionName: string;
  compression: Compression;
  /** SELinux labels for images of this system (src/image/selinux.ts), read when first asked for. */
  labels: () => LabelPolicy | undefined;
  architecture: string;
  nix: NixContext;
  reporter: Reporter;
  /** The command line as typed, recorded in generations. */
  argv: string[];
  /** Where human output goes (stdout); JSON is printed by the boundary. */
  print: (line: string) => void;
  /** Seams for tests and bench/ around the transaction's steps (src/cli/seams.ts). */
  hooks?: TxHooks;
  /** This boot as given instead of the kernel's ($EXT_BOOT_ID, $EXT_BOOT_CMDLINE; src/cli/seams.ts). */
  boot?: BootGiven;
  /** false with $EXT_APPEND_IMAGES=0: every image is packed in full (src/cli/seams.ts). */
  appendImages?: boolean;
  /** The global options resolved for a root part (src/elevate/request.ts); absent: ext cannot ask for root. */
  globals?: () => string[];
  /** In a root part started by ext: the elevator that started it. */
  elevatedBy?: string;
}

export const DEFAULT_SOURCE = "nixpkgs";
export const DEFAULT_EXTENSION_NAME = "ext";
/** lz4 over lz4hc: erofs-utils compresses on one thread, and lz4hc took ~4× as long for ~8% less size. */
export const DEFAULT_COMPRESSION = "lz4";

export function commandLine(ctx: CommandContext): string {
  return ["ext", ...ctx.argv].join(" ");
}

/** Lock files this process holds: a run that holds the lock for a whole sequence (`ext upgrade
 *  --auto`: check, then transact) enters its transaction without taking it again — a second flock
 *  on a second open of the same file would wait for itself. */
const held = new Set<string>();

/** Serialises commands that read or change state, and repairs what a killed run left behind. */
export async function withStateLock<T>(ctx: CommandContext, fn: (recovery: Recovery | undefined) => Promise<T>): Promise<T> {
  if (held.has(ctx.layout.lockFile)) return fn(undefined);
  await ensureStateDirs(ctx.layout).catch((e) => {
    if ((e as NodeJS.ErrnoException).code === "EACCES") throw needsRoot(ctx);
    throw e;
  });
  const lock = await acquireLock(ctx.layout, ["ext", ...ctx.argv].join(" "), lockOptions(ctx));
  held.add(ctx.layout.lockFile);
  try {
    // Recovery code (and the sysext and Nix adapters behind it) loads only when a run was interrupted.
    const recovery = existsSync(ctx.layout.journalFile)
      ? await (await import("../machine/recover.js")).recoverIfNeeded(ctx.layout, ctx.reporter)
      : undefined;
    await sweepLeftovers(ctx.layout, ctx.extensionName);
    return await fn(recovery);
  } finally {
    held.delete(ctx.layout.lockFile);
    await lock.release();
  }
}

/** A command that changes the system: as root it goes on; as a user who can elevate it runs again as
 *  root (asked once, saying why) and ends with that run's exit code; otherwise exit 4 with the hint.
 *  `command` is the command word and its arguments as the unprivileged part resolved them. */
export async function asRoot(ctx: CommandContext, why: string, command: string[]): Promise<void> {
  if (process.getuid?.() === 0) return;
  if (ctx.globals === undefined) throw needsRoot(ctx);
  const { asRoot: elevate } = await import("../elevate/index.js");
  await elevate({
    globals: ctx.globals,
    argv: ctx.argv,
    ...(ctx.elevatedBy !== undefined ? { elevatedBy: ctx.elevatedBy } : {}),
    info: (line) => output().stderr.write(`ext: ${line}\n`),
  }, why, command);
}

/** --wait / --no-wait, and the message while waiting. */
export function lockOptions(ctx: CommandContext): LockOptions {
  return {
    wait: ctx.wait,
    onWait: (holder) => ctx.reporter.info(`waiting for another ext to finish${holder ? ` (pid ${holder.pid}: ${holder.command})` : ""}…`),
  };
}

export function requireRoot(ctx: CommandContext): void {
  if (process.getuid?.() !== 0) throw needsRoot(ctx);
}

function needsRoot(ctx: CommandContext): PermissionError {
  return new PermissionError("changing the active extensions needs root", {
    hint: `run it as root: sudo ext ${ctx.argv.join(" ")} (or run0 / pkexec); 'ext build' works without root`,
  });
}

export { layout };
