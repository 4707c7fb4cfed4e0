import { mkdtemp, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ClosureEntry, NixContext } from "../nix/types.js";
import type { PackResult, StageReport } from "../image/types.js";
import type { InstalledPackage } from "../generations/record.js";
import type { Reporter } from "../base/reporter.js";
import { resolvePackages, type PackageSpec } from "./packages.js";
import { closureOf } from "./closure.js";
import { stageClosure } from "./stage.js";
import { packStage } from "./pack.js";
import { verifyPacked } from "./verify.js";
import type { ImageTarget } from "./target.js";

export interface BuildRequest {
  specs: readonly PackageSpec[];
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
  const packages = (await resolvePackages(request.nix, request.specs, request.source, reporter)).sort((a, b) => a.name.localeCompare(b.name));
  const closure = await closureOf(request.nix, packages, reporter);
  const stageDir = await mkdtemp(join(dirname(request.output), ".ext-stage-"));
  try {
    const report = await stageClosure(target, { stageDir, packages, closure, store: request.nix.store, hostRoot: request.hostRoot }, reporter);
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
