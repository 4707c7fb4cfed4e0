import { verifyImage } from "../image/index.js";
import type { Reporter } from "../base/reporter.js";
import type { ImageTarget } from "./target.js";

/** A valid extension image for this target: it mounts as EROFS and its release file names it.
 *  `proveIntact`: for an image packed earlier, first check its bytes are still the ones recorded. */
export async function verifyPacked(target: ImageTarget, path: string, reporter: Reporter, proveIntact?: () => Promise<void>): Promise<void> {
  reporter.phase("verifying");
  await proveIntact?.();
  await verifyImage(path, target.extensionName, target.architecture);
}
