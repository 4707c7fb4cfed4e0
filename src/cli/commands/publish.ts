import type { CommandContext } from "../context.js";
import { formatBytes } from "../output.js";
import { manifestContext } from "../manifest-sync.js";
import { readManifest } from "../../manifest/index.js";
import { publish as publishSet, type PublishOptions, type PublishResult } from "../../fleet/publish.js";
import { build } from "./build.js";
import { checkVerityOptions } from "../../fleet/ddi.js";

// `ext publish tools.json RELEASE -o DIR [--sign-key KEY]` (src/fleet/publish.ts, docs/fleet.md).
// The image is `ext build --manifest`'s, with the description added to its stage: the same
// pipeline as every other image (src/pipeline/build.ts).

/** The command's --ddi, --verity-key and --verity-cert, checked here (src/fleet/ddi.ts). */
export interface VerityFlags {
  ddi: boolean;
  key: string | undefined;
  cert: string | undefined;
}

export async function publish(ctx: CommandContext, given: Omit<PublishOptions, "ddi"> & { verity: VerityFlags }): Promise<PublishResult> {
  const { verity, ...rest } = given;
  const keys = checkVerityOptions(verity.ddi, verity.key, verity.cert);
  const opts: PublishOptions = { ...rest, ...(keys ? { ddi: keys } : {}) };
  // The manifest names the extension, and so the image file, before the build starts.
  const extensionName = manifestContext(ctx, await readManifest(opts.manifest)).extensionName;
  return publishSet({
    reporter: ctx.reporter,
    nix: ctx.nix,
    extensionName,
    build: (output, extraFiles) => build(ctx, { packages: [], manifest: opts.manifest, output, extraFiles }),
  }, opts);
}

export function formatPublish(r: PublishResult): string[] {
  return [
    `${r.written ? "published" : "already published (same bytes)"}: ${r.file} (${formatBytes(r.size)}, sha256 ${r.sha256})`,
    ...(r.format === "ddi" ? [`a signed verity DDI around the EROFS image (sha256 ${r.erofsSha256}): machines subscribe with --verity-cert CERT.pem`] : []),
    `SHA256SUMS lists ${r.sums.length} image${r.sums.length === 1 ? "" : "s"}${r.signed ? ", signed (SHA256SUMS.gpg)" : ", NOT signed"}`,
    ...(r.cache ? [`binary cache ${r.cache.url}: ${r.cache.paths} store paths${r.cache.signed ? ", signed" : ", NOT signed"}`] : []),
    `serve ${r.dir} over HTTP; machines follow it with: sudo ext subscribe URL --key KEY.asc`,
  ];
}
