import { ExitCode, ExtError } from "../errors.js";
import type { ClosureEntry, NixContext } from "./types.js";
import { nixCommand } from "./command.js";
import { nixFailed } from "./errors.js";
import { parsePathInfoJson } from "./parse.js";
import { validateStorePath } from "./validate.js";
import { featuresOf, nixVersion } from "./version.js";

/** The runtime closure of `paths` together (each path once), sorted by path, with NAR sizes and
 *  references as full store paths (a path may list itself). */
export async function closure(ctx: NixContext, paths: string[]): Promise<ClosureEntry[]> {
  const roots = [...new Set(paths)];
  if (roots.length === 0) return [];
  roots.forEach(validateStorePath);
  const features = featuresOf(await nixVersion(ctx));
  // Format 2 on Nix ≥ 2.33: bare --json is deprecated there (a warning now, an error later).
  const format = features.pathInfoJsonFormat ? ["--json-format", "2"] : [];
  const result = await nixCommand(ctx, ["path-info", "--json", ...format, "--recursive", ...roots], { log: false });
  if (result.exitCode !== 0) {
    const invalid = /path '([^']+)' is not valid/.exec(result.stderr);
    if (invalid) throw notInStore(ctx, [invalid[1] ?? ""]);
    throw nixFailed("computing the closure", result.command, result.stderr);
  }
  const { entries, invalid } = parsePathInfoJson(result.stdout);
  // Nix 2.8 reports a missing path as `valid: false` and still exits 0.
  if (invalid.length > 0) throw notInStore(ctx, invalid);
  return entries;
}

function notInStore(ctx: NixContext, paths: string[]): ExtError {
  const where = ctx.store.root === "/" ? "the Nix store" : `the Nix store under ${ctx.store.root}`;
  return new ExtError(`${paths.map((p) => `'${p}'`).join(", ")} ${paths.length === 1 ? "is" : "are"} not in ${where}`, {
    hint: "the package must be built (realised) in the same store before its closure is taken",
    exitCode: ExitCode.nix,
  });
}
