import { mkdtemp, rm, stat } from "node:fs/promises";
import { dirname, join, resolve, basename } from "node:path";
import type { CommandContext } from "../context.js";
import { realise, closure as nixClosure } from "../../nix/index.js";
import { stage, pack, verifyImage, opaqueWarning } from "../../image/index.js";
import { UsageError, errnoCode } from "../../errors.js";
import { parsePackageArg } from "../package-arg.js";
import { formatBytes, table } from "../output.js";
import { addFilesToStage } from "../../fleet/publication.js";
import type { InstalledPackage } from "../../generations/record.js";

// `ext build` makes an image and touches nothing else: no state, no activation, no root.

export interface BuildOptions {
  packages: string[];
  output: string;
  allowUnfree?: boolean;
  /** Build what a tools.json and its lock say instead of `packages` (src/fleet/manifest-input.ts). */
  manifest?: string;
  /** Files to add to the image besides the closure, from what was staged (ext publish's description). */
  extraFiles?: (staged: { extensionName: string; compression: string; packages: InstalledPackage[]; narSize: number }) => Record<string, string>;
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

export async function build(given: CommandContext, opts: BuildOptions): Promise<BuildResult> {
  const fromManifest = opts.manifest === undefined ? undefined : await (await import("../../fleet/manifest-input.js")).manifestInput(given, opts.manifest);
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
  const specs = opts.packages.map(parsePackageArg);
  if (!fromManifest) ctx.reporter.phase("building", specs.map((s) => s.name).join(", "));
  const resolved: InstalledPackage[] = fromManifest?.packages ?? await realise(
    ctx.nix,
    specs.map((s) => ({ name: s.name, attr: s.attr ?? s.name, source: ctx.source, ...(opts.allowUnfree ? { allowUnfree: true } : {}) })),
  );
  const roots = resolved.flatMap((p) => Object.values(p.outPaths));
  ctx.reporter.phase("closure");
  const closure = await nixClosure(ctx.nix, roots);
  // Next to the output, so the finished image is renamed, never copied, into place.
  const stageDir = await mkdtemp(join(dirname(output), ".ext-stage-"));
  try {
    ctx.reporter.phase("staging", `${closure.length} store paths`);
    const report = await stage({
      closure,
      packages: resolved.map((p) => ({ name: p.name, outPaths: Object.values(p.outPaths), ...(p.priority !== undefined ? { priority: p.priority } : {}), ...(p.allowShadow ? { allowShadow: true } : {}) })),
      store: ctx.nix.store,
      stageDir,
      extensionName: ctx.extensionName,
      architecture: ctx.architecture,
      hostRoot: ctx.layout.root,
    });
    for (const o of report.opaqueReferences) ctx.reporter.warn(opaqueWarning(o));
    const extra = opts.extraFiles?.({ extensionName: ctx.extensionName, compression: String(ctx.compression), packages: resolved, narSize: closure.reduce((n, c) => n + c.narSize, 0) }) ?? {};
    await addFilesToStage(stageDir, extra);
    ctx.reporter.phase("packing", String(ctx.compression));
    const labels = ctx.labels();
    const packed = await pack({ stageDir, output, compression: ctx.compression, forAnotherMachine: true, ...(labels ? { fileContexts: labels.text } : {}) });
    ctx.reporter.phase("verifying");
    try {
      await verifyImage(packed.path, ctx.extensionName, ctx.architecture);
    } catch (e) {
      await rm(packed.path, { force: true });
      throw e;
    }
    return {
      output: packed.path,
      sha256: packed.sha256,
      imageSize: packed.size,
      closureSize: closure.reduce((n, c) => n + c.narSize, 0),
      storePaths: closure.length,
      extensionName: ctx.extensionName,
      packages: resolved.map((p) => ({ name: p.name, attr: p.attr, version: p.version, outPaths: p.outPaths })),
      links: report.links,
      opaqueReferences: report.opaqueReferences,
    };
  } finally {
    await rm(stageDir, { recursive: true, force: true });
  }
}

export function formatBuild(r: BuildResult): string[] {
  return [
    ...table(r.packages.map((p) => [p.name, p.version])),
    `closure: ${r.storePaths} store paths, ${formatBytes(r.closureSize)}`,
    `image:   ${r.output} (${formatBytes(r.imageSize)}, sha256 ${r.sha256})`,
    `install: cp ${r.output} /var/lib/extensions/${r.extensionName}.raw && systemd-sysext refresh`,
  ];
}
