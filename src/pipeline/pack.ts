import { pack } from "../image/index.js";
import type { PackResult } from "../image/types.js";
import type { Reporter } from "../base/reporter.js";
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
