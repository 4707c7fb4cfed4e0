import { rm, unlink } from "node:fs/promises";
import { imagePath, type Layout } from "../generations/layout.js";
import { clearJournal, type Journal } from "../generations/journal.js";
import { deleteGeneration, listGenerations, writeCurrent } from "../generations/store.js";
import { linkActiveImage } from "../sysext/link.js";
import { refresh } from "../sysext/sysext.js";
import { errnoCode } from "../errors.js";

// The one place that puts a transaction back: used by the machine after a failed step and by the
// next ext run after a crash. It reads only the journal, so both paths behave the same.

const ACTIVATION_PHASES = new Set(["activate", "check", "rollback"]);

export type RecoveryAction = "undone" | "finished";

/** Undo everything the journalled transaction did. Idempotent: safe to run again after a crash. */
export async function undo(l: Layout, journal: Journal, merge: Refresh = refresh): Promise<void> {
  await restoreActiveImage(l, journal, merge);
  if (journal.createdGeneration && journal.nextGeneration !== undefined) {
    await deleteGeneration(l, journal.nextGeneration);
  }
  if (journal.createdImage && journal.nextImage) {
    const stillUsed = (await listGenerations(l)).some((g) => g.image?.sha256 === journal.nextImage);
    if (!stillUsed && journal.nextImage !== journal.previousImage) {
      await unlink(imagePath(l, journal.nextImage)).catch((e) => {
        if (errnoCode(e) !== "ENOENT") throw e;
      });
    }
  }
  await removeTemp(journal);
  await clearJournal(l);
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
export async function finish(l: Layout, journal: Journal): Promise<void> {
  if (journal.nextGeneration !== undefined) await writeCurrent(l, journal.nextGeneration);
  await removeTemp(journal);
  await clearJournal(l);
}

export async function removeTemp(journal: Journal): Promise<void> {
  for (const path of journal.temp) await rm(path, { recursive: true, force: true });
}

/** What the next run does with a journal it finds: a transaction that reached finalize had
 *  passed every check and only lacked its pointer; anything earlier is undone. */
export function recoveryActionFor(journal: Journal): RecoveryAction {
  return journal.phase === "finalize" ? "finished" : "undone";
}
