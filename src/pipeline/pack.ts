import { appendPack, canAppend, pack, planAppend, prepareBase, type PreparedBase } from "../image/index.js";
import { tempName } from "../fsutil.js";
import { unlink } from "node:fs/promises";
import type { PackResult } from "../image/types.js";
import type { ClosureEntry } from "../nix/types.js";
import type { GenerationRecord } from "../generations/record.js";
import type { Reporter } from "../base/reporter.js";
import { imageKey } from "./key.js";
import type { ImageTarget } from "./target.js";

/** The staged tree as an EROFS image at `output`, labelled when the target uses SELinux.
 *  `forAnotherMachine`: the compression need not be one this kernel reads (`ext build`). */
export async function packStage(target: ImageTarget, stageDir: string, output: string, reporter: Reporter, options: { forAnotherMachine?: boolean } = {}): Promise<PackResult> {
  reporter.phase("packing", String(target.compression));
  const labels = target.labels?.();
  return pack({
    stageDir,
    output,
    compression: target.compression,
    ...(options.forAnotherMachine ? { forAnotherMachine: true } : {}),
    ...(labels ? { fileContexts: labels.text } : {}),
  });
}

/** How many appends in a row before an image is packed in full again. Each append leaves the
 *  previous copies of the directories it changed in the image as dead space (a few blocks per
 *  directory: measured in test/integration/append.test.ts); the bound keeps that from growing
 *  without end, and a full pack every so often is cheap next to what the appends saved. */
export const MAX_APPENDS = 8;

/** The generation a new image is made from, with its image file. */
export interface AppendBase {
  record: GenerationRecord;
  /** Where its image is (images/<sha256>.raw). */
  path: string;
}

/** Whether an append onto `previous` is worth preparing, from what is known before Nix runs:
 *  an image packed by this kernel's compression, without labels, short of the bound. appendStage
 *  checks the rest, once the closure and the stage exist. */
export function mayAppendOnto(target: ImageTarget, previous: GenerationRecord): boolean {
  const info = previous.image;
  if (info === null || info.compression !== target.compression || target.labels?.() !== undefined) return false;
  return (info.appended ?? 0) + 1 <= MAX_APPENDS;
}

/** The previous image copied to `copy`, checked and read (src/image/append.ts prepareBase), where
 *  this machine's mkfs.erofs can append at all; rejects where it cannot or the bytes are damaged. */
export async function prepareAppendBase(base: AppendBase, copy: string): Promise<PreparedBase> {
  if (base.record.image === null || !(await canAppend())) throw new Error("no append: mkfs.erofs cannot, or no image");
  return prepareBase(base.path, base.record.image.sha256, copy);
}

/** The new image as the previous one plus the stage's new entries, where that gives the same tree
 *  as packing the stage in full (src/image/append.ts); undefined where it does not, and the caller
 *  packs in full. Never for `ext build`, whose bytes must not depend on history. `prepared`: the
 *  base made ahead (src/machine/steps/prepare.ts); made here when absent (`ext repair`). */
export async function appendStage(target: ImageTarget, base: AppendBase, stageDir: string, closure: readonly ClosureEntry[], output: string, reporter: Reporter, prepared?: Promise<PreparedBase>): Promise<(PackResult & { appended: number }) | undefined> {
  const previous = base.record;
  const info = previous.image;
  if (info === null || !mayAppendOnto(target, previous)) return undefined;
  const appended = (info.appended ?? 0) + 1;
  // The previous image was made with this STAGING_VERSION, name, architecture and compression from
  // exactly its record's store paths and farm inputs: so its store trees are the ones staged now.
  if (previous.imageKey !== imageKey(target, previous.packages, previous.closure.paths.map((path) => ({ path })))) return undefined;
  const paths = new Set(closure.map((c) => c.path));
  if (!previous.closure.paths.every((p) => paths.has(p))) return undefined;
  const bases = closure.map((c) => c.path.slice(c.path.lastIndexOf("/") + 1));
  let ready: PreparedBase;
  try {
    // Built upon, the previous bytes must be the recorded ones (prepareBase checks them as it
    // copies): a missing or damaged previous image, or a mkfs.erofs that cannot append, means
    // packing in full.
    ready = await (prepared ?? prepareAppendBase(base, `${tempName(output)}.base`));
  } catch {
    return undefined;
  }
  // The previous image must be a plain EROFS image to be appended to: an imported verity DDI
  // (src/image/ddi.ts: a GPT disk whose root partition is the EROFS) is not, and its tree cannot
  // be read as EROFS; nor can a damaged one's. Either way planAppend says: pack in full.
  let plan: Awaited<ReturnType<typeof planAppend>>;
  try {
    plan = await planAppend(ready, stageDir, bases);
  } catch {
    plan = { kind: "full", reason: "the stage could not be read" };
  }
  if (plan.kind === "full") {
    await unlink(ready.copy).catch(() => {});
    return undefined;
  }
  reporter.phase("packing", `${String(target.compression)}, appending ${plan.storePaths.length} store paths and ${plan.entries.length} entries to generation ${previous.id}'s image`);
  try {
    const packed = await appendPack({ stageDir, output, compression: target.compression }, ready, plan);
    return { ...packed, appended };
  } catch {
    // Any failure of the append (tar, mkfs.erofs) means packing in full: appending only saves
    // time, and the full pack is the reference path, which reports a failure it shares (a full
    // disk) itself.
    return undefined;
  }
}
