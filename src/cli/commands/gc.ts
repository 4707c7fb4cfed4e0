import { readdir, unlink, lstat } from "node:fs/promises";
import { kindOf } from "../../base/state-file.js";
import { join } from "node:path";
import type { CommandContext } from "../context.js";
import { asRoot, withStateLock } from "../context.js";
import { deleteGeneration, listGenerations, readCurrent } from "../../generations/store.js";
import { storePathsOf } from "../../generations/record.js";
import { activeImageSha } from "../../sysext/link.js";
import { formatBytes } from "../output.js";
import { collectPrivateStore, describeStore, type StoreGcResult } from "../../store/index.js";
import { clearStageCache } from "../../image/stage-cache.js";
import { pathExists } from "../../fsutil.js";

export interface GcResult {
  keptGenerations: number[];
  deletedGenerations: number[];
  deletedImages: string[];
  freedBytes: number;
  /** The private Nix store, collected too (null: ext uses the system store, which it never collects). */
  store: StoreGcResult | null;
  /** The stage cache (relocated store paths kept for the next ext add) was there and is removed. */
  stageCacheCleared: boolean;
}

/** Keeps the current generation and the newest N others (default: all generations are kept and
 *  only images no generation refers to go); never the image that is linked right now. */
export async function gc(ctx: CommandContext, opts: { keep?: number }): Promise<GcResult> {
  await asRoot(ctx, "deleting unused images", ["gc", ...(opts.keep !== undefined ? ["--keep", String(opts.keep)] : [])]);
  return withStateLock(ctx, async () => {
    const records = await listGenerations(ctx.layout);
    const current = await readCurrent(ctx.layout);
    const newestFirst = [...records].reverse();
    const kept = opts.keep === undefined
      ? records
      : newestFirst.filter((r) => r.id === current || newestFirst.filter((x) => x.id !== current).indexOf(r) < opts.keep!);
    const keptIds = new Set(kept.map((r) => r.id));
    const deletedGenerations = records.filter((r) => !keptIds.has(r.id)).map((r) => r.id);
    for (const id of deletedGenerations) await deleteGeneration(ctx.layout, id);

    const needed = new Set(kept.flatMap((r) => (r.image ? [r.image.sha256] : [])));
    const active = await activeImageSha(ctx.layout, ctx.extensionName);
    if (typeof active === "string" && active !== "foreign") needed.add(active);
    const deletedImages: string[] = [];
    let freedBytes = 0;
    for (const name of await readdir(ctx.layout.imagesDir)) {
      const sha = /^([0-9a-f]{64})\.raw$/.exec(name)?.[1];
      if (!sha || needed.has(sha)) continue;
      const file = join(ctx.layout.imagesDir, name);
      const s = await lstat(file);
      if (!s.isFile()) {
        // Not something ext made (ext writes images as files): not ext's to delete.
        ctx.reporter.warn(`${file} is ${kindOf(s)}, not an image: left alone (move it away by hand)`);
        continue;
      }
      freedBytes += s.size;
      await unlink(file);
      deletedImages.push(sha);
    }

    // The stage cache holds hard links into the store and rewritten copies: until it goes, collecting a
    // store (ext's private one below, or the system's with nix-collect-garbage) frees less than it could.
    // The next ext add stages from scratch and fills it again.
    const stageCacheCleared = await pathExists(ctx.layout.stageCacheDir);
    if (stageCacheCleared) await clearStageCache(ctx.layout.stageCacheDir);

    // The private store is ext's own: keep what the kept generations need (their closures), collect the rest.
    let store: StoreGcResult | null = null;
    if (describeStore(ctx.nix.store).kind === "private") {
      ctx.reporter.phase("collecting the private store", describeStore(ctx.nix.store).path);
      store = await collectPrivateStore(ctx.nix, storePathsOf(kept));
    }
    return { keptGenerations: [...keptIds].sort((a, b) => a - b), deletedGenerations, deletedImages, freedBytes, store, stageCacheCleared };
  });
}

export function formatGc(r: GcResult): string[] {
  return [
    `removed ${r.deletedGenerations.length} generation(s)${r.deletedGenerations.length ? ` (${r.deletedGenerations.join(", ")})` : ""} and ${r.deletedImages.length} image(s), freed ${formatBytes(r.freedBytes)}`,
    `kept generations: ${r.keptGenerations.join(", ") || "none"}`,
    ...(r.stageCacheCleared ? ["removed the stage cache (the next ext add stages every store path again)"] : []),
    ...(r.store ? [`private store ${r.store.root}: deleted ${r.store.deletedPaths} store path(s), freed ${formatBytes(r.store.freedBytes)}; ${r.store.roots} kept for these generations`] : []),
  ];
}
