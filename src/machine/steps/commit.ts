import { deleteGeneration, listGenerationIds, listGenerations, readCurrent, writeGeneration } from "../../generations/store.js";
import { storePathsOf } from "../../generations/record.js";
import type { Journal } from "../../base/journal.js";
import type { Layout } from "../../base/layout.js";
import type { TxEnv } from "../types.js";
import { need, type Step } from "../step.js";

// The new generation's record is written (a rollback writes none: it moves `current` to an
// existing one). `current` still points at the old one until finalize.
export const commitStep: Step = {
  name: "commit",
  description: "write the new generation's record (current still points at the old one)",
  when: "changing",
  async run({ env, made, journal }) {
    const record = need(made, "record");
    // A switch writes no record; a build and an import each write a new one.
    const kind = need(made, "plan").kind;
    const created = kind === "build" || kind === "import";
    await journal.note({ nextGeneration: record.id, createdGeneration: created, nextImage: record.image?.sha256 ?? null });
    if (created) await writeGeneration(env.layout, record);
    await rootGenerations(env);
  },
  async undo({ layout, journal, warn }) {
    if (!journal.createdGeneration || journal.nextGeneration === undefined) return;
    const keep = await reasonToKeep(layout, journal, journal.nextGeneration);
    if (keep === null) await deleteGeneration(layout, journal.nextGeneration);
    else warn(`the journal says it created generation ${journal.nextGeneration}, but ${keep}: kept`);
  },
};

/** In ext's private store, every generation's store paths are Nix GC roots from the moment its record
 *  exists: otherwise a `nix store gc` on that store (by hand, or Nix's automatic collection when the
 *  disk fills) would delete what the current generation and rollback need, and the next `ext add` would
 *  have to build or fetch them again. `ext gc` narrows the roots to the generations it keeps. The system
 *  store is the user's: ext adds no roots there. */
async function rootGenerations(env: TxEnv): Promise<void> {
  if (env.nix.store.root === "/") return;
  const { syncRoots } = await import("../../store/gc.js");
  await syncRoots(env.nix.store.root, storePathsOf(await listGenerations(env.layout)));
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
