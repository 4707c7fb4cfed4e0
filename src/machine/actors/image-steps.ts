import { createHash } from "node:crypto";
import { mkdtemp, rename, rm, stat, statfs, unlink } from "node:fs/promises";
import { join } from "node:path";
import { stage, pack, verifyImage, opaqueWarning, keepStaged, clearStageCache, STAGE_STORE_REL, STAGING_VERSION } from "../../image/index.js";
import type { StageOptions, StageReport, PackResult } from "../../image/types.js";
import { imagePath } from "../../generations/layout.js";
import { listGenerations } from "../../generations/store.js";
import type { ImageInfo, InstalledPackage } from "../../generations/record.js";
import { writeJournal } from "../../generations/journal.js";
import type { ClosureEntry } from "../../nix/types.js";
import { errnoCode } from "../../errors.js";
import type { TxEnv } from "../types.js";

/** Everything that decides an image's bytes. Equal keys give byte-identical images, so an image
 *  made earlier for the same key is reused instead of staged and packed again. */
export function imageKeyFor(env: TxEnv, packages: InstalledPackage[], closure: ClosureEntry[]): string {
  const input = {
    staging: STAGING_VERSION,
    name: env.extensionName,
    arch: env.architecture,
    compression: env.compression,
    // The labels are in the bytes: another policy, another image.
    ...(env.labels?.() ? { labels: env.labels()!.sha256 } : {}),
    paths: closure.map((c) => c.path).sort(),
    farm: packages.map((p) => ({
      name: p.name,
      out: Object.entries(p.outPaths).sort(),
      priority: p.priority ?? 0,
      allowShadow: !!p.allowShadow,
    })),
  };
  return createHash("sha256").update(JSON.stringify(input)).digest("hex");
}

export async function findReusableImage(env: TxEnv, key: string): Promise<ImageInfo | null> {
  for (const g of (await listGenerations(env.layout)).reverse()) {
    if (g.imageKey !== key || !g.image) continue;
    try {
      await stat(imagePath(env.layout, g.image.sha256));
      return g.image;
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e;
    }
  }
  return null;
}

/** How a transaction stages. Files that need no rewrite (most files of a closure) are hard-linked
 *  from the store rather than copied: the stage under /var/lib/ext/tmp is usually on the store's file
 *  system, nothing writes to a staged file and mkfs.erofs only reads them, so the image is byte for
 *  byte the same (bench/ checks the sha256) while those files are never written again. Where a link
 *  cannot be made (another file system, a read-only bind mount) stage() copies instead. */
export const STAGE_OPTIONS: StageOptions = { reuse: "link" };

/** A transaction also keeps what it staged for the next one (src/image/stage-cache.ts). */
function stageOptions(env: TxEnv): StageOptions {
  return { ...STAGE_OPTIONS, cacheDir: env.layout.stageCacheDir };
}

/** `previousPaths`: the closure of the generation this one is made from. Its warnings were shown when
 *  its store paths arrived; said again on every later add they would only teach people to skip them. */
export async function stageStep(env: TxEnv, packages: InstalledPackage[], closure: ClosureEntry[], previousPaths: readonly string[] = []): Promise<{ stageDir: string; report: StageReport }> {
  const stageDir = await mkdtemp(join(env.layout.tmpDir, "stage-"));
  env.journal.temp.push(stageDir);
  await writeJournal(env.layout, env.journal);
  env.reporter.phase("staging", `${closure.length} store paths`);
  const report = await stage({
    closure,
    packages: packages.map((p) => ({
      name: p.name,
      outPaths: Object.values(p.outPaths),
      ...(p.priority !== undefined ? { priority: p.priority } : {}),
      ...(p.allowShadow ? { allowShadow: true } : {}),
    })),
    store: env.nix.store,
    stageDir,
    extensionName: env.extensionName,
    architecture: env.architecture,
    hostRoot: env.layout.root,
  }, stageOptions(env));
  const seen = new Set(previousPaths);
  for (const o of report.opaqueReferences) {
    if (!seen.has(storePathOf(o.path))) env.reporter.warn(opaqueWarning(o));
  }
  return { stageDir, report };
}

/** `usr/store/<hash>-name/share/x.gz` (a path in the image) → `/nix/store/<hash>-name`. */
function storePathOf(imagePathRel: string): string {
  const rest = imagePathRel.slice(STAGE_STORE_REL.length + 1);
  return `/nix/store/${rest.split("/")[0] ?? ""}`;
}

function labelsOf(env: TxEnv): { fileContexts?: string } {
  const labels = env.labels?.();
  return labels ? { fileContexts: labels.text } : {};
}

export async function packStep(env: TxEnv, stageDir: string, report?: StageReport): Promise<PackResult> {
  env.reporter.phase("packing", env.compression);
  const scratch = join(env.layout.tmpDir, `pack-${env.journal.txid}.raw`);
  env.journal.temp.push(scratch);
  await writeJournal(env.layout, env.journal);
  const packed = await pack({ stageDir, output: scratch, compression: env.compression, ...labelsOf(env) });
  const final = imagePath(env.layout, packed.sha256);
  let existed = true;
  try {
    await stat(final);
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
    existed = false;
  }
  // Record that the image may be ours before it appears, so an undo knows to look for it.
  env.journal.nextImage = packed.sha256;
  env.journal.createdImage = !existed;
  await writeJournal(env.layout, env.journal);
  if (existed) {
    // Content-addressed: the same bytes are already there.
    await unlink(packed.path);
  } else {
    await rename(packed.path, final);
  }
  if (report) await keepForNextStage(env, stageDir, report);
  await rm(stageDir, { recursive: true, force: true });
  return { ...packed, path: final };
}

export async function verifyStep(env: TxEnv, sha256: string | null): Promise<void> {
  if (sha256 === null) return;
  env.reporter.phase("verifying");
  await verifyImage(imagePath(env.layout, sha256), env.extensionName, env.architecture);
}

/** The staged store paths go to the stage cache instead of being deleted with the stage. The cache
 *  only saves time: if keeping fails, it is emptied (never left half-kept) and the transaction goes on. */
async function keepForNextStage(env: TxEnv, stageDir: string, report: StageReport): Promise<void> {
  try {
    const fs = await statfs(env.layout.stateDir);
    if (!roomToKeep(fs.bavail * fs.bsize, fs.blocks * fs.bsize)) {
      // Keeping would hold on to space the rest of the system needs more than ext needs speed.
      await clearStageCache(env.layout.stageCacheDir);
      return;
    }
    await keepStaged(env.layout.stageCacheDir, join(stageDir, STAGE_STORE_REL), report.paths);
  } catch {
    await clearStageCache(env.layout.stageCacheDir).catch(() => {});
  }
}

/** The staged trees already take their space when the stage is done; keeping them only means not
 *  giving it back. Below this much free space (1 GiB, or 5 % of the file system when that is more),
 *  ext gives it back: a nearly full /var would hurt the whole system, a slower next `ext add` only ext. */
export function roomToKeep(freeBytes: number, totalBytes: number): boolean {
  return freeBytes >= Math.max(1024 ** 3, totalBytes * 0.05);
}
