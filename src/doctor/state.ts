import { join } from "node:path";
import { imagePath, activeLinkPath } from "../base/layout.js";
import { checkStateDirs, listGenerationIds, readCurrent, readGeneration } from "../generations/store.js";
import { readJournal } from "../base/journal.js";
import { checkLockFile } from "../base/lock.js";
import type { GenerationRecord } from "../generations/record.js";
import { activeImageSha } from "../sysext/link.js";
import { imageProblem } from "../generations/image-integrity.js";
import { extensionNameProblem } from "../image/names.js";
import { isExtError } from "../errors.js";
import type { DoctorInput, Finding } from "./types.js";
import { mergedExtensions } from "./sysext-status.js";
import { cachedPathCount, versionDir } from "../image/stage-cache.js";

// The state directory: owned by root and not writable by others, records readable, the current
// generation's image present and linked, nothing half-done.

const CHECK = "state";

function problem(status: Finding["status"], message: string, fix: string | null, details?: Record<string, unknown>): Finding {
  return { check: CHECK, status, message, fix, ...(details ? { details } : {}) };
}

/** A bootstrap image placed by hand and not adopted yet (docs/install.md) is not a stray file. */
async function placedBootstrap(layout: DoctorInput["layout"], extensionName: string): Promise<Finding | null> {
  const file = activeLinkPath(layout, extensionName);
  const bootstrap = await (await import("../pipeline/bootstrap.js")).readBootstrap(file, extensionName);
  return bootstrap ? problem("info", `${file} is ext's bootstrap image (ext ${bootstrap.version}); the first 'ext add' (or remove, apply) makes it generation 1`, null) : null;
}

