import { resolve } from "node:path";
import { stat } from "node:fs/promises";
import type { CommandContext } from "../context.js";
import { DEFAULT_COMPRESSION, DEFAULT_EXTENSION_NAME, requireRoot } from "../context.js";
import { readCurrentGeneration, ensureStateDirs } from "../../generations/store.js";
import type { InstalledPackage } from "../../generations/record.js";
import { ManifestError, UsageError, errnoCode } from "../../errors.js";
import { MANIFEST_VERSION, MANIFEST_DEFAULT_SOURCE, lockFor, lockText, lockPathFor, nixPinner, pinFromReference, readManifest, setProperty, editPackages, setTrackedFile, unpinnedReference, writeUserFile, type LockData, type LockSourceEntry, type ManifestData, type ManifestEntry, type ManifestPackage } from "../../manifest/index.js";
import { loadTracked, manifestValue, type Tracked } from "../manifest-sync.js";

// `ext export [FILE]`: the active set as a tools.json and its lock, so that `ext apply FILE` gives
// the same generation content here or on another machine. An existing FILE is edited in place (its
// order and formatting stay); without FILE the tools.json goes to stdout.


export interface ExportOptions {
  file?: string;
  /** Track FILE afterwards (as `ext apply FILE` would). */
  track?: boolean;
  /** Replace a FILE that is not a valid tools.json instead of refusing. */
  force?: boolean;
}

export interface ExportResult {
  file: string | null;
  lockFile: string | null;
  created: boolean;
  tools: ManifestData;
  lock: LockData;
  /** The tools.json text (what was written, or what goes to stdout). */
  text: string;
  tracked: boolean;
}

export async function exportSet(ctx: CommandContext, opts: ExportOptions): Promise<ExportResult> {
  if (opts.track) requireRoot(ctx);
  const current = await readCurrentGeneration(ctx.layout);
  const installed = current?.packages ?? [];
  const tracked = await loadTracked(ctx).catch(() => null);

  const entries: ManifestEntry[] = installed.map((p) => {
    const e: ManifestEntry = { name: p.name, attr: p.attr, source: originalSource(p, tracked) };
    if (p.outputs && p.outputs.length > 0) e.outputs = [...p.outputs];
    if (p.priority !== undefined) e.priority = p.priority;
    if (p.allowShadow) e.allowShadow = true;
    const inFile = tracked?.manifest.entries.find((x) => x.name === p.name && x.attr === p.attr && x.source === e.source);
    if (p.allowUnfree || inFile?.allowUnfree) e.allowUnfree = true;
    return e;
  });
  const name = current?.extensionName ?? ctx.extensionName;
  const compression = current?.image?.compression;

  const file = opts.file === undefined ? null : resolve(opts.file);
  let existing: Awaited<ReturnType<typeof readManifest>> | null = null;
  if (file !== null && (await exists(file))) {
    try {
      existing = await readManifest(file, opts.file);
    } catch (e) {
      if (!(e instanceof ManifestError) || !opts.force) {
        throw e instanceof ManifestError
          ? new ManifestError(`will not replace ${opts.file}: ${e.message}`, { hint: "fix it so ext can edit it in place, or pass --force to overwrite it" })
          : e;
      }
    }
  }

  let text: string;
  let topSource: string;
  if (existing) {
    topSource = existing.source;
    const set: Record<string, ManifestPackage> = {};
    for (const e of entries) {
      const had = existing.entries.find((x) => x.name === e.name);
      if (!had || JSON.stringify(manifestValue(had, topSource)) !== JSON.stringify(manifestValue(e, topSource))) set[e.name] = manifestValue(e, topSource);
    }
    const remove = existing.entries.filter((x) => !entries.some((e) => e.name === x.name)).map((x) => x.name);
    text = editPackages(existing.text, { set, remove });
    if ((existing.data.name ?? DEFAULT_EXTENSION_NAME) !== name) text = setProperty(text, [], "name", name);
    if (compression !== undefined && (existing.data.compression ?? DEFAULT_COMPRESSION) !== compression) text = setProperty(text, [], "compression", compression);
  } else {
    topSource = mostCommon(entries.map((e) => e.source)) ?? MANIFEST_DEFAULT_SOURCE;
    const doc: ManifestData = { version: MANIFEST_VERSION, source: topSource, packages: {} };
    if (name !== DEFAULT_EXTENSION_NAME) doc.name = name;
    if (compression !== undefined && compression !== DEFAULT_COMPRESSION) doc.compression = compression;
    for (const e of [...entries].sort((a, b) => a.name.localeCompare(b.name))) doc.packages[e.name] = manifestValue(e, topSource);
    text = JSON.stringify(doc, null, 2) + "\n";
  }

  const pins = await pinsFor(ctx, entries, installed, tracked);
  const lock = lockFor(entries, installed, pins, ctx.nix.system);
  const tools = JSON.parse(text) as ManifestData;
  if (file === null) return { file: null, lockFile: null, created: false, tools, lock, text, tracked: false };

  const lockFile = lockPathFor(file);
  await writeUserFile(file, text);
  await writeUserFile(lockFile, lockText(lock), file);
  if (opts.track) {
    await ensureStateDirs(ctx.layout);
    await setTrackedFile(ctx.layout, file);
  }
  return { file, lockFile, created: existing === null, tools, lock, text, tracked: opts.track === true };
}

/** The source as a person would write it in tools.json: what the tracked file said, else the
 *  reference without its pin (the lock keeps the pin). */
function originalSource(p: InstalledPackage, tracked: Tracked | null): string {
  const entry = tracked?.lock?.data.packages[p.name];
  if (entry && entry.resolvedFrom === p.source) return entry.source;
  for (const [original, pin] of Object.entries(tracked?.lock?.data.sources ?? {})) if (pin.locked === p.source) return original;
  return unpinnedReference(p.source);
}

async function pinsFor(ctx: CommandContext, entries: ManifestEntry[], installed: InstalledPackage[], tracked: Tracked | null): Promise<Map<string, LockSourceEntry>> {
  const pins = new Map<string, LockSourceEntry>();
  const pinner = nixPinner(ctx.nix);
  for (const source of new Set(entries.map((e) => e.source))) {
    const refs = installed.filter((p) => entries.find((e) => e.name === p.name)?.source === source).map((p) => p.source);
    const known = tracked?.lock?.data.sources[source];
    const fromRef = refs.map(pinFromReference).find((x) => x !== undefined);
    pins.set(source, known && refs.includes(known.locked) ? known : fromRef ?? known ?? (await pinner(source)));
  }
  return pins;
}

function mostCommon(values: string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
}

async function exists(file: string): Promise<boolean> {
  try {
    const s = await stat(file);
    if (s.isDirectory()) throw new UsageError(`${file} is a directory; name the tools.json file to write`);
    return true;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return false;
    throw e;
  }
}

export function formatExport(r: ExportResult): string[] {
  if (r.file === null) return r.text.replace(/\n$/, "").split("\n");
  const lines = [`${r.created ? "wrote" : "updated"} ${r.file} (${Object.keys(r.tools.packages).length} packages) and ${r.lockFile}`];
  if (r.tracked) lines.push(`tracking ${r.file}`);
  return lines;
}
