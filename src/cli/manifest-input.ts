import type { CommandContext } from "./context.js";
import type { InstalledPackage } from "../generations/record.js";
import { readManifest, readLock, resolveManifest } from "../manifest/index.js";
import { manifestContext } from "./manifest-sync.js";
import { realise, ensurePaths } from "../nix/index.js";
import { inFarmOrder, withSettingsOf } from "../pipeline/packages.js";

// `ext build --manifest tools.json` (and so `ext publish`; the packages go to src/pipeline/build.ts): the packages of a tools.json as its lock
// pins them, for an image and nothing else: no root, no state, the lock is never written. Packages
// the lock describes keep its store paths (fetched or built again from the exact reference they were
// resolved from when missing here); a package the lock does not describe is resolved from its source's
// pin, and named, since the next build may resolve it to something else.

export interface ManifestInput {
  /** The context with the manifest's extension name and compression. */
  ctx: CommandContext;
  packages: InstalledPackage[];
  /** Packages the lock did not pin: the same files may not give the same image next time. */
  unpinned: string[];
  /** The tools.json, absolute. */
  file: string;
}

export async function manifestInput(ctx: CommandContext, file: string): Promise<ManifestInput> {
  const manifest = await readManifest(file);
  const mctx = manifestContext(ctx, manifest);
  const lock = await readLock(manifest.file);
  const resolution = await resolveManifest(manifest, lock, ctx.nix);
  const locked = new Map(resolution.locked.map((p) => [p.name, p]));
  const fresh = resolution.specs.filter((s) => !locked.has(s.name));
  if (resolution.specs.length > 0) ctx.reporter.phase("building", resolution.specs.map((s) => s.name).join(", "));
  const kept = [...locked.values()];
  if (kept.length > 0) await ensurePaths(ctx.nix, kept.flatMap((p) => Object.values(p.outPaths)));
  const resolved = await realise(ctx.nix, fresh.map((s) => ({
    name: s.name,
    attr: s.attr ?? s.name,
    source: s.source ?? manifest.source,
    ...(s.outputs ? { outputs: s.outputs } : {}),
    ...(s.allowUnfree ? { allowUnfree: true } : {}),
  })));
  const bySpec = new Map(resolution.specs.map((s) => [s.name, s]));
  const packages = inFarmOrder([...kept, ...resolved].map((p): InstalledPackage => withSettingsOf(p, bySpec.get(p.name))));
  const unpinned = resolution.toResolve;
  if (unpinned.length > 0) {
    ctx.reporter.warn(`${manifest.shown}'s lock does not pin ${unpinned.join(", ")}: resolved from the source's newest revision, so another build may differ ('sudo ext apply ${manifest.shown}' or 'ext upgrade' writes the lock)`);
  }
  return { ctx: mctx, packages, unpinned, file: manifest.file };
}
