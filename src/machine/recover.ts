import type { Layout } from "../base/layout.js";
import { clearJournal, readJournal } from "../base/journal.js";
import { finish, recoveryActionFor, undo } from "./undo.js";
import type { Reporter } from "../base/reporter.js";

export interface Recovery {
  action: "undone" | "finished";
  command: string;
  generation?: number;
}

/** Called under the lock by every command before it reads state: a journal left behind means a
 *  run was killed; finish it or undo it, and say which. */
export async function recoverIfNeeded(l: Layout, reporter: Reporter): Promise<Recovery | undefined> {
  const journal = await readJournal(l);
  if (!journal) return undefined;
  const action = recoveryActionFor(journal);
  const warnings = action === "finished" ? await finish(l, journal) : await undo(l, journal);
  for (const w of warnings) reporter.warn(w);
  const recovery: Recovery = { action, command: journal.command, generation: journal.nextGeneration };
  reporter.warn(
    action === "finished"
      ? `recovered: finished the interrupted '${journal.command}' (generation ${journal.nextGeneration})`
      : `recovered: undid the interrupted '${journal.command}' (stopped during ${journal.phase}); the previous set is active`,
  );
  return recovery;
}

/** A journal at boot means ext was stopped mid-transaction before the reboot. Put the state back
 *  as the next ext command would, without merging (systemd-sysext.service merges next). */
export async function recoverAtBoot(l: Layout): Promise<string[]> {
  let journal;
  try {
    journal = await readJournal(l);
  } catch {
    await clearJournal(l);
    return ["an unreadable transaction journal was removed"];
  }
  if (!journal) return [];
  const action = recoveryActionFor(journal);
  const noMerge = async () => {};
  const warnings = action === "finished" ? await finish(l, journal) : await undo(l, journal, noMerge);
  return [...warnings, action === "finished"
    ? `finished the interrupted '${journal.command}'`
    : `undid the interrupted '${journal.command}' (stopped during ${journal.phase})`];
}
