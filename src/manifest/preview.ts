import type { GenerationRecord, InstalledPackage } from "../generations/record.js";
import type { PackageSpec } from "../machine/types.js";
import type { NixContext } from "../nix/types.js";
import { chooseOutputs, closure, parseDrvName, suggestAttributes, installable } from "../nix/index.js";
import { nixCommand } from "../nix/command.js";
import { classifyNixStderr, evalFailed, nixFailed, sourceError, unknownPackage } from "../nix/errors.js";
import { InvalidNameError, isExtError } from "../errors.js";
import { sameOutputs } from "./lockfile.js";

// What `ext apply` would do, without doing it (ext diff, --dry-run): added, removed, version changes
// and the closure size difference. Packages the lock or the current generation already describe
// need no Nix; others are evaluated (never built) for their version and store paths. When the set is
// unchanged, no Nix runs at all.

export interface PreviewPackage {
  name: string;
  version: string;
  outPaths: Record<string, string>;
}

export interface Preview {
  unchanged: boolean;
  generation: number | null;
  added: { name: string; version: string }[];
  removed: { name: string; version: string }[];
  changed: { name: string; from: string; to: string }[];
  /** Same version, other store paths (another revision of the source, other outputs). */
  rebuilt: { name: string; version: string }[];
  /** Only priority or allowShadow differ. */
  settings: { name: string }[];
  closure: {
    before: number;
    /** null when part of the new set is not in the local store yet (its size is unknown before a build). */
    after: number | null;
    delta: number | null;
    /** Packages whose store paths are not in the local store (not counted). */
    notBuilt: string[];
  };
}

/** Evaluates one package's version and output paths; nothing is built. */
export type Evaluator = (spec: PackageSpec) => Promise<PreviewPackage>;

export interface PreviewOptions {
  evaluate?: Evaluator;
  /** NAR size of the closure of these store paths; throws when some are not in the store. */
  closureSize?: (paths: string[]) => Promise<number>;
}

export async function previewSet(
  nix: NixContext,
  current: GenerationRecord | null,
  specs: PackageSpec[],
  locked: InstalledPackage[],
  opts: PreviewOptions = {},
): Promise<Preview> {
  const evaluate = opts.evaluate ?? ((spec: PackageSpec) => evaluatePackage(nix, spec));
  const closureSize = opts.closureSize ?? (async (paths: string[]) => (await closure(nix, paths)).reduce((n, c) => n + c.narSize, 0));
  const installed = current?.packages ?? [];
  const lockedByName = new Map(locked.map((p) => [p.name, p]));

  const wanted: (PreviewPackage & { spec: PackageSpec })[] = [];
  for (const spec of specs) {
    const have = lockedByName.get(spec.name) ?? installed.find((p) => p.name === spec.name && sameRequest(spec, p));
    if (have) wanted.push({ spec, name: spec.name, version: have.version, outPaths: have.outPaths });
    else wanted.push({ spec, ...(await evaluate(spec)) });
  }

  const before = new Map(installed.map((p) => [p.name, p]));
  const after = new Map(wanted.map((w) => [w.name, w]));
  const added = wanted.filter((w) => !before.has(w.name)).map((w) => ({ name: w.name, version: w.version }));
  const removed = installed.filter((p) => !after.has(p.name)).map((p) => ({ name: p.name, version: p.version }));
  const changed: Preview["changed"] = [];
  const rebuilt: Preview["rebuilt"] = [];
  const settings: Preview["settings"] = [];
  for (const w of wanted) {
    const old = before.get(w.name);
    if (!old) continue;
    if (old.version !== w.version) changed.push({ name: w.name, from: old.version, to: w.version });
    else if (!samePaths(old.outPaths, w.outPaths)) rebuilt.push({ name: w.name, version: w.version });
    else if ((old.priority ?? undefined) !== (w.spec.priority ?? undefined) || !!old.allowShadow !== !!w.spec.allowShadow) settings.push({ name: w.name });
  }
  const unchanged = added.length + removed.length + changed.length + rebuilt.length + settings.length === 0;
  const sizeBefore = current?.closure.narSize ?? 0;

  let sizeAfter: number | null = sizeBefore;
  const notBuilt: string[] = [];
  const samePathSet = samePaths(
    Object.fromEntries(installed.flatMap((p) => Object.values(p.outPaths).map((x) => [x, 1]))),
    Object.fromEntries(wanted.flatMap((w) => Object.values(w.outPaths).map((x) => [x, 1]))),
  );
  if (!samePathSet) {
    const all = wanted.flatMap((w) => Object.values(w.outPaths));
    try {
      sizeAfter = all.length === 0 ? 0 : await closureSize(all);
    } catch (e) {
      if (!isExtError(e)) throw e;
      // Find which packages are not in the store yet; count the others.
      const present: string[] = [];
      for (const w of wanted) {
        const paths = Object.values(w.outPaths);
        try {
          await closureSize(paths);
          present.push(...paths);
        } catch (inner) {
          if (!isExtError(inner)) throw inner;
          notBuilt.push(w.name);
        }
      }
      sizeAfter = notBuilt.length > 0 ? null : present.length === 0 ? 0 : await closureSize(present);
    }
  }
  return {
    unchanged,
    generation: current?.id ?? null,
    added,
    removed,
    changed,
    rebuilt,
    settings,
    closure: { before: sizeBefore, after: sizeAfter, delta: sizeAfter === null ? null : sizeAfter - sizeBefore, notBuilt },
  };
}

