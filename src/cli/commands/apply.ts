import type { CommandContext } from "../context.js";
import { realpathSync } from "node:fs";
import { asRoot } from "../context.js";
import { transact, formatTransaction, type TransactionResult } from "../transact.js";
import { readCurrentGeneration, ensureStateDirs } from "../../generations/store.js";
import { UsageError, isExtError } from "../../errors.js";
import { readManifest, readLock, resolveManifest, setTrackedFile, trackedFile, previewSet, positionOf, where, type Manifest, type Preview } from "../../manifest/index.js";
import { manifestContext, updateLock, type LockUpdate } from "../manifest-sync.js";
import { manifestArgument, lockShown, formatPreview } from "./diff.js";

// `ext apply [FILE]`: make the active set exactly what FILE says, in one transaction. Packages its lock
// describes are kept without Nix; when nothing changed, the transaction stops at its plan and Nix is
// never called. Afterwards the lock is brought up to date and FILE is tracked (ext add/remove edit it).

export interface ApplyOptions {
  file?: string;
  dryRun?: boolean;
  /** Track FILE (default); false leaves the tracked file as it was. */
  track?: boolean;
}

export type ApplyResult =
  | { dryRun: true; file: string; plan: Preview }
  | (TransactionResult & { dryRun: false; file: string; lock: LockUpdate; tracked: string | null; trackingChanged: boolean });

export async function apply(ctx: CommandContext, opts: ApplyOptions): Promise<ApplyResult> {
  const { file, shown } = await manifestArgument(ctx, opts.file);
  const manifest = await readManifest(file, shown);
  // Read and checked as the user first (a mistake in the file needs no password); root reads the
  // same file again, by its real path (the tracked one it finds itself).
  if (!opts.dryRun) await asRoot(ctx, `applying ${shown}`, ["apply", ...(opts.file !== undefined ? [realpathSync(file)] : []), ...(opts.track === false ? ["--no-track"] : [])]);
  const mctx = manifestContext(ctx, manifest);
  const lock = await readLock(file, lockShown(shown));
  const resolution = await resolveManifest(manifest, lock, ctx.nix);
  if (opts.dryRun) {
    const current = await readCurrentGeneration(ctx.layout);
    return { dryRun: true, file, plan: await previewSet(ctx.nix, current, resolution.specs, resolution.locked) };
  }
  await refuseOtherExtensionName(mctx, manifest);
  let result: TransactionResult;
  try {
    result = await transact(mctx, { kind: "set", packages: resolution.specs, locked: resolution.locked });
  } catch (e) {
    throw pointAtPackage(e, manifest);
  }
  const lockUpdate = await updateLock(mctx, manifest, lock, resolution.pins);
  let trackingChanged = false;
  if (opts.track !== false) {
    await ensureStateDirs(ctx.layout);
    trackingChanged = await setTrackedFile(ctx.layout, file);
  }
  return { ...result, dryRun: false, file, lock: lockUpdate, tracked: await trackedFile(ctx.layout), trackingChanged };
}

/** The active extension keeps its name: a new name would leave the old image merged beside the new one. */
async function refuseOtherExtensionName(ctx: CommandContext, manifest: Manifest): Promise<void> {
  const current = await readCurrentGeneration(ctx.layout);
  if (current && current.packages.length > 0 && current.extensionName !== ctx.extensionName) {
    throw new UsageError(`the active set is the extension '${current.extensionName}', but ${manifest.shown} asks for '${ctx.extensionName}'`, {
      hint: `set "name": "${current.extensionName}" in ${manifest.shown}, or empty the active set first (ext --name ${current.extensionName} remove …)`,
    });
  }
}

/** An unknown package is reported with the place in tools.json that names it. */
function pointAtPackage(e: unknown, manifest: Manifest): unknown {
  if (!isExtError(e) || e.code !== "unknown-package") return e;
  const pkg = (e as unknown as { pkg?: string }).pkg;
  const entry = manifest.entries.find((x) => x.attr === pkg) ?? manifest.entries.find((x) => e.message.includes(`'${x.attr}'`));
  if (!entry) return e;
  const path = ["packages", entry.name];
  const at = where(manifest.shown, positionOf(manifest.parsed, path, { key: true }));
  Object.defineProperty(e, "message", { value: `${at}: packages.${entry.name}: ${e.message}`, configurable: true, writable: true });
  return e;
}

export function formatApply(r: ApplyResult): string[] {
  if (r.dryRun) return formatPreview(r.file, r.plan);
  const lines = formatTransaction(r);
  if (r.lock.written) lines.push(`wrote ${r.lock.file}`);
  if (r.trackingChanged) lines.push(`tracking ${r.file} (ext add/remove keep it up to date; 'ext untrack' stops that)`);
  return lines;
}

// `ext untrack`: stop keeping a tools.json in step (the file itself is left as it is).

export interface UntrackResult {
  untracked: string | null;
}

export async function untrack(ctx: CommandContext): Promise<UntrackResult> {
  await asRoot(ctx, "untracking the tools.json", ["untrack"]);
  const before = await trackedFile(ctx.layout);
  if (before !== null) await setTrackedFile(ctx.layout, null);
  return { untracked: before };
}

export function formatUntrack(r: UntrackResult): string[] {
  return [r.untracked === null ? "no tools.json was tracked" : `no longer tracking ${r.untracked} (the file is unchanged)`];
}
