import { createHash } from "node:crypto";
import { STAGING_VERSION } from "../image/version.js";
import type { InstalledPackage } from "../generations/record.js";
import type { ImageTarget } from "./target.js";

/** Everything that decides an image's content: its tree, entry for entry. Equal keys give images
 *  that hold the same tree, so an image made earlier for the same key is reused instead of staged
 *  and packed again. A full pack gives the same bytes for the same key; an appended one (an `ext add`
 *  that only adds, pipeline/pack.ts) holds the same tree in other bytes, which depend on the history
 *  it was appended through. The bytes are named by the record's sha256, never by the key. */
export function imageKey(target: ImageTarget, packages: readonly InstalledPackage[], closure: readonly { path: string }[]): string {
  const labels = target.labels?.();
  const input = {
    staging: STAGING_VERSION,
    name: target.extensionName,
    arch: target.architecture,
    compression: target.compression,
    // The labels are in the bytes: another policy, another image.
    ...(labels ? { labels: labels.sha256 } : {}),
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
