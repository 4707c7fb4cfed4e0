import { chmod, mkdir, readdir } from "node:fs/promises";
import { posix } from "node:path";
import { UnsafeImageError } from "../errors.js";
import { auditStage } from "./audit.js";
import { copyClosure, DIR_MODE } from "./copy.js";
import { buildFarm } from "./farm.js";
import { HostView } from "./host.js";
import { validateArchitecture, validateExtensionName } from "./names.js";
import { writeRelease } from "./release.js";
import { storeBaseName } from "./store-paths.js";
import type { StageInput, StageOptions, StageReport } from "./types.js";

const DEFAULT_CONCURRENCY = 4;

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

  const copied = await copyClosure({
    closure,
    store: input.store,
    stageDir: input.stageDir,
    host,
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
    reuse: options.reuse ?? "copy",
  });
  const farm = await buildFarm({ stageDir: input.stageDir, packages: input.packages, host, staged: new Set(closure) });
  const releaseFile = await writeRelease(input.stageDir, input.extensionName, input.architecture, host);
  await auditStage(input.stageDir, input.extensionName);

  return {
    files: copied.files,
    bytes: copied.bytes,
    rewritten: copied.rewritten,
    opaqueReferences: copied.opaqueReferences,
    links: farm.links,
    shadowed: farm.shadowed,
    symlinks: copied.symlinks,
    rewrittenLinks: copied.rewrittenLinks,
    directories: copied.directories,
    releaseFile,
  };
}
