import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { StateError, errnoCode, isExtError } from "../errors.js";
import { activeLinkPath, generationPath, imagePath, type Layout } from "../base/layout.js";
import { acquireLock, type LockOptions } from "../base/lock.js";
import { clearJournal, readJournal, type Journal } from "../base/journal.js";
import { ensureStateDirs, listGenerationIds, readCurrent, readGeneration, writeGeneration } from "../generations/store.js";
import type { GenerationRecord, ImageInfo } from "../generations/record.js";
import { readBootState, writeBootState } from "../boot/state.js";
import { imageProblem } from "../generations/image-integrity.js";
import { kindOf } from "../base/state-file.js";
import { sweepLeftovers } from "../generations/sweep.js";
import { activeImageSha, linkActiveImage } from "../sysext/link.js";
import { isMerged } from "../sysext/sysext.js";
import { missingFiles } from "../sysext/check.js";
import { clearStageCache } from "../image/stage-cache.js";
import { STAGING_VERSION } from "../image/version.js";
import { recoverIfNeeded } from "../machine/recover.js";
import { undo } from "../machine/undo.js";
import type { TxEnv, TxRequest } from "../machine/types.js";
import { need, type Made } from "../machine/step.js";
import { Quarantine, lstatOrNull } from "./quarantine.js";

// `ext repair`: puts ext's state back in order where that needs no guess, and says what it found and
// which command to run where it would. What it fixes:
//   - ext's directories, the lock and the journal that are not what ext writes: moved aside;
//   - an unfinished transaction: recovered as any ext command would (finish or undo);
//   - leftovers of killed runs: swept; a stage cache that is not what ext keeps: cleared (derived data);
//   - a record that cannot be read: moved aside (the generation is forgotten; the file is kept);
//   - an image whose bytes are not its record's, or missing: packed again from its store paths when
//     they are still in the store and this ext packs the same key — same key, same bytes, proven by
//     its sha256; an appended image (other bytes for the same tree) is packed in full, proven by its
//     entries against its stage, and its records name the new bytes — otherwise moved aside (unless
//     it is the one merged now);
//   - a link in /var/lib/extensions or a merge that does not match current.json: linked and merged.
// What it does not decide: which generation is current when current.json is damaged or names a record
// that is gone (it moves current.json aside and names the command: `ext rollback --to N`).

export interface RepairResult {
  fixed: string[];
  movedAside: { from: string; to: string; why: string }[];
  /** What needs a person's choice, with the command that does it. */
  needsYou: { problem: string; command: string }[];
  /** Where this repair moved damaged files (null: it moved nothing). */
  damagedDir: string | null;
}

export type RepairEnv = Omit<TxEnv, "journal"> & { lock: Pick<LockOptions, "wait" | "onWait"> };

function kind(s: { isFile(): boolean } & Parameters<typeof kindOf>[0]): string {
  return s.isFile() ? "a file" : kindOf(s);
}

export async function repair(env: RepairEnv): Promise<RepairResult> {
  const l = env.layout;
  const q = new Quarantine(l);
  const fixed: string[] = [];
  const needsYou: RepairResult["needsYou"] = [];

  // ext's directories: anything else in their place stops every command before it starts.
  for (const dir of [l.stateDir, l.imagesDir, l.generationsDir, l.tmpDir, l.stageCacheDir, l.extensionsDir]) {
    const s = await lstatOrNull(dir);
    if (s && !s.isDirectory()) await q.moveAside(dir, `${kind(s)} where ext keeps a directory`);
  }
  const lockStat = await lstatOrNull(l.lockFile);
  if (lockStat && (!lockStat.isFile() || lockStat.uid !== (process.geteuid?.() ?? 0))) {
    await q.moveAside(l.lockFile, lockStat.isFile() ? `owned by uid ${lockStat.uid}` : `${kind(lockStat)} where ext keeps its lock file`);
  }
  await ensureStateDirs(l);
  const lock = await acquireLock(l, env.command, { wait: env.lock.wait, ...(env.lock.onWait ? { onWait: env.lock.onWait } : {}) });
  try {
    await recoverJournal(env, q, fixed);
    const swept = await sweepLeftovers(l, env.extensionName);
    if (swept > 0) fixed.push(`removed ${swept} leftover temporary file(s) of interrupted runs`);
    if (await stageCacheDamaged(l)) {
      await clearStageCache(l.stageCacheDir);
      fixed.push(`cleared the stage cache ${l.stageCacheDir}: it held what ext does not keep there (it is made again by the next ext add)`);
    }
    const records = await readRecords(l, q, needsYou);
    const current = await readCurrentOrSetAside(l, q, records, env.extensionName);
    const unusable = await repairImages(env, q, records, current, fixed, needsYou);
    await repairLinkAndMerge(env, q, records, current, unusable, fixed, needsYou);
    const orphans = await orphanImages(l, records, env.extensionName);
    if (orphans > 0) fixed.push(`note: ${orphans} image(s) in ${l.imagesDir} belong to no generation; 'sudo ext gc' removes them`);
  } finally {
    await lock.release();
  }
  return { fixed, movedAside: q.moved, needsYou, damagedDir: q.moved.length > 0 ? q.dir : null };
}

