import type { CommandContext } from "../context.js";
import { lockOptions, requireRoot } from "../context.js";
import { stepEnv } from "../transact.js";
import { ExitCode } from "../../errors.js";
import { refresh } from "../../sysext/sysext.js";
import { repair as repairState, type RepairResult } from "../../repair/index.js";

// `ext repair`: fixes what can be fixed in ext's state without guessing and says what needs a
// person (src/repair/). A command of its own rather than `ext doctor --fix`: doctor only reads and
// runs without root; repair changes state, so it needs root and ext's lock like add and remove.

export async function repair(ctx: CommandContext): Promise<RepairResult> {
  requireRoot(ctx);
  return repairState({ ...stepEnv(ctx), refresh, lock: lockOptions(ctx) });
}

/** 0 when everything found was fixed, 1 when something needs the person's choice. */
export function repairExitCode(r: RepairResult): number {
  return r.needsYou.length === 0 ? ExitCode.ok : ExitCode.user;
}

export function formatRepair(r: RepairResult): string[] {
  const lines: string[] = [];
  for (const m of r.movedAside) lines.push(`moved aside: ${m.from}: ${m.why}`, `             now ${m.to}`);
  for (const f of r.fixed) lines.push(f.startsWith("note: ") ? f : `fixed: ${f}`);
  for (const n of r.needsYou) lines.push(`needs you: ${n.problem}`, `           run: ${n.command}`);
  if (r.damagedDir) lines.push(`damaged files are kept in ${r.damagedDir} (ext never deletes them; remove the directory once you no longer need them)`);
  if (lines.length === 0) lines.push("nothing to repair: ext's state is in order");
  return lines;
}
