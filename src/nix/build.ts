import { existsSync } from "node:fs";
import path from "node:path";
import { InvalidNameError } from "../errors.js";
import type { NixContext, PackageRequest, ResolvedPackage } from "./types.js";
import { nixCommand } from "./command.js";
import { suggestAttributes } from "./attrs.js";
import { buildFailed, classifyNixStderr, logTail, nixFailed, sourceError, unknownPackage, type NixFailure } from "./errors.js";
import { evalMeta, throwEvalFailure } from "./meta.js";
import { NixOutputError, parseBuildJson, parseDrvName, storePathName, type EvalMeta } from "./parse.js";
import { mapLimit } from "./pool.js";
import { featuresOf, nixVersion } from "./version.js";
import { installable, validateAttrPath, validateFlakeRef, validateOutputName, validateSystem } from "./validate.js";

// realise = evaluate every package (metadata, derivation, outputs; unknown names fail here, before
// anything is built), then build them all in ONE `nix build`, so Nix schedules shared dependencies
// once and in parallel. Knowing each package's derivation up front is also what lets a build failure
// be pinned on the package the user asked for.

const EVAL_CONCURRENCY = 4;

interface Planned {
  request: PackageRequest;
  meta: EvalMeta & { drvPath: string };
  outputs: string[];
}

export async function realise(ctx: NixContext, requests: PackageRequest[]): Promise<ResolvedPackage[]> {
  if (requests.length === 0) return [];
  validateSystem(ctx.system);
  const normalised = requests.map(normaliseRequest);
  // The version decides the build's installable syntax; asked now, it overlaps the evaluations
  // instead of following them (`nix --version` touches no store).
  const version = nixVersion(ctx);
  version.catch(() => undefined); // awaited below; an evaluation that fails first must not leave it unhandled

  // A store whose database does not exist yet (a new private store, a fresh /nix) is created by the
  // first Nix process; several at once fail with "SQLite database '…/db.sqlite' is busy" (seen in the
  // trixie tree). So the first evaluation runs alone there, and the others follow in parallel.
  const fresh = !existsSync(path.join(nixStateDir(ctx), "db/db.sqlite"));
  const head = fresh ? [await evalMeta(ctx, normalised[0] as PackageRequest)] : [];
  const outcomes = [...head, ...(await mapLimit(normalised.slice(head.length), EVAL_CONCURRENCY, (r) => evalMeta(ctx, r)))];
  const planned: Planned[] = [];
  for (const [i, outcome] of outcomes.entries()) {
    const request = normalised[i] as PackageRequest;
    if (!outcome.ok) {
      if (outcome.failure.kind === "unknown-attribute") {
        // Our ranking over the whole package set first; Nix's own guess when listing fails.
        const ours = await suggestAttributes(ctx, request.source, request.attr).catch(() => []);
        const suggestions = ours.length > 0 ? ours : nixGuesses(outcome.failure.suggestions, request.attr);
        throw unknownPackage(request.attr, request.source, suggestions);
      }
      throwEvalFailure(outcome, request);
    }
    planned.push(plan(request, outcome.meta));
  }

  // One build for the packages in nixpkgs' default configuration, and one for those allowed to be
  // unfree: that permission must not reach packages the user did not give it to.
  const built: ReturnType<typeof parseBuildJson> = [];
  const { caretOutputs } = featuresOf(await version);
  for (const allowUnfree of [false, true]) {
    const group = planned.filter((p) => !!p.request.allowUnfree === allowUnfree);
    if (group.length === 0) continue;
    const installables = [...new Set(group.flatMap((p) => p.outputs.map((o) => installable(p.request.source, p.request.attr, o, caretOutputs))))];
    const result = await nixCommand(ctx, ["build", "--no-link", "--json", "--print-build-logs", ...installables], { allowUnfree });
    if (result.exitCode !== 0) {
      throw await buildError(ctx, group, classifyNixStderr(result.stderr), result.command, result.stderr);
    }
    built.push(...parseBuildJson(result.stdout));
  }

  return planned.map(({ request, meta, outputs }) => {
    const outPaths: Record<string, string> = {};
    for (const output of outputs) {
      const path = built.find((b) => b.drvPath === meta.drvPath && b.outputs[output] !== undefined)?.outputs[output];
      if (path === undefined) throw new NixOutputError("nix build --json", `no path for output '${output}' of ${meta.drvPath}`);
      outPaths[output] = path;
    }
    const fromName = parseDrvName(meta.name ?? storePathName(Object.values(outPaths)[0] ?? ""));
    const resolved: ResolvedPackage = {
      ...request,
      pname: meta.pname ?? fromName.pname,
      version: meta.version ?? fromName.version,
      outPaths,
      drvPath: meta.drvPath,
    };
    if (meta.description !== undefined) resolved.description = meta.description;
    if (meta.license !== undefined) resolved.license = meta.license;
    if (meta.homepage !== undefined) resolved.homepage = meta.homepage;
    return resolved;
  });
}

