import { asRoot, type CommandContext } from "../context.js";
import { packageArgs } from "../package-arg.js";
import { transact, formatTransaction, type TransactionResult } from "../transact.js";
import { trackedRemove, formatTrackedChange, type TrackedChange } from "../manifest-sync.js";

export async function remove(ctx: CommandContext, opts: { packages: string[] }): Promise<TransactionResult & { tracked?: TrackedChange }> {
  packageArgs(opts.packages, ctx.argv);
  await asRoot(ctx, `removing ${opts.packages.join(", ")}`, ["remove", ...opts.packages]);
  // With a tracked tools.json (docs/tools-json.md): the packages leave the file too.
  const tracked = await trackedRemove(ctx, opts.packages);
  const result = await transact(tracked?.ctx ?? ctx, { kind: "remove", names: opts.packages });
  return tracked ? { ...result, tracked: await tracked.after() } : result;
}

export function formatRemove(r: TransactionResult & { tracked?: TrackedChange }): string[] {
  return [...formatTransaction(r), ...formatTrackedChange(r.tracked)];
}
