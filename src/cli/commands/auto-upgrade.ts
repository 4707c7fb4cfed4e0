import { requireRoot, withStateLock, type CommandContext } from "../context.js";
import type { TransactionResult } from "../transact.js";
import { readCurrentGeneration } from "../../generations/store.js";
import { readSubscription } from "../../fleet/subscription.js";
import { writeAutoRun, type AutoRun } from "../../fleet/auto-upgrade.js";
import type { PullResult } from "../../fleet/pull.js";
import { isExtError } from "../../errors.js";
import { pull, formatPull } from "./subscribe.js";
import type { UpgradeResult } from "./upgrade.js";

// `ext upgrade --auto`, what ext-upgrade.timer runs (ext setup --auto-upgrade WHEN; docs/fleet.md).
// One run under ext's lock from the first read to the last write: a person's `ext add` waits for it
// (or it for them). A machine with a subscription follows its publisher (`ext pull`): upgrading its
// packages from their Nix sources would leave the published set. Otherwise `ext upgrade`. Both do
// nothing when nothing changed — no transaction, so no refresh and no generation; only the record
// of this run (/var/lib/ext/auto-upgrade.json, for `ext status`) is written, failures included.

export interface AutoUpgradeResult {
  auto: AutoRun;
  upgrade: UpgradeResult | null;
  pull: PullResult<TransactionResult> | null;
}

export async function autoUpgrade(ctx: CommandContext, upgradeSet: (ctx: CommandContext) => Promise<UpgradeResult>): Promise<AutoUpgradeResult> {
  requireRoot(ctx);
  return withStateLock(ctx, async () => {
    const at = new Date().toISOString();
    const via: AutoRun["via"] = (await readSubscription(ctx.layout)) ? "pull" : "upgrade";
    try {
      let transaction: TransactionResult | null;
      let reason: string;
      let pulled: AutoUpgradeResult["pull"] = null;
      let upgraded: AutoUpgradeResult["upgrade"] = null;
      if (via === "pull") {
        pulled = await pull(ctx, {});
        transaction = pulled.transaction;
        reason = pulled.reason ?? "no new version";
      } else {
        upgraded = await upgradeSet(ctx);
        transaction = upgraded.transaction;
        reason = "everything is up to date";
      }
      const changed = transaction?.status === "done";
      const generation = changed ? transaction!.generation : (await readCurrentGeneration(ctx.layout))?.id ?? null;
      const auto: AutoRun = {
        at, via, result: changed ? "upgraded" : "up-to-date", generation,
        message: changed ? `generation ${generation} is active` : transaction?.reason ?? reason,
      };
      await writeAutoRun(ctx.layout, auto);
      return { auto, upgrade: upgraded, pull: pulled };
    } catch (e) {
      const message = isExtError(e) || e instanceof Error ? e.message : String(e);
      const generation = (await readCurrentGeneration(ctx.layout).catch(() => null))?.id ?? null;
      await writeAutoRun(ctx.layout, { at, via, result: "failed", generation, message }).catch(() => {});
      throw e;
    }
  });
}

export function formatAutoUpgradeRun(r: AutoUpgradeResult, formatUpgrade: (u: UpgradeResult) => string[]): string[] {
  const lines = r.pull ? formatPull(r.pull) : r.upgrade ? formatUpgrade(r.upgrade) : [];
  return [`auto-upgrade (${r.auto.via === "pull" ? "the subscription's check" : "ext upgrade"}): ${r.auto.result}`, ...lines];
}
