import { rm, unlink } from "node:fs/promises";
import { imagePath, type Layout } from "../base/layout.js";
import { clearJournal, type Journal } from "../base/journal.js";
import { deleteGeneration, listGenerationIds, listGenerations, readCurrent, readGeneration, writeCurrent } from "../generations/store.js";
import { linkActiveImage } from "../sysext/link.js";
import { refresh } from "../sysext/sysext.js";
import { StateError, errnoCode } from "../errors.js";
import { unconfinedReason } from "../generations/confine.js";

// The one place that puts a transaction back: used by the machine after a failed step and by the
// next ext run after a crash. It reads only the journal, so both paths behave the same.

const ACTIVATION_PHASES = new Set(["activate", "check", "rollback"]);

export type RecoveryAction = "undone" | "finished";

/** Undo everything the journalled transaction did. Idempotent: safe to run again after a crash.
 *  Returns warnings (journal entries it refused to act on). */
export async function undo(l: Layout, journal: Journal, merge: Refresh = refresh): Promise<string[]> {
  await restoreActiveImage(l, journal, merge);
  const warnings: string[] = [];
  if (journal.createdGeneration && journal.nextGeneration !== undefined) {
    const keep = await reasonToKeep(l, journal, journal.nextGeneration);
    if (keep === null) await deleteGeneration(l, journal.nextGeneration);
    else warnings.push(`the journal says it created generation ${journal.nextGeneration}, but ${keep}: kept`);
  }
  if (journal.createdImage && journal.nextImage) {
    const stillUsed = (await listGenerations(l)).some((g) => g.image?.sha256 === journal.nextImage);
    if (!stillUsed && journal.nextImage !== journal.previousImage) {
      await unlink(imagePath(l, journal.nextImage)).catch((e) => {
        if (errnoCode(e) !== "ENOENT") throw e;
      });
    }
  }
  warnings.push(...(await removeTemp(l, journal)));
  await clearJournal(l);
  return warnings;
}

/** A transaction only ever creates the next free generation, and current.json points at it only
 *  after it passed its check. So a record the journal claims that is current, not newer than the
 *  previous generation, or older than another record was not made by that transaction: history is
 *  not deleted on a journal's word. */
async function reasonToKeep(l: Layout, journal: Journal, id: number): Promise<string | null> {
  const current = await readCurrent(l).catch(() => undefined);
  if (current === undefined) return "current.json cannot be read";
  if (current === id) return "it is the current generation";
  if (journal.previousGeneration !== null && id <= journal.previousGeneration) return `it is not newer than generation ${journal.previousGeneration}, where that transaction started`;
  const newest = (await listGenerationIds(l)).at(-1);
  if (newest !== undefined && newest > id) return `generation ${newest} was made after it`;
  return null;
}

/** Whether undoing this journal puts back something outside ext's scratch space: the active link
 *  and merge, a generation record or an image it wrote. */
export function changedVisibleState(journal: Journal): boolean {
  return ACTIVATION_PHASES.has(journal.phase) || !!journal.createdGeneration || !!journal.createdImage;
}

export type Refresh = (l: Layout) => Promise<void>;

async function restoreActiveImage(l: Layout, journal: Journal, merge: Refresh): Promise<void> {
  // Before activation nothing visible was touched; only the link and the overlay need putting back.
  if (!ACTIVATION_PHASES.has(journal.phase)) return;
  const previous = journal.previousImage === null ? null : imagePath(l, journal.previousImage);
  await linkActiveImage(l, journal.extensionName, previous);
  await merge(l);
}

/** Complete a transaction that had passed its check: only the pointer and cleanup were left. */
export async function finish(l: Layout, journal: Journal): Promise<string[]> {
  if (journal.nextGeneration !== undefined) {
    // current.json must never point at a record that is not there (readGeneration checks it whole).
    const id = journal.nextGeneration;
    await readGeneration(l, id).catch((e) => {
      throw new StateError(`the journal ${l.journalFile} says generation ${id} passed its check, but its record cannot be read: ${e instanceof Error ? e.message : String(e)}`, {
        hint: `move the journal away (sudo mv ${l.journalFile} /root/), then check 'ext status'; 'sudo ext rollback --to N' links a known generation again`,
        cause: e,
      });
    });
    await writeCurrent(l, id);
  }
  const warnings = await removeTemp(l, journal);
  await clearJournal(l);
  return warnings;
}

/** Removes the journal's temporary paths, only those inside ext's tmp/ (src/generations/confine.ts):
 *  a journal changed outside ext must not make recovery delete anything else. */
export async function removeTemp(l: Layout, journal: Journal): Promise<string[]> {
  const warnings: string[] = [];
  for (const path of journal.temp) {
    const reason = await unconfinedReason(l.tmpDir, path);
    if (reason === "already gone") continue;
    if (reason !== null) {
      warnings.push(`the journal names ${JSON.stringify(path)} as a temporary file, but it is ${reason}: left alone`);
      continue;
    }
    await rm(path, { recursive: true, force: true });
  }
  return warnings;
}

/** What the next run does with a journal it finds: a transaction that reached finalize had
 *  passed every check and only lacked its pointer; anything earlier is undone. */
export function recoveryActionFor(journal: Journal): RecoveryAction {
  return journal.phase === "finalize" ? "finished" : "undone";
}
