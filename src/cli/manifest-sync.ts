import { dirname, resolve } from "node:path";
import { requireRoot, type CommandContext } from "./context.js";
import { labelsOnFirstUse } from "../image/selinux.js";
import type { PackageSpec } from "../machine/types.js";
import type { InstalledPackage } from "../generations/record.js";
import { readCurrentGeneration } from "../generations/store.js";
import { ManifestError, UsageError, isExtError } from "../errors.js";
import { validateFlakeRef } from "../nix/index.js";
import { editPackages } from "../manifest/edit.js";
import { writeUserFile } from "../manifest/files.js";
import { lockEntryMatches, lockFor, lockText, pinFromReference, sameLock } from "../manifest/lockfile.js";
import { lockPathFor, parseManifest, readLock, readManifest, type Lock, type Manifest } from "../manifest/read.js";
import { nixPinner, specOf, type Pinner } from "../manifest/resolve.js";
import { trackedFile } from "../manifest/tracking.js";
import type { LockSourceEntry, ManifestEntry, ManifestPackage } from "../manifest/types.js";

// Keeping the tracked tools.json and the active set in step: the manifest's extension name and
// compression apply to every command, `ext add` / `ext remove` edit the file (and its lock) after
// their transaction succeeded, and `ext add` resolves from the lock's pinned revisions.