/** Where Nix keeps this store's database: NIX_STATE_DIR when ext sets it (a private store on a host
 *  without /nix/var/nix), else the store root's nix/var/nix. */
function nixStateDir(ctx: NixContext): string {
  const fromEnv = ctx.env?.["NIX_STATE_DIR"] ?? (ctx.store.root === "/" ? process.env["NIX_STATE_DIR"] : undefined);
  if (fromEnv) return fromEnv;
  return ctx.store.root === "/" ? "/nix/var/nix" : path.join(path.resolve(ctx.store.root), "nix/var/nix");
}

/** Nix suggests the last segment only; give back whole attribute paths. */
function nixGuesses(guesses: string[], attr: string): string[] {
  const parent = attr.includes(".") ? attr.slice(0, attr.lastIndexOf(".") + 1) : "";
  return guesses.slice(0, 3).map((g) => parent + g);
}

function normaliseRequest(r: PackageRequest): PackageRequest {
  validateAttrPath(r.name, "package name");
  validateAttrPath(r.attr, "attribute path");
  for (const o of r.outputs ?? []) validateOutputName(o);
  const normalised: PackageRequest = { ...r, source: validateFlakeRef(r.source) };
  return normalised;
}

/** Which outputs to build: the ones asked for, else what `nix profile install` would install. */
export function chooseOutputs(meta: Pick<EvalMeta, "outputs" | "outputName" | "outputsToInstall">, wanted?: string[]): string[] {
  if (wanted && wanted.length > 0) return [...new Set(wanted)];
  const toInstall = (meta.outputsToInstall ?? []).filter((o) => meta.outputs.includes(o));
  return toInstall.length > 0 ? [...new Set(toInstall)] : [meta.outputName];
}

function plan(request: PackageRequest, meta: EvalMeta): Planned {
  if (!meta.isDerivation || meta.drvPath === undefined) {
    throw new InvalidNameError(
      meta.isSet
        ? `'${request.attr}' in ${request.source} is a set of packages, not a package`
        : `'${request.attr}' in ${request.source} is not a package`,
      { hint: meta.isSet ? `name one package inside it, e.g. '${request.attr}.<name>' (see 'ext search')` : "name a package (a derivation) of the source" },
    );
  }
  const outputs = chooseOutputs(meta, request.outputs);
  const missing = outputs.filter((o) => !meta.outputs.includes(o));
  if (missing.length > 0) {
    throw new InvalidNameError(`package '${request.name}' has no output ${missing.map((o) => `'${o}'`).join(", ")}`, {
      hint: `its outputs are: ${meta.outputs.join(", ")}`,
    });
  }
  return { request, meta: { ...meta, drvPath: meta.drvPath }, outputs };
}

async function buildError(ctx: NixContext, planned: Planned[], failure: NixFailure, command: string, stderr: string): Promise<Error> {
  switch (failure.kind) {
    case "build-failed": {
      const direct = planned.filter((p) => p.meta.drvPath === failure.drv);
      const culprits = direct.length > 0 ? direct : await dependentsOf(ctx, planned, failure.drv);
      const log = await buildLog(ctx, failure.drv);
      return buildFailed({
        packages: culprits.map((p) => p.request.name),
        drv: failure.drv,
        rootOfPackage: direct.length > 0,
        log: log.length > 0 ? log : failure.log,
        storeRoot: ctx.store.root,
        ...(failure.reason === undefined ? {} : { reason: failure.reason }),
        ...(failure.exitCode === undefined ? {} : { exitCode: failure.exitCode }),
      });
    }
    case "unknown-attribute": {
      // Evaluation already found every package, so this means the source changed in between.
      const p = planned.find((x) => failure.attr === x.request.attr || failure.attr.startsWith(`${x.request.attr}.`));
      if (p) return unknownPackage(p.request.attr, p.request.source, []);
      return nixFailed("building packages", command, stderr);
    }
    default: {
      for (const p of planned) {
        const fromSource = sourceError(failure, p.request.source);
        if (fromSource) return fromSource;
      }
      return nixFailed(`building ${planned.map((p) => `'${p.request.name}'`).join(", ")}`, command, stderr);
    }
  }
}

/** The requested packages whose build needs the failed derivation. */
async function dependentsOf(ctx: NixContext, planned: Planned[], drv: string): Promise<Planned[]> {
  const found = await mapLimit(planned, EVAL_CONCURRENCY, async (p) => {
    const r = await nixCommand(ctx, ["path-info", "--derivation", "--recursive", p.meta.drvPath], { log: false });
    return r.exitCode === 0 && r.stdout.split("\n").includes(drv);
  });
  return planned.filter((_, i) => found[i]);
}

/** Nix keeps the log of a failed build; it is more complete than what stderr quoted. */
async function buildLog(ctx: NixContext, drv: string): Promise<string[]> {
  const r = await nixCommand(ctx, ["log", drv], { log: false });
  return r.exitCode === 0 ? logTail(r.stdout) : [];
}
