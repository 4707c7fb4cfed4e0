import { resolve } from "node:path";
import type { CommandContext } from "../context.js";
import { readCurrentGeneration } from "../../generations/store.js";
import { UsageError } from "../../errors.js";
import { formatBytes, formatSignedBytes } from "../output.js";
import { previewSet, readLock, readManifest, resolveManifest, trackedFile, lockPathFor, type Preview } from "../../manifest/index.js";
import { manifestContext } from "../manifest-sync.js";

// `ext diff [FILE]`: what `ext apply FILE` would change. Nothing is built or changed; packages the
// lock or the active set already describe need no Nix at all.

export interface DiffResult {
  file: string;
  dryRun: true;
  plan: Preview;
}

/** FILE as given, else the tracked one. */
export async function manifestArgument(ctx: CommandContext, file: string | undefined): Promise<{ file: string; shown: string }> {
  if (file !== undefined) return { file: resolve(file), shown: file };
  const tracked = await trackedFile(ctx.layout);
  if (tracked === null) {
    throw new UsageError("no tools.json was given and none is tracked", {
      hint: "name one: 'ext apply FILE' (which then tracks it); 'ext export FILE' writes the active set into a new one",
    });
  }
  return { file: tracked, shown: tracked };
}

export async function diff(ctx: CommandContext, opts: { file?: string }): Promise<DiffResult> {
  const { file, shown } = await manifestArgument(ctx, opts.file);
  const manifest = await readManifest(file, shown);
  manifestContext(ctx, manifest);
  const lock = await readLock(file, lockShown(shown));
  const resolution = await resolveManifest(manifest, lock, ctx.nix);
  const current = await readCurrentGeneration(ctx.layout);
  return { file, dryRun: true, plan: await previewSet(ctx.nix, current, resolution.specs, resolution.locked) };
}

export function lockShown(shown: string): string {
  return lockPathFor(shown);
}

export function formatPreview(file: string, p: Preview): string[] {
  if (p.unchanged) return [`nothing to do: the active set already matches ${file}`];
  const lines = [`${file} would change the active set${p.generation === null ? "" : ` (generation ${p.generation})`}:`];
  for (const a of p.added) lines.push(`  + ${a.name} ${a.version}`);
  for (const r of p.removed) lines.push(`  - ${r.name} ${r.version}`);
  for (const c of p.changed) lines.push(`  ~ ${c.name} ${c.from} → ${c.to}`);
  for (const r of p.rebuilt) lines.push(`  ~ ${r.name} ${r.version} (other store paths)`);
  for (const s of p.settings) lines.push(`  ~ ${s.name} (priority or allowShadow)`);
  const c = p.closure;
  if (c.after === null) {
    lines.push(`closure: ${formatBytes(c.before)} → unknown (${c.notBuilt.join(", ")} not built yet)`);
  } else {
    lines.push(`closure: ${formatBytes(c.before)} → ${formatBytes(c.after)} (${formatSignedBytes(c.delta ?? 0)})`);
  }
  lines.push("nothing was built or changed");
  return lines;
}

export function formatDiff(r: DiffResult): string[] {
  return formatPreview(r.file, r.plan);
}
