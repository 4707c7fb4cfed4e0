import { ExitCode, ExtError } from "../errors.js";
import type { NixContext } from "./types.js";
import { nixCommand } from "./command.js";
import { nixFailed } from "./errors.js";
import { validateStorePath } from "./validate.js";

/** Makes sure store paths recorded earlier are still present (a garbage collection may have
 *  removed them), fetching them from a substituter if one has them. */
export async function ensurePaths(ctx: NixContext, paths: string[]): Promise<void> {
  const unique = [...new Set(paths)];
  if (unique.length === 0) return;
  unique.forEach(validateStorePath);
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