/** An unfinished transaction is recovered as by any command; a journal that cannot be read or whose
 *  recovery fails is moved aside (the link and the merge are checked against current.json below). */
async function recoverJournal(env: RepairEnv, q: Quarantine, fixed: string[]): Promise<void> {
  const l = env.layout;
  let journal: Journal | undefined;
  try {
    journal = await readJournal(l);
  } catch (e) {
    if (!(e instanceof StateError)) throw e;
    await q.moveAside(l.journalFile, e.message);
    return;
  }
  if (!journal) return;
  try {
    const r = await recoverIfNeeded(l, env.reporter);
    if (r) fixed.push(`${r.action === "finished" ? "finished" : "undid"} the interrupted '${r.command}'`);
  } catch (e) {
    if (!isExtError(e)) throw e;
    await q.moveAside(l.journalFile, `recovering it failed: ${e.message}`);
  }
}

/** The stage cache holds only v<STAGING_VERSION>/ with .boot-id, trees and their JSON records. */
async function stageCacheDamaged(l: Layout): Promise<boolean> {
  const top = await readdir(l.stageCacheDir).catch(() => [] as string[]);
  for (const name of top) {
    const path = join(l.stageCacheDir, name);
    const s = await lstatOrNull(path);
    if (!s) continue;
    if (name !== `v${STAGING_VERSION}` || !s.isDirectory()) return true;
    for (const entry of await readdir(path)) {
      const e = await lstatOrNull(join(path, entry));
      if (!e) continue;
      const wantFile = entry === ".boot-id" || entry.endsWith(".json");
      if (wantFile !== e.isFile() || (!wantFile && !e.isDirectory())) return true;
      if (entry.endsWith(".json")) {
        try {
          JSON.parse(await readFile(join(path, entry), "utf8"));
        } catch {
          return true;
        }
      }
    }
  }
  return false;
}

async function readRecords(l: Layout, q: Quarantine, needsYou: RepairResult["needsYou"]): Promise<Map<number, GenerationRecord>> {
  const records = new Map<number, GenerationRecord>();
  for (const id of await listGenerationIds(l)) {
    try {
      records.set(id, await readGeneration(l, id));
    } catch (e) {
      if (!(e instanceof StateError)) throw e;
      if (/newer ext/.test(e.message)) {
        needsYou.push({ problem: e.message, command: "upgrade ext" });
        continue;
      }
      await q.moveAside(generationPath(l, id), `${e.message} (generation ${id} is forgotten; the file is kept here)`);
    }
  }
  return records;
}

/** current.json, or undefined when which generation is current cannot be told (it was damaged or
 *  named a record that is gone: moved aside). */
