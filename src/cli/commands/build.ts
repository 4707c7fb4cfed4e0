import { stat } from "node:fs/promises";
import { dirname, resolve, basename } from "node:path";
import type { CommandContext } from "../context.js";
import { buildImage, bootstrapCache, bootstrapFiles, bootstrapSpecs, type StagedSet } from "../../pipeline/index.js";
import { UsageError, errnoCode } from "../../errors.js";
import { parsePackageArg } from "../package-arg.js";
import { formatBytes, table } from "../output.js";

// `ext build` makes an image and touches nothing else: no state, no activation, no root. It runs
// the pipeline `ext add` runs (src/pipeline/), so the same set gives the same bytes.

export interface BuildOptions {
  packages: string[];
  output: string;
  allowUnfree?: boolean;
  /** Build what a tools.json and its lock say instead of `packages` (cli/manifest-input.ts). */
  manifest?: string;
  /** Files to add to the image besides the closure, from what was staged (ext publish's description). */
  extraFiles?: (staged: StagedSet) => Record<string, string>;
  /** The bootstrap image: ext, nodejs and nix, with their description and binary cache
   *  (src/pipeline/bootstrap.ts). */
  bootstrap?: boolean;
}

export interface BuildResult {
  output: string;
  sha256: string;
  imageSize: number;
  closureSize: number;
  storePaths: number;
  extensionName: string;
  packages: { name: string; attr: string; version: string; outPaths: Record<string, string> }[];
  links: string[];
  opaqueReferences: { path: string; kind: string; confirmed: boolean }[];
}

const BUILD_FORMS = "ext build PACKAGE… -o NAME.raw, ext build --manifest tools.json -o NAME.raw, or ext build --bootstrap -o NAME.raw";

export async function build(given: CommandContext, opts: BuildOptions): Promise<BuildResult> {
  if (opts.packages.length === 0 && opts.manifest === undefined && !opts.bootstrap) throw new UsageError("'ext build' needs packages or --manifest tools.json", { hint: BUILD_FORMS });
  if (opts.packages.length > 0 && opts.manifest !== undefined) throw new UsageError("'ext build' takes packages or --manifest, not both", { hint: BUILD_FORMS });
  if (opts.bootstrap && (opts.packages.length > 0 || opts.manifest !== undefined)) {
    throw new UsageError("'ext build --bootstrap' takes no packages and no --manifest: the image holds ext, nodejs and nix", { hint: "add packages on the machine afterwards, with the image's own ext ('ext add ripgrep')" });
  }
  const fromManifest = opts.manifest === undefined ? undefined : await (await import("../manifest-input.js")).manifestInput(given, opts.manifest);
  // A tools.json names the extension and its compression: the image is made for those.
  const ctx = fromManifest?.ctx ?? given;
  const output = resolve(opts.output);
  if (!output.endsWith(".raw")) throw new UsageError(`the output must end in .raw (got '${opts.output}')`, { hint: "systemd-sysext only picks up *.raw images" });
  // systemd-sysext refuses every extension when a file name differs from its release name.
  const expected = `${ctx.extensionName}.raw`;
  if (basename(output) !== expected) {
    ctx.reporter.warn(`the image's extension name is '${ctx.extensionName}': install it as ${expected}, or pass --name ${basename(output, ".raw")}`);
  }
  try {
    await stat(dirname(output));
  } catch (e) {
    if (errnoCode(e) === "ENOENT") throw new UsageError(`the directory ${dirname(output)} does not exist`);
    throw e;
  }
  const built = await buildImage(ctx, {
    specs: opts.bootstrap ? bootstrapSpecs() : opts.packages.map(parsePackageArg).map((s) => (opts.allowUnfree ? { ...s, allowUnfree: true } : s)),
    ...(fromManifest ? { packages: fromManifest.packages } : {}),
    ...(opts.extraFiles ? { extraFiles: opts.extraFiles } : {}),
    ...(opts.bootstrap ? { extraFiles: bootstrapFiles, extraTree: bootstrapCache(ctx.nix) } : {}),
    source: ctx.source,
    output,
    nix: ctx.nix,
    hostRoot: ctx.layout.root,
  }, ctx.reporter);
  return {
    output: built.packed.path,
    sha256: built.packed.sha256,
    imageSize: built.packed.size,
    closureSize: built.closure.reduce((n, c) => n + c.narSize, 0),
    storePaths: built.closure.length,
    extensionName: ctx.extensionName,
    packages: built.packages.map((p) => ({ name: p.name, attr: p.attr, version: p.version, outPaths: p.outPaths })),
    links: built.report.links,
    opaqueReferences: built.report.opaqueReferences,
  };
}

export function formatBuild(r: BuildResult): string[] {
  return [
    ...table(r.packages.map((p) => [p.name, p.version])),
    `closure: ${r.storePaths} store paths, ${formatBytes(r.closureSize)}`,
    `image:   ${r.output} (${formatBytes(r.imageSize)}, sha256 ${r.sha256})`,
    `install: cp ${r.output} /var/lib/extensions/${r.extensionName}.raw && systemd-sysext refresh`,
  ];
}
