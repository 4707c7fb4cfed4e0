import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { CommandContext } from "../context.js";
import { chooseOutputs, physicalPath, suggestAttributes } from "../../nix/index.js";
import { closureOf, resolvePackages } from "../../pipeline/index.js";
import { evalMeta, throwEvalFailure } from "../../nix/meta.js";
import { unknownPackage } from "../../nix/errors.js";
import type { PackageRequest } from "../../nix/types.js";
import { listGenerations, readCurrent } from "../../generations/store.js";
import type { GenerationRecord } from "../../generations/record.js";
import { InvalidNameError, errnoCode } from "../../errors.js";
import { parsePackageArg } from "../package-arg.js";
import { formatBytes } from "../output.js";

// `ext show PKG`: what `ext add PKG` would install — metadata, the commands it would put in /usr/bin,
// the closure size — and whether (and in which generations) it is installed. The package is built
// (or fetched) to know its files; --no-build stops after evaluation.

export interface ShowOptions {
  package: string;
  build?: boolean;
}

export interface ShowResult {
  /** The name it is (or would be) installed under. */
  name: string;
  attr: string;
  source: string;
  pname: string;
  version: string;
  description: string | null;
  license: string | null;
  homepage: string | null;
  /** The outputs `ext add` installs. */
  outputs: string[];
  /** Output → store path; null with --no-build. */
  outPaths: Record<string, string> | null;
  /** Commands it would put in /usr/bin (from bin/ and sbin/ of its outputs); null with --no-build. */
  binaries: string[] | null;
  /** Runtime closure (what the image would hold for it alone); null with --no-build. */
  closure: { paths: number; size: number } | null;
  /** In the current generation under this name, as recorded there. */
  installed: { generation: number; version: string; attr: string; source: string } | null;
  /** Every generation that holds a package of this name. */
  generations: number[];
}

export async function show(ctx: CommandContext, opts: ShowOptions): Promise<ShowResult> {
  const spec = parsePackageArg(opts.package);
  const records = await listGenerations(ctx.layout).catch(() => [] as GenerationRecord[]);
  const currentId = await readCurrent(ctx.layout).catch(() => null);
  const current = records.find((r) => r.id === currentId) ?? null;
  const installed = current?.packages.find((p) => p.name === spec.name);
  // `ext show rg` after `ext add rg=ripgrep` means what is installed as rg, from where it came.
  const request: PackageRequest = spec.attr === undefined && installed
    ? { name: spec.name, attr: installed.attr, source: installed.source }
    : { name: spec.name, attr: spec.attr ?? spec.name, source: ctx.source };

  const where = {
    installed: installed && current ? { generation: current.id, version: installed.version, attr: installed.attr, source: installed.source } : null,
    generations: records.filter((r) => r.packages.some((p) => p.name === spec.name)).map((r) => r.id),
  };

  if (opts.build === false) {
    ctx.reporter.phase("evaluating", request.name);
    const meta = await evaluate(ctx, request);
    return {
      name: request.name,
      attr: request.attr,
      source: request.source,
      pname: meta.pname ?? request.attr,
      version: meta.version ?? "",
      description: meta.description ?? null,
      license: meta.license ?? null,
      homepage: meta.homepage ?? null,
      outputs: chooseOutputs(meta),
      outPaths: null,
      binaries: null,
      closure: null,
      ...where,
    };
  }

  // The first two phases of the pipeline `ext add` runs: the same package, the same closure.
  const [pkg] = await resolvePackages(ctx.nix, [request], request.source, ctx.reporter);
  if (!pkg) throw new Error("resolvePackages returned no package");
  const outPaths = Object.values(pkg.outPaths);
  const closure = await closureOf(ctx.nix, [pkg], ctx.reporter);
  return {
    name: request.name,
    attr: pkg.attr,
    source: pkg.source,
    pname: pkg.pname,
    version: pkg.version,
    description: pkg.description ?? null,
    license: pkg.license ?? null,
    homepage: pkg.homepage ?? null,
    outputs: Object.keys(pkg.outPaths),
    outPaths: pkg.outPaths,
    binaries: await commandsOf(ctx, outPaths),
    closure: { paths: closure.length, size: closure.reduce((n, c) => n + c.narSize, 0) },
    ...where,
  };
}

/** Metadata only, with the same errors as `ext add` for a misspelled or non-package name. */
async function evaluate(ctx: CommandContext, request: PackageRequest) {
  const outcome = await evalMeta(ctx.nix, request);
  if (!outcome.ok) {
    if (outcome.failure.kind === "unknown-attribute") {
      const close = await suggestAttributes(ctx.nix, request.source, request.attr).catch(() => []);
      throw unknownPackage(request.attr, request.source, close);
    }
    throwEvalFailure(outcome, request);
  }
  const meta = outcome.meta;
  if (!meta.isDerivation) {
    throw new InvalidNameError(`'${request.attr}' in ${request.source} is ${meta.isSet ? "a set of packages" : "not a package"}`, {
      hint: meta.isSet ? `name one package inside it, e.g. '${request.attr}.<name>' (see 'ext search')` : "name a package (a derivation) of the source",
    });
  }
  return meta;
}

/** The entries of bin/ and sbin/ that the image's symlink farm would link into /usr/bin. */
async function commandsOf(ctx: CommandContext, outPaths: string[]): Promise<string[]> {
  const names = new Set<string>();
  for (const out of outPaths) {
    for (const dir of ["bin", "sbin"]) {
      const where = join(physicalPath(ctx.nix.store, out), dir);
      let entries: string[];
      try {
        entries = await readdir(where);
      } catch (e) {
        if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") continue;
        throw e;
      }
      for (const entry of entries) {
        const s = await stat(join(where, entry)).catch(() => undefined);
        if (!s?.isDirectory()) names.add(entry);
      }
    }
  }
  return [...names].sort();
}

export function formatShow(r: ShowResult): string[] {
  const lines = [
    `${r.name}${r.attr !== r.name ? ` (${r.attr})` : ""} ${r.version}`.trimEnd(),
    ...(r.description ? [`  ${r.description}`] : []),
    `source:      ${r.source}`,
    `license:     ${r.license ?? "unknown"}`,
    `homepage:    ${r.homepage ?? "none"}`,
    `outputs:     ${r.outputs.join(", ")}`,
  ];
  if (r.binaries !== null) lines.push(`commands:    ${r.binaries.length > 0 ? r.binaries.map((b) => `/usr/bin/${b}`).join(" ") : "none (no bin/ in its outputs)"}`);
  if (r.closure !== null) lines.push(`closure:     ${r.closure.paths} store paths, ${formatBytes(r.closure.size)}`);
  if (r.installed) {
    const same = r.installed.version === r.version;
    lines.push(`installed:   ${r.installed.version} in generation ${r.installed.generation}${same ? "" : ` (the source now has ${r.version})`}`);
  } else {
    lines.push(`installed:   no${r.generations.length > 0 ? "" : ` (install it with 'ext add ${r.name === r.attr ? r.name : `${r.name}=${r.attr}`}')`}`);
  }
  if (r.generations.length > 0) lines.push(`generations: ${r.generations.join(", ")}`);
  return lines;
}