async function readCurrentOrSetAside(l: Layout, q: Quarantine, records: Map<number, GenerationRecord>, extensionName: string): Promise<number | null | undefined> {
  let current: number | null;
  try {
    current = await readCurrent(l);
  } catch (e) {
    if (!(e instanceof StateError)) throw e;
    await q.moveAside(l.currentFile, e.message);
    return undefined;
  }
  if (current !== null && !records.has(current)) {
    await q.moveAside(l.currentFile, `it names generation ${current}, which has no readable record`);
    return undefined;
  }
  if (current === null && records.size > 0) {
    // No current generation while ext's image is linked: which one it is, is the person's to say.
    const linked = await activeImageSha(l, extensionName).catch(() => null);
    if (linked !== null) return undefined;
  }
  return current;
}

/** Checks every image a record names; packs damaged or missing ones again where that gives the same
 *  bytes. Returns the images that cannot be used. */
async function repairImages(env: RepairEnv, q: Quarantine, records: Map<number, GenerationRecord>, current: number | null | undefined,
  fixed: string[], needsYou: RepairResult["needsYou"]): Promise<Set<string>> {
  const l = env.layout;
  const unusable = new Set<string>();
  const users = new Map<string, GenerationRecord[]>();
  for (const r of records.values()) if (r.image) users.set(r.image.sha256, [...(users.get(r.image.sha256) ?? []), r]);
  const linked = await activeImageSha(l, env.extensionName).catch(() => null);
  for (const [sha, gens] of users) {
    const file = imagePath(l, sha);
    const problem = await imageProblem(file, gens[0]!.image!);
    if (problem === null) continue;
    const ids = gens.map((g) => g.id).join(", ");
    const newest = gens.at(-1)!;
    const result = await repack(env, q, gens, file, problem, current);
    if (result.kind === "same") {
      fixed.push(`packed the image of generation ${ids} again from its store paths: ${file} (sha256 ${sha.slice(0, 12)}… as its record says; it was ${problem})`);
      continue;
    }
    if (result.kind === "content") {
      for (const g of gens) records.set(g.id, { ...g, image: result.image });
      fixed.push(`packed the image of generation ${ids} again from its store paths, in full: ${imagePath(l, result.image.sha256)} (it was appended, ` +
        `so its bytes are new: the same entries as its stage, checked one by one; its record now names sha256 ${result.image.sha256.slice(0, 12)}…; it was ${problem})`);
      continue;
    }
    const why = result.why;
    unusable.add(sha);
    const isCurrent = gens.some((g) => g.id === current);
    const names = newest.packages.map((p) => p.name).join(" ");
    if (problem !== "missing" && sha !== linked) await q.moveAside(file, `the image of generation ${ids} is ${problem}`);
    needsYou.push({
      problem: `the image of generation ${ids} is ${problem} and cannot be packed again here: ${why}`,
      command: isCurrent && names ? `sudo ext remove ${names} && sudo ext add ${names} (Nix fetches or builds them again)` : `nothing, unless you need generation ${ids}: 'ext rollback --to ${newest.id}' is refused until its packages are installed again`,
    });
  }
  return unusable;
}

type Repacked =
  /** The fresh bytes are the record's, in place. */
  | { kind: "same" }
  /** An appended image packed in full: other bytes, the same entries; the records name them now. */
  | { kind: "content"; image: ImageInfo }
  | { kind: "failed"; why: string };

/** Stages and packs the image of `gens` (the generations whose records name it) again. A full pack
 *  must give the record's bytes (same key, same bytes). An appended image's bytes depend on the
 *  history it was appended through, which a repair cannot replay: its full pack is proven instead by
 *  its content, entry for entry against the stage it was packed from (whose key is the record's),
 *  and then takes the old image's place in the records. The damaged file is moved aside first (never
 *  overwritten) and put back when no good image replaces it. Journalled like a transaction, so a
 *  repair killed here is undone by the next run. */
