import { rm, unlink } from "node:fs/promises";
import { imagePath, type Layout } from "../generations/layout.js";
import { clearJournal, type Journal } from "../generations/journal.js";
import { deleteGeneration, listGenerations, writeCurrent } from "../generations/store.js";
import { linkActiveImage } from "../sysext/link.js";
import { refresh } from "../sysext/sysext.js";
import { errnoCode } from "../errors.js";
import { unconfinedReason } from "../generations/confine.js";

// The one place that puts a transaction back: used by the machine after a failed step and by the
// next ext run after a crash. It reads only the journal, so both paths behave the same.

const ACTIVATION_PHASES = new Set(["activate", "check", "rollback"]);

export type RecoveryAction = "undone" | "finished";

/** Undo everything the journalled transaction did. Idempotent: safe to run again after a crash.
 *  Returns warnings (journal entries it refused to act on). */
export async function undo(l: Layout, journal: Journal, merge: Refresh = refresh): Promise<string[]> {
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
  const warnings = await removeTemp(l, journal);
  await clearJournal(l);
  return warnings;
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
  if (journal.nextGeneration !== undefined) await writeCurrent(l, journal.nextGeneration);
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
