import type { Layout } from "../base/layout.js";
import { acquireLock } from "../base/lock.js";
import { readBootId } from "./cmdline.js";
import { readBootState, writeBootState, type BootState } from "./state.js";

// `ext boot bless`, run by ext-boot-bless.service once boot-complete.target is reached: the
// generation the selector chose for this boot is good. A one-boot choice from the kernel command
// line is not blessed (it says nothing about the persistent choice), and nothing pending changes.

export interface BlessOptions {
  bootId?: string;
  now?: Date;
}

export interface BlessResult {
  status: "blessed" | "already" | "skipped";
  generation: number | null;
  message: string;
}

export async function blessBoot(l: Layout, opts: BlessOptions = {}): Promise<BlessResult> {
  const bootId = await readBootId(opts.bootId);
  const now = (opts.now ?? new Date()).toISOString();
  const lock = await acquireLock(l, "ext boot bless", { wait: true });
  try {
    const read = await readBootState(l);
    if (read.kind !== "ok") {
      return { status: "skipped", generation: null, message: `nothing to bless: the boot state file ${read.kind === "missing" ? "is missing" : read.reason}` };
    }
    const decision = decideBless(read.state, bootId, now);
    if (decision.state) await writeBootState(l, decision.state, read.state.good);
    return decision.result;
  } finally {
    await lock.release();
  }
}

/** Pure: the new state (undefined: nothing to write) and what to report. */
export function decideBless(state: BootState, bootId: string, now: string): { state?: BootState; result: BlessResult } {
  const last = state.lastBoot;
  if (!last || last.bootId !== bootId) {
    return { result: { status: "skipped", generation: null, message: "the selector did not run in this boot; nothing is marked good" } };
  }
  if (last.blessedAt) {
    return { result: { status: "already", generation: last.generation, message: `this boot was already blessed (generation ${last.generation ?? "none"})` } };
  }
  if (last.how === "override" || last.how === "disabled") {
    return { result: { status: "skipped", generation: last.generation, message: `this boot used a one-boot choice from the kernel command line (${last.how}); nothing is marked good` } };
  }
  const next = structuredClone(state);
  next.lastBoot = { ...last, blessedAt: now };
  if (last.generation === null || last.image === null) {
    return { state: next, result: { status: "skipped", generation: null, message: "no ext extension in this boot; nothing to mark good" } };
  }
  next.good.push({ generation: last.generation, image: last.image, blessedAt: now, bootId });
  if (next.pending && (next.pending.generation === last.generation || next.pending.image === last.image)) next.pending = null;
  return { state: next, result: { status: "blessed", generation: last.generation, message: `generation ${last.generation} reached a good boot` } };
}
