import { pathExists } from "../fsutil.js";
import type { Layout } from "../base/layout.js";
import { readBootId } from "./cmdline.js";
import { readBootState, type BootHow, type BootState } from "./state.js";
import { UNIT_NAMES, unitDir } from "./units.js";

// What `ext status` and `ext generations` show of the boot state.

export interface GenerationBootLabel {
  state: "good" | "pending" | "reverted";
  triesLeft?: number;
  /** For reverted: when and why. */
  at?: string;
  reason?: string;
}

export interface BootSummary {
  /** The units `ext setup` installs are there. */
  unitsInstalled: boolean;
  /** The boot state file: ok, missing, or damaged (the next boot repairs it). */
  state: "ok" | "missing" | "damaged";
  problem?: string;
  tries: number | null;
  pending: { generation: number; triesLeft: number } | null;
  lastGood: number | null;
  lastBoot: {
    generation: number | null;
    how: BootHow;
    at: string;
    triesLeft?: number;
    blessed: boolean;
    /** That record is of the boot the system is running now. */
    thisBoot: boolean;
    messages: string[];
  } | null;
  lastRevert: { from: number | null; to: number | null; at: string; reason: string } | null;
}

/** null when boot integration is not set up here (no units and no boot state). */
export async function bootSummary(l: Layout, bootIdGiven?: string): Promise<BootSummary | null> {
  const unitsInstalled = (await Promise.all(UNIT_NAMES.map((u) => pathExists(`${unitDir(l)}/${u}`)))).every(Boolean);
  const read = await readBootState(l);
  if (read.kind === "missing" && !unitsInstalled) return null;
  if (read.kind !== "ok") {
    return {
      unitsInstalled,
      state: read.kind === "missing" ? "missing" : "damaged",
      ...(read.kind === "corrupt" ? { problem: read.reason } : {}),
      tries: null,
      pending: null,
      lastGood: null,
      lastBoot: null,
      lastRevert: null,
    };
  }
  const s = read.state;
  const bootId = await readBootId(bootIdGiven);
  const last = s.lastBoot;
  const revert = s.reverts.at(-1);
  return {
    unitsInstalled,
    state: "ok",
    tries: s.tries,
    pending: s.pending ? { generation: s.pending.generation, triesLeft: s.pending.triesLeft } : null,
    lastGood: s.good.at(-1)?.generation ?? null,
    lastBoot: last
      ? {
          generation: last.generation,
          how: last.how,
          at: last.at,
          ...(last.triesLeft !== undefined ? { triesLeft: last.triesLeft } : {}),
          blessed: last.blessedAt !== undefined && last.how !== "override" && last.how !== "disabled" && last.generation !== null,
          thisBoot: last.bootId === bootId,
          messages: last.messages,
        }
      : null,
    lastRevert: revert ? { from: revert.from, to: revert.to, at: revert.at, reason: revert.reason } : null,
  };
}

/** Per generation: good (a boot blessed it or the same image), pending (tries left), or reverted. */
export function generationBootLabels(state: BootState | undefined, generations: { id: number; image: string | null }[]): Map<number, GenerationBootLabel> {
  const labels = new Map<number, GenerationBootLabel>();
  if (!state) return labels;
  for (const g of generations) {
    if (state.pending?.generation === g.id) {
      labels.set(g.id, { state: "pending", triesLeft: state.pending.triesLeft });
    } else if (g.image !== null && state.good.some((e) => e.image === g.image)) {
      labels.set(g.id, { state: "good" });
    } else {
      const r = [...state.reverts].reverse().find((x) => x.from === g.id);
      if (r) labels.set(g.id, { state: "reverted", at: r.at, reason: r.reason });
    }
  }
  return labels;
}

export function formatBootLabel(label: GenerationBootLabel | undefined): string {
  if (!label) return "";
  if (label.state === "pending") return `pending (${label.triesLeft} ${label.triesLeft === 1 ? "try" : "tries"} left)`;
  if (label.state === "reverted") return `reverted ${label.at?.replace("T", " ").slice(0, 16) ?? ""}`.trimEnd();
  return "good";
}

const HOW: Record<BootHow, string> = {
  current: "the current generation",
  pending: "on trial",
  reverted: "after a revert",
  override: "chosen on the kernel command line, this boot only",
  disabled: "ext.disable: no ext extension",
  none: "no generation",
};

export function formatBootSummary(b: BootSummary | null): string[] {
  if (!b) return [];
  const lines: string[] = [];
  if (b.state !== "ok") {
    lines.push(`boot:       the boot state file is ${b.state}${b.problem ? ` (${b.problem})` : ""}; the next boot falls back to the last good generation`);
  } else {
    const parts = [b.pending ? `generation ${b.pending.generation} pending (${b.pending.triesLeft} ${b.pending.triesLeft === 1 ? "try" : "tries"} left)` : "nothing pending"];
    parts.push(`last good: ${b.lastGood ?? "none"}`, `tries per new generation: ${b.tries}`);
    lines.push(`boot:       ${parts.join("; ")}`);
  }
  if (!b.unitsInstalled) lines.push("            the boot units are not installed: run 'ext setup'");
  if (b.lastBoot) {
    const lb = b.lastBoot;
    const what = lb.generation === null ? "no ext generation" : `generation ${lb.generation}`;
    const tries = lb.triesLeft !== undefined ? `, ${lb.triesLeft} left after it` : "";
    lines.push(`last boot:  ${what} (${HOW[lb.how]}${tries})${lb.blessed ? ", blessed" : ""}${lb.thisBoot ? " — this boot" : ""}, ${lb.at.replace("T", " ").slice(0, 19)}`);
    for (const m of lb.messages) lines.push(`            ${m}`);
  }
  if (b.lastRevert) {
    const r = b.lastRevert;
    lines.push(`reverted:   ${r.at.replace("T", " ").slice(0, 19)} from generation ${r.from ?? "none"} to ${r.to === null ? "no ext extension" : `generation ${r.to}`}: ${r.reason}`);
  }
  return lines;
}

