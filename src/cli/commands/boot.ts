import type { CommandContext } from "../context.js";
import { requireRoot } from "../context.js";
import { selectBoot, type SelectResult } from "../../boot/select.js";
import { blessBoot, type BlessResult } from "../../boot/bless.js";
import { recoverAtBoot } from "../../machine/recover.js";

// `ext boot select` and `ext boot bless`: what the units installed by `ext setup` run at boot.
// Local state only (no Nix, no network). --cmdline and --boot-id (or $EXT_BOOT_CMDLINE and
// $EXT_BOOT_ID) replace /proc/cmdline and the kernel's boot id, for tests and for trying things
// under --root.

export interface BootCommandOptions {
  step: "select" | "bless";
  cmdline?: string;
  bootId?: string;
}

export type BootCommandResult = ({ step: "select" } & SelectResult) | ({ step: "bless" } & BlessResult);

export async function boot(ctx: CommandContext, opts: BootCommandOptions): Promise<BootCommandResult> {
  if (ctx.layout.root === "/") requireRoot(ctx);
  const bootId = opts.bootId ?? ctx.boot?.id;
  const cmdline = opts.cmdline ?? ctx.boot?.cmdline;
  const ids = bootId !== undefined ? { bootId } : {};
  if (opts.step === "select") {
    const r = await selectBoot(ctx.layout, { extensionName: ctx.extensionName, recover: recoverAtBoot, ...ids, ...(cmdline !== undefined ? { cmdline } : {}) });
    return { step: "select", ...r };
  }
  return { step: "bless", ...(await blessBoot(ctx.layout, ids)) };
}

export function formatBoot(r: BootCommandResult): string[] {
  if (r.step === "bless") return [r.message];
  const what = r.generation === null ? "no ext generation" : `generation ${r.generation}`;
  const lines = [`this boot: ${what} (${r.how}${r.triesLeft !== undefined ? `, ${r.triesLeft} ${r.triesLeft === 1 ? "try" : "tries"} left after it` : ""})`];
  for (const m of r.messages) lines.push(`  ${m}`);
  return lines;
}
