import { rename, rm, statfs, unlink } from "node:fs/promises";
import { join } from "node:path";
import { imagePath } from "../../base/layout.js";
import { errnoCode, StateError } from "../../errors.js";
import { imageProblem } from "../../generations/image-integrity.js";
import { listGenerations } from "../../generations/store.js";
import type { PackResult, StageReport } from "../../image/types.js";
import type { TxEnv } from "../types.js";
import { need, type Made, type Step, type Tx, type TxJournal } from "../step.js";
import { pipeline } from "./lazy.js";

// mkfs.erofs into tmp/, then the image moves to images/<sha256>.raw: content-addressed, so an
// image already there with those bytes is kept and the new file dropped. A generation that only adds
// to the one it is made from is packed as that image plus the new entries where mkfs.erofs can
// (pipeline/pack.ts appendStage): a copy, never the file itself, which stays the previous generation's. Undo deletes an image this
// transaction created, unless a generation uses it.
export const packStep: Step = {
  name: "pack",
  description: "pack the stage into an EROFS image in images/, named by its sha256",
  when: "packing",
  async run(tx) {
    const { env, made, journal } = tx;
    const stageDir = need(made, "stageDir");
    const scratch = join(env.layout.tmpDir, `pack-${journal.data.txid}.raw`);
    await journal.addTemp(scratch);
    const [{ packStage }, image] = await Promise.all([pipeline(), import("../../image/index.js")]);
    const packed = (await appendOntoCurrent(tx, scratch)) ?? (await packStage(env, stageDir, scratch, env.reporter));
    const final = await placeImage(env, journal, packed);
    await keepForNextStage(env, stageDir, need(made, "stageReport"), image);
    await rm(stageDir, { recursive: true, force: true });
    return { packed: { ...packed, path: final } };
  },
  async undo({ layout, journal }) {
    if (!journal.createdImage || !journal.nextImage) return;
    const stillUsed = (await listGenerations(layout)).some((g) => g.image?.sha256 === journal.nextImage);
    if (stillUsed || journal.nextImage === journal.previousImage) return;
    await unlink(imagePath(layout, journal.nextImage)).catch((e) => {
      if (errnoCode(e) !== "ENOENT") throw e;
    });
  },
};

/** Moves a finished image from tmp/ to images/<sha256>.raw (pack, and import: steps/import.ts).
 *  Content-addressed: an intact image already there with those bytes is kept and the new file
 *  dropped. The journal says whether the image is this transaction's before it appears there. */
export async function placeImage(env: TxEnv, journal: TxJournal, image: PackResult): Promise<string> {
  const final = imagePath(env.layout, image.sha256);
  const problem = await imageProblem(final, image);
  if (problem?.startsWith("not a regular file")) {
    throw new StateError(`${final} is ${problem}, where ext keeps an image`, { hint: `move it away (sudo mv ${final} ${final}.bad) and run the command again` });
  }
  // Record that the image may be ours before it appears, so an undo knows to look for it.
  await journal.note({ nextImage: image.sha256, createdImage: problem === "missing" });
  if (problem === null) {
    // Content-addressed: the same bytes are already there.
    await unlink(image.path);
  } else {
    // New, or a file of that name whose bytes were damaged: the fresh image takes its place.
    await rename(image.path, final);
  }
  return final;
}

type ImageCode = typeof import("../../image/index.js");

/** The image appended onto the current generation's, or undefined: pack in full. */
async function appendOntoCurrent({ env, made }: Tx, output: string): Promise<Made["packed"] | undefined> {
  // On unless turned off ($EXT_APPEND_IMAGES=0). `ext repair` packs a damaged appended image in full
  // and proves it by its entries, not its old bytes (src/repair/).
  if (env.appendImages === false) return undefined;
  const plan = need(made, "plan");
  const current = plan.kind === "build" ? plan.current : null;
  if (current?.image == null) return undefined;
  const { appendStage } = await pipeline();
  const base = { record: current, path: imagePath(env.layout, current.image.sha256) };
  // The copy made ahead (steps/prepare.ts) when there is one; appendStage uses it up or removes it.
  const prepared = made.appendBase;
  try {
    return await appendStage(env, base, need(made, "stageDir"), need(made, "closure"), output, env.reporter, prepared?.work);
  } finally {
    if (prepared !== undefined) {
      await prepared.settled;
      await rm(prepared.copy, { force: true });
    }
  }
}

/** The staged store paths go to the stage cache instead of being deleted with the stage. The cache
 *  only saves time: if keeping fails, it is emptied (never left half-kept) and the transaction goes on. */
async function keepForNextStage(env: TxEnv, stageDir: string, report: StageReport, image: ImageCode): Promise<void> {
  try {
    const fs = await statfs(env.layout.stateDir);
    if (!roomToKeep(fs.bavail * fs.bsize, fs.blocks * fs.bsize)) {
      // Keeping would hold on to space the rest of the system needs more than ext needs speed.
      await image.clearStageCache(env.layout.stageCacheDir);
      return;
    }
    await image.keepStaged(env.layout.stageCacheDir, join(stageDir, image.STAGE_STORE_REL), report.paths, env.bootId, { usrDir: join(stageDir, "usr"), record: report.farm });
  } catch {
    await image.clearStageCache(env.layout.stageCacheDir).catch(() => {});
  }
}

/** The staged trees already take their space when the stage is done; keeping them only means not
 *  giving it back. Below this much free space (1 GiB, or 5 % of the file system when that is more),
 *  ext gives it back: a nearly full /var would hurt the whole system, a slower next `ext add` only ext. */
export function roomToKeep(freeBytes: number, totalBytes: number): boolean {
  return freeBytes >= Math.max(1024 ** 3, totalBytes * 0.05);
}
