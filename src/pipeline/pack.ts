import { appendPack, canAppend, pack, planAppend } from "../image/index.js";
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

/** The new image as the previous one plus the stage's new entries, where that gives the same tree
 *  as packing the stage in full (src/image/append.ts); undefined where it does not, and the caller
 *  packs in full. Never for `ext build`, whose bytes must not depend on history. */
export async function appendStage(target: ImageTarget, base: AppendBase, stageDir: string, closure: readonly ClosureEntry[], output: string, reporter: Reporter): Promise<(PackResult & { appended: number }) | undefined> {
  const previous = base.record;
  const info = previous.image;
  if (info === null || info.compression !== target.compression || target.labels?.() !== undefined) return undefined;
  const appended = (info.appended ?? 0) + 1;
  if (appended > MAX_APPENDS || !(await canAppend())) return undefined;
  // The previous image was made with this STAGING_VERSION, name, architecture and compression from
  // exactly its record's store paths and farm inputs: so its store trees are the ones staged now.
  if (previous.imageKey !== imageKey(target, previous.packages, previous.closure.paths.map((path) => ({ path })))) return undefined;
  const paths = new Set(closure.map((c) => c.path));
  if (!previous.closure.paths.every((p) => paths.has(p))) return undefined;
  const bases = closure.map((c) => c.path.slice(c.path.lastIndexOf("/") + 1));
  // The previous image must be a plain EROFS image to be appended to: an imported verity DDI
  // (src/image/ddi.ts: a GPT disk whose root partition is the EROFS) is not, and planAppend, which
  // reads it as EROFS, fails on it; so does it on a damaged one. Either way: pack in full.
  let plan: Awaited<ReturnType<typeof planAppend>>;
  try {
    plan = await planAppend(base.path, stageDir, bases);
  } catch {
    return undefined;
  }
  if (plan.kind === "full") return undefined;
  reporter.phase("packing", `${String(target.compression)}, appending ${plan.storePaths.length} store paths and ${plan.entries.length} entries to generation ${previous.id}'s image`);
  try {
    const packed = await appendPack({ previous: base.path, previousSha256: info.sha256, stageDir, output, compression: target.compression, closureBases: bases }, plan);
    return { ...packed, appended };
  } catch {
    // Built upon, the previous bytes must be the recorded ones (appendPack checks them as it copies):
    // a missing or damaged previous image means packing in full. So does any other failure of the
    // append (tar, mkfs.erofs): appending only saves time, and the full pack is the reference path,
    // which reports a failure it shares (a full disk) itself.
    return undefined;
  }
}
