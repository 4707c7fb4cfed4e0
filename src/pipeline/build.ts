import { mkdtemp, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ClosureEntry, NixContext } from "../nix/types.js";
import type { PackResult, StageReport } from "../image/types.js";
import type { InstalledPackage } from "../generations/record.js";
import type { Reporter } from "../base/reporter.js";
import { inFarmOrder, resolvePackages, type PackageSpec } from "./packages.js";
import { closureOf } from "./closure.js";
import { stageClosure } from "./stage.js";
import { packStage } from "./pack.js";
import { verifyPacked } from "./verify.js";
import type { ImageTarget } from "./target.js";
import { addFilesToStage } from "./publication.js";

/** What is known when the stage is made, for files that describe the image (ext publish). */
export interface StagedSet {
  extensionName: string;
  compression: string;
  packages: InstalledPackage[];
  narSize: number;
}

export interface BuildRequest {
  /** What to resolve; or, with `packages`, nothing (none is resolved again). */
  specs: readonly PackageSpec[];
  /** Packages already resolved (a tools.json's lock: `ext build --manifest`, `ext publish`). */
  packages?: readonly InstalledPackage[];
  /** Files put into the stage besides the closure, path relative to the image's root → text. */
  extraFiles?: (staged: StagedSet) => Record<string, string>;
  /** More to put into the stage after the closure is relocated (written as given, never rewritten):
   *  the bootstrap image's binary cache (src/pipeline/bootstrap.ts). */
  extraTree?: (stageDir: string, closure: readonly ClosureEntry[]) => Promise<void>;
  /** Source of specs that name none. */
  source: string;
  /** The image file to write (`<name>.raw`). */
  output: string;
  nix: NixContext;
  hostRoot: string;
}

export interface BuiltImage {
  packages: InstalledPackage[];
  closure: ClosureEntry[];
  report: StageReport;
  packed: PackResult;
}

/** The whole pipeline, with nothing kept: no state, no stage cache, no root (`ext build`). The stage
 *  is made next to the output, so the finished image is renamed, never copied, into place; an image
 *  that fails verification is removed. */
export async function buildImage(target: ImageTarget, request: BuildRequest, reporter: Reporter): Promise<BuiltImage> {
  // In name order, as a transaction records them: the farm is made from the same list either way.
  const packages = inFarmOrder(request.packages ?? await resolvePackages(request.nix, request.specs, request.source, reporter));
  const closure = await closureOf(request.nix, packages, reporter);
  const stageDir = await mkdtemp(join(dirname(request.output), ".ext-stage-"));
  try {
    const report = await stageClosure(target, { stageDir, packages, closure, store: request.nix.store, hostRoot: request.hostRoot }, reporter);
    if (request.extraFiles) {
      const narSize = closure.reduce((n, c) => n + c.narSize, 0);
      await addFilesToStage(stageDir, request.extraFiles({ extensionName: target.extensionName, compression: String(target.compression), packages, narSize }));
    }
    if (request.extraTree) await request.extraTree(stageDir, closure);
    const packed = await packStage(target, stageDir, request.output, reporter, { forAnotherMachine: true });
    try {
      await verifyPacked(target, packed.path, reporter);
    } catch (e) {
      await rm(packed.path, { force: true });
      throw e;
    }
    return { packages, closure, report, packed };
  } finally {
    await rm(stageDir, { recursive: true, force: true });
  }
}
