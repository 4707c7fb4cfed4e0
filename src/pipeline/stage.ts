import { stage, opaqueWarning, STAGE_STORE_REL } from "../image/index.js";
import type { StageOptions, StageReport } from "../image/types.js";
import type { ClosureEntry, StoreLocation } from "../nix/types.js";
import type { InstalledPackage } from "../generations/record.js";
import type { Reporter } from "../base/reporter.js";
import type { ImageTarget } from "./target.js";

/** Files that need no rewrite (most files of a closure) are hard-linked from the store rather than
 *  copied: nothing writes to a staged file and mkfs.erofs only reads them, so the image is byte for
 *  byte the same (bench/ checks the sha256) while those files are never written again. Where a link
 *  cannot be made (another file system, a read-only bind mount) stage() copies instead. */
export const STAGE_OPTIONS: StageOptions = { reuse: "link" };

export interface StageRequest {
  /** An empty directory that receives `usr/…`. */
  stageDir: string;
  packages: readonly InstalledPackage[];
  closure: ClosureEntry[];
  store: StoreLocation;
  /** The root whose /usr the image will extend (the host's symlinks, files it would shadow). */
  hostRoot: string;
  /** The stage cache (src/image/stage-cache.ts): only where ext keeps state. */
  cacheDir?: string;
  /** This boot, when not the kernel's (tests): the cache belongs to one boot. */
  bootId?: string;
  /** Store paths whose warnings were already shown (the generation this one is made from): said
   *  again on every later add they would only teach people to skip them. */
  alreadyWarned?: readonly string[];
}

/** The relocated closure and the farm of links, as a tree ready to pack. */
export async function stageClosure(target: ImageTarget, request: StageRequest, reporter: Reporter): Promise<StageReport> {
  reporter.phase("staging", `${request.closure.length} store paths`);
  const report = await stage({
    closure: request.closure,
    packages: request.packages.map((p) => ({
      name: p.name,
      outPaths: Object.values(p.outPaths),
      ...(p.priority !== undefined ? { priority: p.priority } : {}),
      ...(p.allowShadow ? { allowShadow: true } : {}),
    })),
    store: request.store,
    stageDir: request.stageDir,
    extensionName: target.extensionName,
    architecture: target.architecture,
    hostRoot: request.hostRoot,
  }, { ...STAGE_OPTIONS, ...(request.cacheDir ? { cacheDir: request.cacheDir } : {}), ...(request.bootId ? { bootId: request.bootId } : {}) });
  const seen = new Set(request.alreadyWarned ?? []);
  for (const o of report.opaqueReferences) {
    if (!seen.has(storePathOf(o.path))) reporter.warn(opaqueWarning(o));
  }
  return report;
}

/** `usr/store/<hash>-name/share/x.gz` (a path in the image) → `/nix/store/<hash>-name`. */
function storePathOf(imagePathRel: string): string {
  const rest = imagePathRel.slice(STAGE_STORE_REL.length + 1);
  return `/nix/store/${rest.split("/")[0] ?? ""}`;
}
