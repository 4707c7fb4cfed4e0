import { requireRoot, withStateLock, type CommandContext } from "../context.js";
import { join } from "node:path";
import { defaultExtCommand, unitDir } from "../../boot/units.js";
import { tellSystemd } from "../../boot/systemctl.js";
import { pathExists } from "../../fsutil.js";
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

export type SubscribeCommandResult = SubscribeResult & {
  /** ext-pull.timer was (re)started on this running system; false: it is armed at the next boot. */
  timerStarted: boolean;
};

export async function subscribe(ctx: CommandContext, opts: SubscribeCommandOptions): Promise<SubscribeCommandResult> {
  requireRoot(ctx);
  return withStateLock(ctx, async () => {
    const result = await subscribeTo(ctx.layout, {
      ...opts,
      extCommand: opts.extCommand ?? defaultExtCommand(),
      extensionName: ctx.extensionName,
    });
    // Restart, not start: a subscription changed to another schedule takes it now.
    const failed = await tellSystemd(ctx.layout, [["daemon-reload"], ["restart", "ext-pull.timer"]]);
    for (const f of failed ?? []) ctx.reporter.warn(`'${f}' failed; ext-pull.timer is armed at the next boot ('sudo ext pull' checks now)`);
    return { ...result, timerStarted: failed !== null && failed.length === 0 };
  });
}

export function formatSubscribe(r: SubscribeCommandResult): string[] {
  return [
    `subscribed to ${r.subscription.url} (extension '${r.subscription.name}', key ${r.subscription.fingerprints.join(", ")})`,
    ...r.files.map((f) => `  ${f}`),
    `${r.sysupdate ? "" : "systemd-sysupdate is not on this host: "}ext-pull.timer ${r.timerStarted ? "is started and " : "(armed at the next boot) "}checks ${r.subscription.schedule} ${r.sysupdate ? "through systemd-sysupdate" : "with ext's own verified pull (gpgv + sha256)"}; 'sudo ext pull' checks now`,
  ];
}

export async function unsubscribe(ctx: CommandContext): Promise<{ removed: string[] }> {
  requireRoot(ctx);
  return withStateLock(ctx, async () => {
    // Stopped before its unit goes: a loaded timer whose file was removed would go on firing.
    const stopped = (await pathExists(join(unitDir(ctx.layout), "ext-pull.timer"))) ? await tellSystemd(ctx.layout, [["stop", "ext-pull.timer"]]) : null;
    const removed = await unsubscribeFrom(ctx.layout);
    if (removed.length > 0) await tellSystemd(ctx.layout, [["daemon-reload"]]);
    for (const f of stopped ?? []) ctx.reporter.warn(`'${f}' failed; the timer's unit is gone, so it stops at the next boot`);
    return { removed };
  });
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
