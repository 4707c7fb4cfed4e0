import { join } from "node:path";
import { copyToCache, type ClosureEntry, type NixContext } from "../nix/index.js";
import type { InstalledPackage } from "../generations/record.js";
import type { PackageSpec } from "./packages.js";
import { ShapeError } from "../base/state-file.js";
import { errnoCode } from "../errors.js";
import { PUBLICATION_FORMAT, publicationFiles, readPublication, type Publication } from "./publication.js";
import type { StagedSet } from "./build.js";

// The bootstrap image (docs/install.md, "The bootstrap image"): one .raw with ext, its Node.js and
// Nix, for a machine that has neither Nix nor Node. Placed in /var/lib/extensions and merged, its
// /usr/bin/ext runs; the first transaction there adopts the image as generation 1 (cli/bootstrap.ts).
// What makes that possible is in the image besides the relocated closure:
//   usr/share/ext/published/<name>/   a publication (as `ext publish` writes it): the packages, each
//                                      marked `self`, so generations keep them and `ext remove` refuses;
//   usr/share/ext/bootstrap/cache/     the closure as an unsigned, uncompressed file:// binary cache —
//                                      not relocated, so the machine's empty store can be filled with the
//                                      very paths the generation records, and later images staged from them.

/** ext, its Node.js and Nix, by their attribute names in the source. */
export const BOOTSTRAP_PACKAGES = ["ext", "nodejs", "nix"] as const;
/** Where in the image (and so under the merged /usr) the binary cache is. */
export const BOOTSTRAP_CACHE = "usr/share/ext/bootstrap/cache";

/** The packages to build. They replace whatever the building machine has at /usr/bin/node or
 *  /usr/bin/nix (the image is for a machine without them), so shadowing is allowed and recorded. */
export function bootstrapSpecs(): PackageSpec[] {
  return BOOTSTRAP_PACKAGES.map((name) => ({ name, attr: name, allowShadow: true }));
}

/** The publication the image carries; its version is ext's. */
export function bootstrapFiles(staged: StagedSet): Record<string, string> {
  const packages: InstalledPackage[] = staged.packages.map((p) => ({ ...p, self: true }));
  const ext = packages.find((p) => p.name === "ext");
  return publicationFiles({ format: PUBLICATION_FORMAT, name: staged.extensionName, version: ext?.version ?? "0", compression: staged.compression, packages, narSize: staged.narSize });
}

/** Writes the closure's binary cache into the stage. */
export function bootstrapCache(nix: NixContext): (stageDir: string, closure: readonly ClosureEntry[]) => Promise<void> {
  return (stageDir, closure) => copyToCache(nix, closure.map((c) => c.path), join(stageDir, BOOTSTRAP_CACHE));
}

/** The description of `file` if it is a bootstrap image for `name` (a publication whose packages are
 *  ext's own); null for any other file, or none. */
export async function readBootstrap(file: string, name: string): Promise<Publication | null> {
  try {
    const publication = await readPublication(file, name);
    return publication.packages.some((p) => p.self) ? publication : null;
  } catch (e) {
    if (e instanceof ShapeError || errnoCode(e) !== undefined) return null;
    throw e;
  }
}
