import type { CommandContext } from "../context.js";
import { transact, formatTransaction, type TransactionResult } from "../transact.js";
import { parsePackageArg } from "../package-arg.js";

export interface AddOptions {
  packages: string[];
  allowShadow?: boolean;
  priority?: number;
}

export async function add(ctx: CommandContext, opts: AddOptions): Promise<TransactionResult> {
  const packages = opts.packages.map((arg) => ({
    ...parsePackageArg(arg),
    ...(opts.allowShadow ? { allowShadow: true } : {}),
    ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
  }));
  return transact(ctx, { kind: "add", packages });
}

export const formatAdd = formatTransaction;
