import type { CommandContext } from "../context.js";
import { transact, formatTransaction, type TransactionResult } from "../transact.js";

export async function remove(ctx: CommandContext, opts: { packages: string[] }): Promise<TransactionResult> {
  return transact(ctx, { kind: "remove", names: opts.packages });
}

export const formatRemove = formatTransaction;
