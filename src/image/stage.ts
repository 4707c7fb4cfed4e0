import { chmod, mkdir, readdir } from "node:fs/promises";
import { posix } from "node:path";
import { UnsafeImageError } from "../errors.js";
import { auditStage } from "./audit.js";
import { copyClosure, DIR_MODE } from "./copy.js";
import { buildFarm } from "./farm.js";
import { HostView } from "./host.js";
import { validateArchitecture, validateExtensionName } from "./names.js";
import { writeRelease } from "./release.js";
import { takeFarm, takeStaged, type FarmRecord } from "./stage-cache.js";
import { STAGE_STORE_REL, storeBaseName } from "./store-paths.js";
import type { StageInput, StageOptions, StageReport, StagedPath } from "./types.js";

const DEFAULT_CONCURRENCY = 4;

const comparePaths = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * Builds the tree of one extension image in `input.stageDir`: the closure relocated to usr/store, the
 * farm of links into it, and the extension-release file. Refuses, before anything is packed, whatever
 * would break the host or make systemd-sysext refuse to merge.
 */
export async function stage(input: StageInput, options: StageOptions = {}): Promise<StageReport> {
  validateExtensionName(input.extensionName);
  validateArchitecture(input.architecture);
  const closure = [...new Set(input.closure.map((e) => e.path))].sort();
  for (const p of closure) storeBaseName(p);

  await mkdir(input.stageDir, { recursive: true });
  const leftovers = await readdir(input.stageDir);
  if (leftovers.length > 0) {
    throw new UnsafeImageError(`stage directory ${input.stageDir} is not empty (${leftovers.slice(0, 3).join(", ")}…)`, {
      hint: "whatever is there would end up in the image",
    });
  }

  const host = new HostView(input.hostRoot);
  await host.assertDirectoryAllowed("usr");
  const usr = posix.join(input.stageDir, "usr");
  await mkdir(usr);
  await chmod(usr, DIR_MODE);

  // Store paths staged by an earlier transaction come back from the stage cache (stage-cache.ts).
  // So does the farm: then only the links that differ are made (farm.ts).
  let cached = new Map<string, StagedPath>();
  let previousFarm: FarmRecord | undefined;
  if (options.cacheDir !== undefined) {
    await host.assertDirectoryAllowed(STAGE_STORE_REL);
    const storeRoot = posix.join(input.stageDir, STAGE_STORE_REL);
    await mkdir(storeRoot);
    await chmod(storeRoot, DIR_MODE);
    [cached, previousFarm] = await Promise.all([
      takeStaged(options.cacheDir, closure, storeRoot, host, options.bootId),
      takeFarm(options.cacheDir, usr, options.bootId),
    ]);
  }

  const fresh = await copyClosure({
    closure: closure.filter((p) => !cached.has(p)),
    store: input.store,
    stageDir: input.stageDir,
    host,
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
    reuse: options.reuse ?? "copy",
    linkedInodes: [...cached.values()].flatMap((r) => r.linkedInodes),
  });
  const byPath = new Map([...cached, ...fresh.map((r) => [r.path, r] as const)]);
  const paths = closure.map((p) => {
    const r = byPath.get(p);
    if (r === undefined) throw new Error(`internal: ${p} was neither taken from the stage cache nor staged`);
    return r;
  });
  const farm = await buildFarm({ stageDir: input.stageDir, packages: input.packages, host, staged: new Set(closure) }, previousFarm);
  const releaseFile = await writeRelease(input.stageDir, input.extensionName, input.architecture, host);
  await auditStage(input.stageDir, input.extensionName);

  const sum = (k: "files" | "bytes" | "rewritten" | "symlinks" | "rewrittenLinks" | "directories") => paths.reduce((n, r) => n + r[k], 0);
  return {
    files: sum("files"),
    bytes: sum("bytes"),
    rewritten: sum("rewritten"),
    opaqueReferences: paths.flatMap((r) => r.opaqueReferences).sort(comparePaths),
    relocatedContainers: paths.flatMap((r) => r.relocatedContainers).sort(comparePaths),
    links: farm.links,
    shadowed: farm.shadowed,
    symlinks: sum("symlinks"),
    rewrittenLinks: sum("rewrittenLinks"),
    directories: sum("directories"),
    releaseFile,
    paths,
    fromCache: cached.size,
    farm: farm.record,
  };
}