function sameRequest(spec: PackageSpec, have: InstalledPackage): boolean {
  return (spec.attr ?? spec.name) === have.attr && spec.source === have.source && sameOutputs(spec.outputs, have.outputs);
}

function samePaths(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
}

// One `nix eval` per package: version and the store paths of the outputs ext would install. Like
// META_EXPR in src/nix/meta.ts, a constant function applied to the installable — nothing the user
// wrote is Nix code — using only builtins Nix 2.8 has.
export const PREVIEW_EXPR = `drv:
let
  isSet = builtins.isAttrs drv;
  isDrv = isSet && (drv.type or null) == "derivation";
  meta = if isDrv then drv.meta or { } else { };
  outputs = if isDrv then drv.outputs or [ "out" ] else [ ];
in {
  isDerivation = isDrv;
  isSet = isSet && !isDrv;
  name = if isDrv then drv.name or null else null;
  pname = if isDrv then drv.pname or null else null;
  version = if isDrv then drv.version or null else null;
  outputName = if isDrv then drv.outputName or "out" else "out";
  inherit outputs;
  outputsToInstall = if builtins.isList (meta.outputsToInstall or null) then meta.outputsToInstall else null;
  outPaths = builtins.listToAttrs (map (o: { name = o; value = drv.\${o}.outPath; }) outputs);
}`;

interface PreviewEval {
  isDerivation: boolean;
  isSet: boolean;
  name: string | null;
  pname: string | null;
  version: string | null;
  outputName: string;
  outputs: string[];
  outputsToInstall: string[] | null;
  outPaths: Record<string, string>;
}

export async function evaluatePackage(nix: NixContext, spec: PackageSpec): Promise<PreviewPackage> {
  const source = spec.source ?? "nixpkgs";
  const attr = spec.attr ?? spec.name;
  const result = await nixCommand(nix, ["eval", "--json", installable(source, attr), "--apply", PREVIEW_EXPR], { log: false });
  if (result.exitCode !== 0) {
    const failure = classifyNixStderr(result.stderr);
    if (failure.kind === "unknown-attribute") {
      throw unknownPackage(attr, source, await suggestAttributes(nix, source, attr).catch(() => []));
    }
    const fromSource = sourceError(failure, source);
    if (fromSource) throw fromSource;
    if (failure.kind === "eval") throw evalFailed(spec.name, source, failure.message);
    throw nixFailed(`evaluating package '${spec.name}'`, result.command, result.stderr);
  }
  let data: PreviewEval;
  try {
    data = JSON.parse(result.stdout) as PreviewEval;
  } catch {
    throw nixFailed(`evaluating package '${spec.name}'`, result.command, `not JSON: ${result.stdout.slice(0, 200)}`);
  }
  if (!data.isDerivation) {
    throw new InvalidNameError(`'${attr}' in ${source} is ${data.isSet ? "a set of packages" : "not a package"}`, {
      hint: data.isSet ? `name one package inside it, e.g. '${attr}.<name>'` : "name a package (a derivation) of the source",
    });
  }
  const outputs = chooseOutputs(
    { outputs: data.outputs, outputName: data.outputName, ...(data.outputsToInstall ? { outputsToInstall: data.outputsToInstall } : {}) },
    spec.outputs,
  );
  const missing = outputs.filter((o) => data.outPaths[o] === undefined);
  if (missing.length > 0) {
    throw new InvalidNameError(`package '${spec.name}' has no output ${missing.map((o) => `'${o}'`).join(", ")}`, { hint: `its outputs are: ${data.outputs.join(", ")}` });
  }
  const fromName = parseDrvName(data.name ?? "");
  return {
    name: spec.name,
    version: data.version ?? fromName.version,
    outPaths: Object.fromEntries(outputs.map((o) => [o, data.outPaths[o]!])),
  };
}
