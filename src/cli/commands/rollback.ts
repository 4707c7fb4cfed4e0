import { asRoot, type CommandContext } from "../context.js";
import { transact, formatTransaction, type TransactionResult } from "../transact.js";
import { listGenerationIds, readCurrent } from "../../generations/store.js";
import { ExtError } from "../../errors.js";

/** Switch to the generation before the current one (or --to N), without building anything. */
export async function rollback(ctx: CommandContext, opts: { to?: number }): Promise<TransactionResult> {
  await asRoot(ctx, opts.to === undefined ? "switching to the previous generation" : `switching to generation ${opts.to}`, ["rollback", ...(opts.to === undefined ? [] : ["--to", String(opts.to)])]);
  const target = opts.to ?? (await previousGeneration(ctx));
  return transact(ctx, { kind: "switch", generation: target });
}

async function previousGeneration(ctx: CommandContext): Promise<number> {
  const ids = await listGenerationIds(ctx.layout);
  const current = await readCurrent(ctx.layout);
  const older = ids.filter((id) => current === null || id < current);
  const target = older.at(-1);
  if (target === undefined) {
    throw new ExtError(current === null ? "there are no generations to roll back to" : `generation ${current} is the oldest there is`, {
      hint: "see 'ext generations'",
    });
  }
  return target;
}

export const formatRollback = formatTransaction;
