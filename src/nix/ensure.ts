import { lstat } from "node:fs/promises";
import { ExitCode, ExtError } from "../errors.js";
import type { NixContext } from "./types.js";
import { nixCommand, physicalPath } from "./command.js";
import { nixFailed } from "./errors.js";
import { validateStorePath } from "./validate.js";

/** Makes sure store paths recorded earlier are still present (a garbage collection may have
 *  removed them), fetching them from a substituter if one has them. When every one is on disk no
 *  Nix process is started (one of the ~5 an `ext add` made, ~30–60 ms): a path Nix has forgotten
 *  although its files are there is caught by the closure query that follows (closure.ts), which
 *  names it. Only a path that is gone needs Nix, to substitute it. */
export async function ensurePaths(ctx: NixContext, paths: string[]): Promise<void> {
  const unique = [...new Set(paths)];
  if (unique.length === 0) return;
  unique.forEach(validateStorePath);
  const onDisk = await Promise.all(unique.map((p) => lstat(physicalPath(ctx.store, p)).then(() => true, () => false)));
  if (onDisk.every(Boolean)) return;
  const result = await nixCommand(ctx, ["build", "--no-link", ...unique]);
  if (result.exitCode === 0) return;
  const gone = [...result.stderr.matchAll(/path '([^']+)' (?:is required, but there is no substituter|is not valid)/g)].map((m) => m[1] ?? "");
  if (gone.length > 0) {
    throw new ExtError(`${gone.map((p) => `'${p}'`).join(", ")} ${gone.length === 1 ? "is" : "are"} no longer in the Nix store and no substituter has ${gone.length === 1 ? "it" : "them"}`, {
      hint: "the path was probably garbage-collected; build the packages again (e.g. 'ext update') so Nix recreates it",
      exitCode: ExitCode.nix,
    });
  }
  throw nixFailed("checking that installed store paths are present", result.command, result.stderr);
}
