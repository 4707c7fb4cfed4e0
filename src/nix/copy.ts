import { pathToFileURL } from "node:url";
import type { NixContext } from "./types.js";
import { nixCommand } from "./command.js";
import { nixFailed } from "./errors.js";
import { validateStorePath } from "./validate.js";

// A `file://` binary cache is how a closure travels without being relocated: the bootstrap image
// carries its own closure as one (src/pipeline/bootstrap.ts), so that the first machine it lands on
// can put those paths into its store, with the hashes they were built with.

/** Writes `paths` and their closures into the binary cache in `dir` (made if need be), with zstd:
 *  a third smaller than the image's own lz4 would make it, and as quick to read back. */
export async function copyToCache(ctx: NixContext, paths: readonly string[], dir: string): Promise<void> {
  paths.forEach(validateStorePath);
  const to = `${pathToFileURL(dir).href}?compression=zstd`;
  const r = await nixCommand(ctx, ["copy", "--to", to, ...paths]);
  if (r.exitCode !== 0) throw nixFailed(`writing the binary cache ${dir}`, r.command, r.stderr);
}

/** Copies `paths` from the binary cache in `dir` into ext's store. The cache is unsigned: it came
 *  inside an image the administrator placed, which is the trust decision. */
export async function copyFromCache(ctx: NixContext, dir: string, paths: readonly string[]): Promise<void> {
  paths.forEach(validateStorePath);
  const r = await nixCommand(ctx, ["copy", "--no-check-sigs", "--from", pathToFileURL(dir).href, ...paths]);
  if (r.exitCode !== 0) throw nixFailed(`copying the bootstrap image's closure from ${dir} into the store`, r.command, r.stderr);
}
