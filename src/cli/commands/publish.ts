import type { CommandContext } from "../context.js";
import { formatBytes } from "../output.js";
import { publish as publishSet, type PublishOptions, type PublishResult } from "../../fleet/publish.js";

// `ext publish tools.json --to DIR --version V [--sign-key KEY]` (src/fleet/publish.ts, docs/fleet.md).

export async function publish(ctx: CommandContext, opts: PublishOptions): Promise<PublishResult> {
  return publishSet(ctx, opts);
}

export function formatPublish(r: PublishResult): string[] {
  return [
    `${r.written ? "published" : "already published (same bytes)"}: ${r.file} (${formatBytes(r.size)}, sha256 ${r.sha256})`,
    `SHA256SUMS lists ${r.sums.length} image${r.sums.length === 1 ? "" : "s"}${r.signed ? ", signed (SHA256SUMS.gpg)" : ", NOT signed"}`,
    ...(r.cache ? [`binary cache ${r.cache.url}: ${r.cache.paths} store paths${r.cache.signed ? ", signed" : ", NOT signed"}`] : []),
    `serve ${r.dir} over HTTP; machines follow it with: sudo ext subscribe URL --key KEY.asc`,
  ];
}