async function repack(env: RepairEnv, q: Quarantine, gens: GenerationRecord[], file: string, problem: string, current: number | null | undefined): Promise<Repacked> {
  const record = gens.at(-1)!;
  const failed = (why: string): Repacked => ({ kind: "failed", why });
  const [{ closure }, { imageKey }, { stageStep }, { packStep }, { runJournal, runStep }, { treeDigest, imageTreeDigest }] = await Promise.all([
    import("../nix/closure.js"), import("../pipeline/key.js"), import("../machine/steps/stage.js"), import("../machine/steps/pack.js"), import("../machine/transaction.js"),
    import("../image/index.js"),
  ]);
  const roots = record.packages.flatMap((p) => Object.values(p.outPaths));
  let entries;
  try {
    entries = await closure(env.nix, roots);
  } catch (e) {
    return failed(`its store paths are not all in the Nix store any more (${isExtError(e) ? e.message : String(e)})`);
  }
  const want = [...record.closure.paths].sort().join("\n");
  if (entries.map((c) => c.path).sort().join("\n") !== want) return failed("the store paths' closure is not the one its record names");
  const txEnv: TxEnv = { ...env, compression: record.image!.compression };
  if (imageKey(txEnv, record.packages, entries) !== record.imageKey) {
    return failed("this ext would pack another tree for it (another staging version, compression or SELinux labels)");
  }
  // The transaction's own stage and pack steps, journalled the same way, from nothing (no previous
  // image to build on, no warnings held back): same key, same bytes.
  const journal = runJournal(env.layout, {
    txid: randomBytes(8).toString("hex"), pid: process.pid, command: env.command, startedAt: new Date().toISOString(), phase: "stage",
    extensionName: env.extensionName, previousGeneration: current ?? null, previousImage: null, temp: [],
  });
  const made: Partial<Made> = {
    plan: { kind: "build", current: null, resolve: [], keep: record.packages },
    packages: record.packages,
    closure: entries,
  };
  const tx = { env: txEnv, request: { kind: "add", packages: [] } as TxRequest, made, journal };
  // Never overwritten: the damaged file goes aside first, and comes back if no good bytes replace it.
  const aside = problem === "missing" ? null : await q.moveAside(file, `the image of generation ${record.id} is ${problem}`);
  const putBack = async () => {
    if (!aside) return;
    await rename(aside, file);
    q.moved.pop();
  };
  const appended = (record.image!.appended ?? 0) > 0;
  try {
    Object.assign(made, await runStep(stageStep, tx));
    // Read before the pack step, which hands the stage's store trees to the stage cache.
    const staged = appended ? await treeDigest(need(made, "stageDir")) : undefined;
    const packed = need(await runStep(packStep, tx) ?? {}, "packed");
    if (packed.sha256 === record.image!.sha256) {
      await clearJournal(env.layout);
      return { kind: "same" };
    }
    let why = `packing it again gave other bytes (sha256 ${packed.sha256.slice(0, 12)}…; another mkfs.erofs?)`;
    if (staged !== undefined) {
      const scratch = join(env.layout.tmpDir, `repair-${journal.data.txid}`);
      await journal.addTemp(scratch);
      await mkdir(scratch, { recursive: true });
      const holds = await imageTreeDigest(packed.path, scratch).finally(() => rm(scratch, { recursive: true, force: true }));
      if (holds === staged) {
        const image: ImageInfo = { sha256: packed.sha256, size: packed.size, compression: record.image!.compression };
        // The records first, each written atomically: a repair killed between them leaves the image
        // used (the journal's undo keeps it) and the rest still naming the damaged one, which the
        // next repair packs again to the same bytes.
        for (const g of gens) await writeGeneration(env.layout, { ...g, image });
        await renameInBootState(env.layout, record.image!.sha256, image.sha256);
        await clearJournal(env.layout);
        return { kind: "content", image };
      }
      why = `packing it again in full gave an image whose entries are not its stage's (another mkfs.erofs?)`;
    }
    await clearJournal(env.layout);
    // Only an image this run created goes (the same bytes may be another generation's).
    if (journal.data.createdImage) await unlink(packed.path).catch(() => {});
    await putBack();
    return failed(why);
  } catch (e) {
    await undo(env.layout, journal.data, env.refresh).catch(() => {});
    await putBack();
    if (!isExtError(e) && errnoCode(e) === undefined) throw e;
    return failed(isExtError(e) ? e.message : `${errnoCode(e)}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The boot state names images by sha256 (a good boot, a trial): a generation whose image repair
 *  packed anew keeps what its boots showed, under the new name. A boot state that cannot be read is
 *  left to the boot code's own fallbacks. */
async function renameInBootState(l: Layout, from: string, to: string): Promise<void> {
  const read = await readBootState(l);
  if (read.kind !== "ok") return;
  const s = read.state;
  const named = (image: string | null) => (image === from ? to : image);
  const next = {
    ...s,
    good: s.good.map((g) => ({ ...g, image: named(g.image) })),
    pending: s.pending && { ...s.pending, image: named(s.pending.image) },
    lastBoot: s.lastBoot && { ...s.lastBoot, image: named(s.lastBoot.image) },
  };
  if (JSON.stringify(next) !== JSON.stringify(s)) await writeBootState(l, next, s.good);
}

/** /var/lib/extensions/<name>.raw is current.json's image and /usr shows it. */
async function repairLinkAndMerge(env: RepairEnv, q: Quarantine, records: Map<number, GenerationRecord>, current: number | null | undefined,
  unusable: Set<string>, fixed: string[], needsYou: RepairResult["needsYou"]): Promise<void> {
  const l = env.layout;
  const link = activeLinkPath(l, env.extensionName);
  let linked = await activeImageSha(l, env.extensionName).catch(() => null);
  if (current === undefined) {
    const ids = [...records.keys()];
    const byImage = linked && linked !== "foreign" ? ids.filter((id) => records.get(id)!.image?.sha256 === linked).at(-1) : undefined;
    const pick = byImage ?? ids.at(-1);
    needsYou.push({
      problem: `which generation is current cannot be told (${l.currentFile} is missing or was moved aside)${byImage !== undefined ? `; the image linked now is generation ${byImage}'s` : ""}`,
      command: pick !== undefined ? `sudo ext rollback --to ${pick}  (see 'ext generations' for the others)` : "sudo ext add PACKAGE… starts a new history",
    });
    return;
  }
  const record = current === null ? null : records.get(current)!;
  const want = record?.image?.sha256 ?? null;
  if (want !== null && unusable.has(want)) return; // said above; nothing better to link
  let changed = false;
  // A bootstrap image placed by hand (docs/install.md) is what ext runs from: the first change adopts
  // it as generation 1. Moving it aside would take ext away with the next merge.
  if (linked === "foreign" && current === null && await (await import("../pipeline/bootstrap.js")).readBootstrap(link, env.extensionName)) return;
  if (linked === "foreign") {
    // A damaged image moved aside above is still ext's own: the link to it is replaced below.
    const s = await stat(link);
    const ours = await Promise.all(q.moved.map((m) => stat(m.to).then((x) => x.ino === s.ino && x.dev === s.dev).catch(() => false)));
    if (!ours.some(Boolean)) await q.moveAside(link, "a file that is none of ext's images, where ext links its image");
    linked = "foreign";
  }
  if (linked !== want) {
    await linkActiveImage(l, env.extensionName, want === null ? null : imagePath(l, want));
    fixed.push(want === null ? `removed ${link}: generation ${current ?? "none"} has no image` : `linked generation ${current}'s image as ${link}`);
    changed = true;
  }
  const merged = await isMerged(l, env.extensionName).catch(() => false);
  const shows = record?.image ? (await missingFiles(l, { present: [`usr/lib/extension-release.d/extension-release.${env.extensionName}`, ...record.links], absent: [] })).missing.length === 0 : true;
  if (changed || merged !== (want !== null) || !shows) {
    await env.refresh(l);
    fixed.push(`merged generation ${current ?? "none"} into /usr (systemd-sysext refresh)`);
  }
}

async function orphanImages(l: Layout, records: Map<number, GenerationRecord>, extensionName: string): Promise<number> {
  const named = new Set([...records.values()].flatMap((r) => (r.image ? [r.image.sha256] : [])));
  const linked = await activeImageSha(l, extensionName).catch(() => null);
  const names = await readdir(l.imagesDir).catch(() => [] as string[]);
  return names.filter((n) => {
    const sha = /^([0-9a-f]{64})\.raw$/.exec(n)?.[1];
    return sha !== undefined && !named.has(sha) && sha !== linked;
  }).length;
}