/** The value of a global option when it was typed on the command line (not a default or $EXT_SOURCE). */
export function explicitOption(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (a === `--${name}`) return argv[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

/** The command context with the manifest's extension name, compression and SELinux labels. An option
 *  typed on the command line that contradicts the file is refused rather than silently overruled. */
export function manifestContext(ctx: CommandContext, manifest: Manifest): CommandContext {
  const name = manifest.data.name;
  const compression = manifest.data.compression;
  const labels = manifestLabelSetting(manifest);
  for (const [option, fromFile] of [["name", name], ["compression", compression], ["selinux-contexts", labels]] as const) {
    const typed = explicitOption(ctx.argv, option);
    if (fromFile !== undefined && typed !== undefined && typed !== fromFile) {
      const key = option === "selinux-contexts" ? "selinuxContexts" : option;
      throw new UsageError(`--${option} ${typed} contradicts ${manifest.shown}, which says "${key}": "${manifest.data.selinuxContexts ?? fromFile}"`, {
        hint: `drop --${option}, or change "${key}" in ${manifest.shown}`,
      });
    }
  }
  return {
    ...ctx,
    extensionName: name ?? ctx.extensionName,
    compression: compression ?? ctx.compression,
    ...(labels !== undefined ? { labels: labelsOnFirstUse(labels, ctx.layout.root, `"selinuxContexts" of ${manifest.shown}`) } : {}),
  };
}

/** tools.json's "selinuxContexts": auto, none, or a file_contexts path relative to the tools.json
 *  (a set kept with its policy in one repository, built in CI for SELinux hosts). */
function manifestLabelSetting(manifest: Manifest): string | undefined {
  const value = manifest.data.selinuxContexts;
  if (value === undefined || value === "auto" || value === "none") return value;
  return resolve(dirname(manifest.file), value);
}

export interface Tracked {
  manifest: Manifest;
  lock: Lock | undefined;
}

/** The tracked tools.json and its lock, or null when none is tracked. A tracked file that is gone
 *  or invalid stops the command before anything changes: the file and the system must not drift. */
export async function loadTracked(ctx: CommandContext): Promise<Tracked | null> {
  const file = await trackedFile(ctx.layout);
  if (file === null) return null;
  try {
    const manifest = await readManifest(file);
    return { manifest, lock: await readLock(file) };
  } catch (e) {
    if (e instanceof ManifestError) {
      throw new ManifestError(`the tracked ${e.message}`, {
        ...(e.details ? { details: e.details } : {}),
        hint: `ext keeps ${file} in step with the active set: fix it, track another file with 'ext apply FILE', or stop tracking with 'ext untrack'`,
      });
    }
    throw e;
  }
}

export interface LockUpdate {
  file: string;
  written: boolean;
}

/** Rewrites the lock beside `manifest` from the current generation (only when its content changes). */
export async function updateLock(ctx: CommandContext, manifest: Manifest, before: Lock | undefined, pins: ReadonlyMap<string, LockSourceEntry>, pinner?: Pinner): Promise<LockUpdate> {
  const current = await readCurrentGeneration(ctx.layout);
  const installed = current?.packages ?? [];
  const allPins = await completePins(ctx, manifest.entries, installed, pins, pinner);
  const file = lockPathFor(manifest.file);
  if (before && before.data.system !== ctx.nix.system) {
    ctx.reporter.warn(`${before.shown} holds store paths for ${before.data.system}; it is kept as it is on this ${ctx.nix.system} machine`);
    return { file, written: false };
  }
  const lock = lockFor(manifest.entries, installed, allPins, ctx.nix.system);
  const missing = manifest.entries.filter((e) => lock.packages[e.name] === undefined).map((e) => e.name);
  if (missing.length > 0) ctx.reporter.warn(`the active set lacks ${missing.join(", ")} of ${manifest.shown}; the lock leaves them out`);
  if (sameLock(before?.data, lock)) return { file, written: false };
  await writeUserFile(file, lockText(lock), manifest.file);
  return { file, written: true };
}

/** A pin for every source of the manifest: the known ones, one read off a pinned reference a
 *  package was resolved from, or (last) Nix. */
async function completePins(
  ctx: CommandContext,
  entries: ManifestEntry[],
  installed: InstalledPackage[],
  pins: ReadonlyMap<string, LockSourceEntry>,
  pinner: Pinner = nixPinner(ctx.nix),
): Promise<Map<string, LockSourceEntry>> {
  const out = new Map(pins);
  for (const entry of entries) {
    if (out.has(entry.source)) continue;
    const p = installed.find((i) => i.name === entry.name);
    const fromRef = p ? pinFromReference(p.source) : undefined;
    out.set(entry.source, fromRef ?? (await pinner(entry.source)));
  }
  return out;
}

export interface TrackedChange {
  file: string;
  /** tools.json was edited. */
  edited: boolean;
  lock: LockUpdate;
}

export interface TrackedAdd {
  ctx: CommandContext;
  packages: PackageSpec[];
  /** After a successful transaction: put the packages into the file and its lock. */
  after: () => Promise<TrackedChange>;
}

/** `ext add` with a tracked tools.json: each package is taken as the file describes it (a name
 *  already in the file keeps its attr, source, outputs, priority…; options typed now win), resolved
 *  from the lock's pinned revision, and written back to the file afterwards. */
export async function trackedAdd(ctx: CommandContext, packages: PackageSpec[]): Promise<TrackedAdd | null> {
  const tracked = await loadTracked(ctx);
  if (!tracked) return null;
  requireRoot(ctx);
  const { manifest, lock } = tracked;
  const typedSource = explicitOption(ctx.argv, "source") !== undefined ? validateFlakeRef(ctx.source) : undefined;
  const pinner = nixPinner(ctx.nix);
  const pins = new Map(Object.entries(lock?.data.sources ?? {}));
  const entries: ManifestEntry[] = [];
  const specs: PackageSpec[] = [];
  for (const spec of packages) {
    const inFile = manifest.entries.find((e) => e.name === spec.name);
    const source = typedSource ?? inFile?.source ?? manifest.source;
    const attr = spec.attr ?? inFile?.attr ?? spec.name;
    const entry: ManifestEntry = { name: spec.name, attr, source };
    const sameThing = inFile !== undefined && inFile.attr === attr && inFile.source === source;
    if (sameThing && inFile.outputs) entry.outputs = inFile.outputs;
    const priority = spec.priority ?? inFile?.priority;
    if (priority !== undefined) entry.priority = priority;
    if (spec.allowShadow || inFile?.allowShadow) entry.allowShadow = true;
    if (spec.allowUnfree || (sameThing && inFile.allowUnfree)) entry.allowUnfree = true;
    entries.push(entry);

    const fromLock = lock?.data.packages[spec.name];
    let ref: string;
    if (fromLock && lockEntryMatches(fromLock, entry)) ref = fromLock.resolvedFrom;
    else {
      let pin = pins.get(source);
      if (!pin) {
        pin = await pinner(source);
        pins.set(source, pin);
      }
      ref = pin.locked;
    }
    specs.push(specOf(entry, ref));
  }
  return {
    ctx: manifestContext(ctx, manifest),
    packages: specs,
    after: async () => {
      // Entries the file already says the same about are left alone, spelling and all.
      const set: Record<string, ManifestPackage> = {};
      for (const e of entries) {
        const inFile = manifest.entries.find((x) => x.name === e.name);
        if (!inFile || !sameEntry(inFile, e)) set[e.name] = manifestValue(e, manifest.source);
      }
      return rewrite(ctx, tracked, { set }, pins, pinner);
    },
  };
}

export interface TrackedRemove {
  ctx: CommandContext;
  after: () => Promise<TrackedChange>;
}

/** `ext remove` with a tracked tools.json: afterwards the packages leave the file and its lock. */
export async function trackedRemove(ctx: CommandContext, names: string[]): Promise<TrackedRemove | null> {
  const tracked = await loadTracked(ctx);
  if (!tracked) return null;
  const pins = new Map(Object.entries(tracked.lock?.data.sources ?? {}));
  return {
    ctx: manifestContext(ctx, tracked.manifest),
    after: () => rewrite(ctx, tracked, { remove: names.filter((n) => n in tracked.manifest.data.packages) }, pins),
  };
}

async function rewrite(
  ctx: CommandContext,
  tracked: Tracked,
  changes: { set?: Record<string, ManifestPackage>; remove?: string[] },
  pins: ReadonlyMap<string, LockSourceEntry>,
  pinner?: Pinner,
): Promise<TrackedChange> {
  const { manifest, lock } = tracked;
  const text = editPackages(manifest.text, changes);
  const edited = text !== manifest.text;
  let updated = manifest;
  if (edited) {
    updated = parseManifest(text, manifest.file, manifest.shown);
    await writeUserFile(manifest.file, text);
  }
  try {
    return { file: manifest.file, edited, lock: await updateLock(ctx, updated, lock, pins, pinner) };
  } catch (e) {
    if (!isExtError(e)) throw e;
    ctx.reporter.warn(`${manifest.shown} was updated, but its lock was not: ${e.message}`);
    return { file: manifest.file, edited, lock: { file: lockPathFor(manifest.file), written: false } };
  }
}

function sameEntry(a: ManifestEntry, b: ManifestEntry): boolean {
  const norm = (e: ManifestEntry) => JSON.stringify([e.name, e.attr, e.source, e.outputs ?? null, e.priority ?? null, !!e.allowUnfree, !!e.allowShadow]);
  return norm(a) === norm(b);
}

/** What tools.json holds for an entry: only what differs from the defaults. */
export function manifestValue(e: ManifestEntry, topSource: string): ManifestPackage {
  const v: ManifestPackage = {};
  if (e.attr !== e.name) v.attr = e.attr;
  if (e.source !== topSource) v.source = e.source;
  if (e.outputs !== undefined) v.outputs = e.outputs;
  if (e.priority !== undefined) v.priority = e.priority;
  if (e.allowUnfree) v.allowUnfree = true;
  if (e.allowShadow) v.allowShadow = true;
  return v;
}

export function formatTrackedChange(t: TrackedChange | undefined): string[] {
  if (!t) return [];
  const lines: string[] = [];
  if (t.edited) lines.push(`updated ${t.file}`);
  if (t.lock.written) lines.push(`updated ${t.lock.file}`);
  return lines;
}
