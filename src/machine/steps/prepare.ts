import { statfs } from "node:fs/promises";
import { join } from "node:path";
import { imagePath } from "../../base/layout.js";
import { need, type Made, type Step } from "../step.js";
import { pipeline } from "./lazy.js";
import { roomToKeep } from "./pack.js";

// An add that only adds is packed as the current image plus its new entries (pipeline/pack.ts
// appendStage). What that needs of the current image — a copy of it, checked against its record and
// written out, and its tree read — is the same whatever Nix answers, and it is the longest part of
// the append (600–740 ms of 1.05 s for a 271 MiB image in the trixie tree, bench/NOTES.md). So it
// starts here, before Nix runs, and the pack step takes it. Started only when nothing installed is
// removed or resolved again (the only sets an append can serve) and the disk has room to spare (a
// nearly full one is left as it was); a guess that turns out wrong costs
// a copy in tmp/, removed by pack. The copy is a temporary file in the journal before it exists, so a
// run killed now leaves nothing; and everything that ends the transaction (pack, finalize, the
// rollback) waits for this work to settle before it removes temporary files.
export const prepareStep: Step = {
  name: "prepare",
  description: "start copying the current image for an append, while Nix runs",
  when: "building",
  async run({ env, made, journal }) {
    const plan = need(made, "plan");
    if (env.appendImages === false || plan.kind !== "build" || plan.current?.image == null) return;
    const current = plan.current;
    const keptAll = current.packages.every((p) => plan.keep.some((k) => k.name === p.name));
    const [{ mayAppendOnto, prepareAppendBase }, { canAppend }] = await Promise.all([pipeline(), import("../../image/index.js")]);
    // mkfs.erofs 1.5 (Debian 12) cannot append: nothing to prepare, not even a journal entry.
    if (!keptAll || !mayAppendOnto(env, current) || !(await canAppend())) return;
    // A guess must not take the room that Nix and the stage need first: on a nearly full disk the
    // copy is left to pack, as before this step existed (the same bound as the stage cache's).
    const fs = await statfs(env.layout.stateDir);
    if (!roomToKeep(fs.bavail * fs.bsize, fs.blocks * fs.bsize)) return;
    const copy = join(env.layout.tmpDir, `base-${journal.data.txid}.raw`);
    await journal.addTemp(copy);
    const work = prepareAppendBase({ record: current, path: imagePath(env.layout, current.image!.sha256) }, copy);
    // `settled` never rejects: whoever ends the transaction waits on it; `work`'s own failure means
    // only a full pack (pack.ts), so it is observed here and never reported as unhandled.
    const settled = work.then(() => {}, () => {});
    return { appendBase: { copy, work, settled } } satisfies Partial<Made>;
  },
};

/** Waits for the prepared copy's work to end (it may still be writing the copy), so that removing
 *  temporary files after it cannot race it. */
export async function settlePrepared(made: Readonly<Partial<Made>>): Promise<void> {
  await made.appendBase?.settled;
}
