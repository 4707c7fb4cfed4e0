import { asRoot, type CommandContext } from "../context.js";
import { transact, formatTransaction, type TransactionResult } from "../transact.js";
import { packageArgs, parsePackageArg } from "../package-arg.js";
import { trackedAdd, formatTrackedChange, type TrackedChange } from "../manifest-sync.js";

export interface AddOptions {
  packages: string[];
  allowShadow?: boolean;
  allowUnfree?: boolean;
  priority?: number;
}

export async function add(ctx: CommandContext, opts: AddOptions): Promise<TransactionResult & { tracked?: TrackedChange }> {
  const packages = packageArgs(opts.packages, ctx.argv).map((arg) => ({
    ...parsePackageArg(arg),
    ...(opts.allowShadow ? { allowShadow: true } : {}),
    ...(opts.allowUnfree ? { allowUnfree: true } : {}),
    ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
  }));
  await asRoot(ctx, `installing ${opts.packages.join(", ")}`, [
    "add", ...opts.packages,
    ...(opts.allowShadow ? ["--allow-shadow"] : []),
    ...(opts.allowUnfree ? ["--allow-unfree"] : []),
    ...(opts.priority !== undefined ? ["--priority", String(opts.priority)] : []),
  ]);
  // With a tracked tools.json (docs/tools-json.md): resolve from its lock's pins, then add to the file.
  const tracked = await trackedAdd(ctx, packages);
  if (!tracked) return transact(ctx, { kind: "add", packages });
  const result = await transact(tracked.ctx, { kind: "add", packages: tracked.packages });
  return { ...result, tracked: await tracked.after() };
}

export function formatAdd(r: TransactionResult & { tracked?: TrackedChange }): string[] {
  return [...formatTransaction(r), ...formatTrackedChange(r.tracked)];
}
