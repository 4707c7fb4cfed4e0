import type { Layout } from "../base/layout.js";
import { clearJournal, type Journal } from "../base/journal.js";
import { refresh } from "../sysext/sysext.js";
import { removeTemp } from "./temp.js";
import { STEPS } from "./steps/index.js";

export { removeTemp };
export { finish } from "./steps/finalize.js";

// The one place that puts a transaction back: used by the machine after a failed step and by the
// next ext run after a crash. It reads only the journal, so both paths behave the same: every step
// the journal shows as started is undone by its own undo (steps/), last step first; then the
// temporary files go, and the journal.

export type RecoveryAction = "undone" | "finished";
export type Refresh = (l: Layout) => Promise<void>;

/** The steps a journal shows as started, in order. A phase ext does not know (a journal written by
 *  another version) counts as all of them: each undo checks its own facts, so undoing a step that
 *  never ran does nothing. */
function startedSteps(journal: Journal) {
  const at = STEPS.findIndex((s) => s.name === journal.phase);
  return at < 0 ? STEPS : STEPS.slice(0, at + 1);
}

/** Undo everything the journalled transaction did. Idempotent: safe to run again after a crash.
 *  Returns warnings (journal entries it refused to act on). */
export async function undo(l: Layout, journal: Journal, merge: Refresh = refresh): Promise<string[]> {
  const warnings: string[] = [];
  for (const step of [...startedSteps(journal)].reverse()) {
    await step.undo?.({ layout: l, journal, merge, warn: (w) => warnings.push(w) });
  }
  warnings.push(...(await removeTemp(l, journal)));
  await clearJournal(l);
  return warnings;
}

/** Whether undoing this journal puts back something outside ext's scratch space: the active link
 *  and merge, a generation record or an image it wrote. */
export function changedVisibleState(journal: Journal): boolean {
  return startedSteps(journal).some((s) => s.name === "activate") || !!journal.createdGeneration || !!journal.createdImage;
}

/** What the next run does with a journal it finds: a transaction that reached finalize had
 *  passed every check and only lacked its pointer; anything earlier is undone. */
export function recoveryActionFor(journal: Journal): RecoveryAction {
  return journal.phase === "finalize" ? "finished" : "undone";
}
