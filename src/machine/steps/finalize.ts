import { markActivated } from "../../boot/pending.js";
import { readCurrent, readGeneration, writeCurrent } from "../../generations/store.js";
import { clearJournal, type Journal } from "../../base/journal.js";
import type { Layout } from "../../base/layout.js";
import { StateError } from "../../errors.js";
import { removeTemp } from "../temp.js";
import type { Step } from "../step.js";
import { settlePrepared } from "./prepare.js";

// `current` moves last, after the merged /usr was checked; then the journal goes. The new set is on
// trial for the next boots until one is blessed (src/boot). A run killed in this step is finished,
// not undone, by the next one (the set had passed its check).
export const finalizeStep: Step = {
  name: "finalize",
  description: "point current at the new generation, remove temporary files and the journal",
  async run({ env, journal, made }) {
    await settlePrepared(made);
    for (const w of await finish(env.layout, journal.data)) env.reporter.warn(w);
    await markActivated(env.layout, journal.data.nextGeneration, journal.data.nextImage, env.reporter);
  },
  // Only a failure inside this run gets here (a killed run is finished instead): `current` may
  // already point at the new generation, which the undo of the earlier steps is about to take away.
  async undo({ layout, journal }) {
    if (journal.nextGeneration === undefined || journal.nextGeneration === journal.previousGeneration) return;
    if ((await readCurrent(layout).catch(() => null)) === journal.nextGeneration) await writeCurrent(layout, journal.previousGeneration);
  },
};

/** Completes a transaction that had passed its check: only the pointer and cleanup were left. The
 *  same for this run and for the next one that finds the journal (recover.ts). */
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
