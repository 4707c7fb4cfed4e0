import type { Layout } from "../base/layout.js";
import type { Reporter } from "../base/reporter.js";
import { readBootState, writeBootState } from "./state.js";

// Called by the transaction once a new set is active and checked: the generation is on trial
// (pending) for the configured number of boots until a boot blesses it. Only where `ext setup`
// made a boot state; a set whose image already reached a good boot (a rollback to a good
// generation) or an empty set is not on trial. Never fails the transaction: the selector treats
// a current generation it does not know as pending anyway.

export async function markActivated(
  l: Layout,
  generation: number | undefined,
  image: string | null | undefined,
  reporter: Reporter,
  now = new Date(),
): Promise<void> {
  if (generation === undefined) return;
  try {
    const read = await readBootState(l);
    if (read.kind !== "ok") return;
    const state = structuredClone(read.state);
    const img = image ?? null;
    if (img === null || state.good.some((g) => g.image === img)) {
      if (state.pending === null) return;
      state.pending = null;
    } else {
      state.pending = { generation, image: img, triesLeft: state.tries, tries: state.tries, since: now.toISOString() };
    }
    await writeBootState(l, state, read.state.good);
  } catch (e) {
    reporter.warn(`could not record generation ${generation} as pending for the next boots (${e instanceof Error ? e.message : String(e)}); the boot selector will treat it as pending`);
  }
}
