import type { NixContext, PackageRequest } from "./types.js";
import { nixCommand } from "./command.js";
import { classifyNixStderr, evalFailed, nixFailed, sourceError, type NixFailure } from "./errors.js";
import { parseMetaJson, type EvalMeta } from "./parse.js";
import { installable } from "./validate.js";

// Package metadata comes from one `nix eval --apply` per package. The function below is a constant:
// the package is selected by the installable argument, so nothing the user typed is ever Nix code.
// It only uses builtins that Nix 2.8 already has.
export const META_EXPR = `drv:
let
  isSet = builtins.isAttrs drv;
  isDrv = isSet && (drv.type or null) == "derivation";
  meta = if isSet then drv.meta or { } else { };
  str = v: if builtins.isString v then v else null;
  licenseName = l:
    if builtins.isString l then l
    else if builtins.isAttrs l then (l.spdxId or l.shortName or l.fullName or null)
    else null;
  license = meta.license or null;
  homepage = meta.homepage or null;
in {
  isDerivation = isDrv;
  isSet = isSet && !isDrv;
  name = if isDrv then str (drv.name or null) else null;
  pname = if isDrv then str (drv.pname or null) else null;
  version = if isDrv then str (drv.version or null) else null;
  drvPath = if isDrv then drv.drvPath else null;
  outputName = if isDrv then drv.outputName or "out" else "out";
  outputs = if isDrv then drv.outputs or [ "out" ] else [ ];
  outputsToInstall = if builtins.isList (meta.outputsToInstall or null) then meta.outputsToInstall else null;
  description = str (meta.description or null);
  homepage = str (if builtins.isList homepage then (if homepage == [ ] then null else builtins.head homepage) else homepage);
  licenses = builtins.filter (x: x != null) (map licenseName (if builtins.isList license then license else [ license ]));
}`;

export type MetaOutcome = { ok: true; meta: EvalMeta } | { ok: false; failure: NixFailure; stderr: string; command: string };

/** Evaluates one package's metadata; a failure is returned (not thrown) so the caller can add
 *  suggestions or attribute it to the right package. */
export async function evalMeta(ctx: NixContext, request: Pick<PackageRequest, "source" | "attr" | "allowUnfree">): Promise<MetaOutcome> {
  const result = await nixCommand(ctx, ["eval", "--json", installable(request.source, request.attr), "--apply", META_EXPR], {
    log: false,
    allowUnfree: !!request.allowUnfree,
  });
  if (result.exitCode !== 0) return { ok: false, failure: classifyNixStderr(result.stderr), stderr: result.stderr, command: result.command };
  return { ok: true, meta: parseMetaJson(result.stdout) };
}

/** Throws the ExtError for a failed evaluation that is not an unknown attribute. */
export function throwEvalFailure(outcome: Extract<MetaOutcome, { ok: false }>, request: PackageRequest): never {
  const fromSource = sourceError(outcome.failure, request.source);
  if (fromSource) throw fromSource;
  if (outcome.failure.kind === "eval") throw evalFailed(request.name, request.source, outcome.failure.message);
  throw nixFailed(`evaluating package '${request.name}'`, outcome.command, outcome.stderr);
}
