import { requireRoot, withStateLock, type CommandContext } from "../context.js";
import { defaultExtCommand } from "../../boot/units.js";
import { subscribe as subscribeTo, unsubscribe as unsubscribeFrom, type SubscribeResult } from "../../fleet/subscribe.js";
import { pull as runPull, type PullOptions, type PullResult } from "../../fleet/pull.js";
import { formatTransaction, transact, type TransactionResult } from "../transact.js";

// `ext subscribe URL --key KEY`, `ext unsubscribe`, `ext pull` (src/fleet/, docs/fleet.md).

export interface SubscribeCommandOptions {
  url?: string;
  key?: string;
  manifest?: string;
  schedule?: string;
  verityCert?: string;
  requireSigned?: boolean;
  extCommand?: string;
}

export async function subscribe(ctx: CommandContext, opts: SubscribeCommandOptions): Promise<SubscribeResult> {
  requireRoot(ctx);
  return withStateLock(ctx, () => subscribeTo(ctx.layout, {
    ...opts,
    extCommand: opts.extCommand ?? defaultExtCommand(),
    extensionName: ctx.extensionName,
  }));
}

export function formatSubscribe(r: SubscribeResult): string[] {
  return [
    `subscribed to ${r.subscription.url} (extension '${r.subscription.name}', key ${r.subscription.fingerprints.join(", ")})`,
    ...r.files.map((f) => `  ${f}`),
    r.sysupdate
      ? `ext-pull.timer checks ${r.subscription.schedule} through systemd-sysupdate; 'sudo ext pull' checks now`
      : `systemd-sysupdate is not on this host: ext-pull.timer checks ${r.subscription.schedule} with ext's own verified pull (gpgv + sha256); 'sudo ext pull' checks now`,
  ];
}

export async function unsubscribe(ctx: CommandContext): Promise<{ removed: string[] }> {
  requireRoot(ctx);
  return withStateLock(ctx, async () => ({ removed: await unsubscribeFrom(ctx.layout) }));
}

export function formatUnsubscribe(r: { removed: string[] }): string[] {
  return r.removed.length ? [...r.removed.map((p) => `removed ${p}`), "the generations it installed stay ('ext generations')"] : ["this machine has no subscription"];
}

export async function pull(ctx: CommandContext, opts: PullOptions): Promise<PullResult<TransactionResult>> {
  requireRoot(ctx);
  return runPull({
    layout: ctx.layout,
    reporter: ctx.reporter,
    transact: (extensionName, request) => transact({ ...ctx, extensionName }, request),
  }, opts);
}

export function formatPull(r: PullResult<TransactionResult>): string[] {
  if (r.transaction) return formatTransaction(r.transaction);
  return [`nothing to do: ${r.reason ?? "no new version"}`];
}
