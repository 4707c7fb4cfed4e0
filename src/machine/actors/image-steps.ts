import { createHash } from "node:crypto";
import { lstat, mkdtemp, rename, rm, statfs, unlink } from "node:fs/promises";
import { join } from "node:path";
import { stage, pack, verifyImage, opaqueWarning, keepStaged, clearStageCache, STAGE_STORE_REL, STAGING_VERSION } from "../../image/index.js";
import type { StageOptions, StageReport, PackResult } from "../../image/types.js";
import { activeLinkPath, imagePath } from "../../generations/layout.js";
import { activeImageSha } from "../../sysext/link.js";
import { kindOf } from "../../generations/state-file.js";
import { listGenerations, readCurrentGeneration } from "../../generations/store.js";
import { sha256File } from "../../image/pack.js";
import type { GenerationRecord, ImageInfo, InstalledPackage } from "../../generations/record.js";
import { assertImageIntact, imageProblem } from "../../generations/image-integrity.js";
import { writeJournal } from "../../generations/journal.js";
import type { ClosureEntry } from "../../nix/types.js";
import { StateError } from "../../errors.js";
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

/** An earlier generation's image with this key, proven intact (hashed against its record). A damaged
 *  one is not reused: the transaction stages and packs it again, and pack replaces the damaged file. */
export async function findReusableImage(env: TxEnv, key: string): Promise<ImageInfo | null> {
  for (const g of (await listGenerations(env.layout)).reverse()) {
    if (g.imageKey !== key || !g.image) continue;
    const problem = await imageProblem(imagePath(env.layout, g.image.sha256), g.image);
    if (problem === null) return g.image;
    if (problem !== "missing") env.reporter.warn(`the image of generation ${g.id} is ${problem}; packing it again instead of reusing it`);
    return null;
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
  const problem = await imageProblem(final, packed);
  const existed = problem !== "missing";
  if (problem?.startsWith("not a regular file")) {
    throw new StateError(`${final} is ${problem}, where ext keeps an image`, { hint: `move it away (sudo mv ${final} ${final}.bad) and run the command again` });
  }
  // Record that the image may be ours before it appears, so an undo knows to look for it.
  env.journal.nextImage = packed.sha256;
  env.journal.createdImage = !existed;
  await writeJournal(env.layout, env.journal);
  if (problem === null) {
    // Content-addressed: the same bytes are already there.
    await unlink(packed.path);
  } else {
    // New, or a file of that name whose bytes were damaged: the fresh image takes its place.
    await rename(packed.path, final);
  }
  if (report) await keepForNextStage(env, stageDir, report);
  await rm(stageDir, { recursive: true, force: true });
  return { ...packed, path: final };
}

/** Before an image goes where systemd-sysext looks: its bytes are the ones its record names (unless
 *  this transaction just packed or hashed it), and it is a valid extension image. */
export async function verifyStep(env: TxEnv, record: GenerationRecord, proven: boolean): Promise<void> {
  await assertLinkIsOurs(env);
  if (record.image === null) return;
  env.reporter.phase("verifying");
  if (!proven) await assertImageIntact(env.layout, record.image, `generation ${record.id}`);
  await verifyImage(imagePath(env.layout, record.image.sha256), env.extensionName, env.architecture);
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

/** Activation replaces (or removes) `/var/lib/extensions/<name>.raw`, and an undo puts back what the
 *  journal says was there: only ext's images. Something else under that name is not ext's to replace,
 *  so the transaction stops here, before anything visible changes. */
async function assertLinkIsOurs(env: TxEnv): Promise<void> {
  if ((await activeImageSha(env.layout, env.extensionName)) !== "foreign") return;
  const file = activeLinkPath(env.layout, env.extensionName);
  const s = await lstat(file);
  // The current generation's bytes, whose file in images/ was replaced or removed: the link is ext's,
  // the damage is in images/ (what the message must name).
  const current = s.isFile() ? await readCurrentGeneration(env.layout).catch(() => null) : null;
  if (current?.image && s.size === current.image.size && (await sha256File(file)) === current.image.sha256) {
    const image = imagePath(env.layout, current.image.sha256);
    throw new StateError(`the image of generation ${current.id}, ${image}, is not the file linked as ${file} any more: it was replaced or removed outside ext`, {
      hint: "sudo ext repair packs it again from its store paths and links it",
    });
  }
  throw new StateError(`${file} is ${s.isFile() ? "a file that is none of ext's images" : kindOf(s)}: ext will not replace what it did not put there`, {
    hint: `move it away (sudo mv ${file} /root/) and run the command again; if another tool needs that name, give ext another one with --name`,
  });
}