export async function checkState(input: DoctorInput): Promise<Finding[]> {
  const { host, layout, extensionName } = input;
  const findings: Finding[] = [];
  const nameProblem = extensionNameProblem(extensionName);
  if (nameProblem) findings.push({ check: "extension-name", status: "error", message: `the extension name '${extensionName}' is invalid: ${nameProblem}`, fix: "pass a valid --name (letters, digits, '-', '_', '.')" });

  const dir = await host.stat(layout.stateDir);
  if (!dir) {
    findings.push(problem("ok", `no state yet (${layout.stateDir} is created by the first 'ext add')`, null));
    const placed = await placedBootstrap(layout, extensionName);
    if (placed) findings.push(placed);
    return findings;
  }
  if (!dir.isDirectory) {
    findings.push(problem("error", `${layout.stateDir} is not a directory`, `move it away: sudo mv ${layout.stateDir} ${layout.stateDir}.bak`));
    return findings;
  }
  // Whoever can write there decides what root merges into /usr.
  if (dir.uid !== 0 || (dir.mode & 0o022) !== 0) {
    findings.push(problem("error", `${layout.stateDir} is ${dir.uid !== 0 ? `owned by uid ${dir.uid}` : "writable by group or others"}: whoever can write there decides what is merged into /usr`,
      `sudo chown -R root:root ${layout.stateDir} && sudo chmod 755 ${layout.stateDir}`));
  }

  // Every state file is read through its validating reader; each damaged one is its own finding, so
  // one run names them all.
  const damaged: Finding[] = [];
  const readOrReport = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (e) {
      if (!isExtError(e) && !isPermission(e)) throw e;
      damaged.push(isExtError(e)
        ? problem("error", e.message, e.hint ?? `inspect the files in ${layout.stateDir}`)
        : problem("warning", `cannot read ${layout.stateDir} as this user`, "run 'sudo ext doctor'"));
      return undefined;
    }
  };
  await readOrReport(() => checkStateDirs(layout));
  const current = await readOrReport(() => readCurrent(layout));
  const records: GenerationRecord[] = [];
  for (const id of (await readOrReport(() => listGenerationIds(layout))) ?? []) {
    const r = await readOrReport(() => readGeneration(layout, id));
    if (r) records.push(r);
  }
  const journal = await readOrReport(() => readJournal(layout));
  await readOrReport(() => checkLockFile(layout));
  findings.push(...damaged.filter((f, i) => damaged.findIndex((g) => g.message === f.message) === i));
  if (journal) {
    findings.push(problem("warning", `'${journal.command}' was interrupted during ${journal.phase} (pid ${journal.pid}); it is finished or undone by the next ext command that changes state`,
      "sudo ext repair (or any add, remove, rollback, gc) recovers it"));
  }
  if (current === undefined) return findings;

  const record = current === null ? undefined : records.find((r) => r.id === current);
  if (current !== null && !record) {
    findings.push(problem("error", `the current generation ${current} has no record in ${layout.generationsDir}`,
      records.length > 0 ? `sudo ext repair sets current.json aside; then switch to one that exists: sudo ext rollback --to ${records[records.length - 1]!.id}` : `sudo ext repair sets ${layout.currentFile} aside`));
    return findings;
  }

  const linked = await activeImageSha(layout, extensionName).catch(() => undefined);
  const wantImage = record?.image?.sha256 ?? null;
  if (wantImage !== null && !(await host.exists(imagePath(layout, wantImage)))) {
    findings.push(problem("error", `the image of generation ${current} (${wantImage.slice(0, 12)}) is missing from ${layout.imagesDir}`,
      `roll back to an older generation (sudo ext rollback), or install its packages again`));
  }
  // Every image a record names is hashed against it (damage in file data passes fsck and the mount, and
  // crashes programs later): doctor is the explicit look, so it pays ~0.34 s per 271 MiB image
  // (docs/design.md). An image shared by generations is hashed once.
  const users = new Map<string, GenerationRecord[]>();
  for (const r of records) if (r.image) users.set(r.image.sha256, [...(users.get(r.image.sha256) ?? []), r]);
  for (const [sha, gens] of users) {
    const file = imagePath(layout, sha);
    if (sha === wantImage && !(await host.exists(file))) continue; // said above
    const trouble = await imageProblem(file, gens[0]!.image!);
    if (trouble === null) continue;
    const ids = gens.map((g) => g.id).join(", ");
    findings.push(problem("error", `the image of generation ${ids} is ${trouble}: ${file}`,
      `sudo ext repair packs it again from its store paths (or, when they are gone, moves it aside: ${gens.some((g) => g.id === current) ? "install the packages again" : `rollback to generation ${ids} is refused until its packages are installed again`})`));
  }
  const bootstrap = linked === "foreign" && current === null ? await placedBootstrap(layout, extensionName) : null;
  if (bootstrap) {
    findings.push(bootstrap);
  } else if (linked === "foreign") {
    findings.push(problem("warning", `${activeLinkPath(layout, extensionName)} is a file ext did not put there`, `sudo ext repair moves it aside and links ext's own image`));
  } else if (linked !== undefined && linked !== wantImage) {
    findings.push(problem("warning", wantImage === null ? `an image is linked as ${extensionName}.raw but the current generation has none` : `the linked image does not match generation ${current}`,
      "sudo ext repair links and merges the right one"));
  }

  const merged = await mergedExtensions(input);
  if (wantImage !== null && linked === wantImage && merged !== undefined && !merged.includes(extensionName)) {
    findings.push(problem("warning", `generation ${current} is linked but not merged into /usr (after a restart without systemd-sysext.service, or an unmerge)`,
      layout.root === "/" ? "sudo ext repair (or: sudo systemd-sysext refresh)" : `sudo ext repair --root ${layout.root} (or: sudo systemd-sysext refresh --root=${layout.root})`));
  }

  const leftovers = (await host.readDir(layout.tmpDir)) ?? [];
  if (leftovers.length > 0 && !journal) {
    findings.push(problem("info", `${leftovers.length} leftover temporary file(s) in ${layout.tmpDir}`, "sudo ext repair (or the next ext add, remove, rollback or gc) removes them"));
  }

  // What earlier repairs set aside stays until a person removes it: say where, since it takes space.
  const damagedDir = join(layout.stateDir, "damaged");
  const setAside = (await host.readDir(damagedDir)) ?? [];
  if (setAside.length > 0) {
    findings.push(problem("info", `${damagedDir} holds what ${setAside.length} earlier 'ext repair' run(s) moved aside`, `look at it, then remove it: sudo rm -rf ${damagedDir}`));
  }

  // Housekeeping, not a problem: say what the stage cache holds, since it takes disk space.
  const cached = cachedPathCount((await host.readDir(versionDir(layout.stageCacheDir))) ?? []);
  if (cached > 0) {
    findings.push(problem("info", `${cached} store path(s) of the last stage are kept in ${layout.stageCacheDir}, so the next ext add stages only new ones`,
      "sudo ext gc removes them and frees their space"));
  }

  if (!findings.some((f) => f.check === CHECK && f.status !== "ok" && f.status !== "info")) {
    const packages = record?.packages.map((p) => p.name) ?? [];
    findings.push(problem("ok", `${layout.stateDir}: ${records.length} generation(s), current ${current ?? "none"}${packages.length ? ` (${packages.join(", ")})` : ""}${merged?.includes(extensionName) ? ", merged" : ""}`, null,
      { generations: records.length, current, merged: merged?.includes(extensionName) ?? null }));
  }
  return findings;
}

function isPermission(e: unknown): boolean {
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
  return code === "EACCES" || code === "EPERM";
}
