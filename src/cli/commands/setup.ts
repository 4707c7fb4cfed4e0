import type { CommandContext } from "../context.js";
import { asRoot, withStateLock } from "../context.js";
import { DEFAULT_EXTENSION_NAME } from "../context.js";
import { setupBoot, unsetupBoot, type SetupResult } from "../../boot/setup.js";
import { BOOT_SCRIPT_COMMAND, defaultExtCommand, quoteExecArg, runsFromImage } from "../../boot/units.js";
import { UsageError } from "../../errors.js";
import { AUTO_UPGRADE_OFF, checkSchedule, installAutoUpgrade, removeAutoUpgrade, type AutoUpgradeChange } from "../../fleet/auto-upgrade.js";
import { tellSystemd } from "../../boot/systemctl.js";

// `ext setup`: install and enable the boot units (ext-boot-select.service before
// systemd-sysext.service, ext-boot-bless.service after boot-complete.target) and create the boot
// state. Idempotent; `--root DIR` installs into another system's tree. `--remove` takes them out.

export interface SetupCommandOptions {
  bootTries?: number;
  extCommand?: string;
  remove?: boolean;
  /** Run the ext inside ext's own image at boot (also when not set but this ext runs from one). */
  fromImage?: boolean;
  /** An OnCalendar= schedule for ext-upgrade.timer (daily, weekly, …), or "off" to remove it. */
  autoUpgrade?: string;
}

/** What --auto-upgrade did: the timer and service written and enabled, or taken out. */
export type AutoUpgradeSetup =
  | { action: "on"; schedule: string; units: AutoUpgradeChange[]; wantsLink: string; linked: boolean }
  | { action: "off"; removed: string[] };

export type SetupCommandResult = (SetupResult & { action: "install"; extCommand: string; autoUpgrade?: AutoUpgradeSetup }) | { action: "remove"; removed: string[] };

export async function setup(ctx: CommandContext, opts: SetupCommandOptions): Promise<SetupCommandResult> {
  if (ctx.layout.root === "/") {
    await asRoot(ctx, opts.remove ? "removing the boot units" : "installing the boot units", [
      "setup",
      ...(opts.bootTries !== undefined ? ["--boot-tries", String(opts.bootTries)] : []),
      ...(opts.extCommand !== undefined ? ["--ext-command", opts.extCommand] : []),
      ...(opts.remove ? ["--remove"] : []),
      ...(opts.fromImage ? ["--from-image"] : []),
      ...(opts.autoUpgrade !== undefined ? ["--auto-upgrade", opts.autoUpgrade] : []),
    ]);
  }
  if (opts.remove && opts.autoUpgrade !== undefined) throw new UsageError("--remove takes out the auto-upgrade timer too; it takes no --auto-upgrade", { hint: "'ext setup --auto-upgrade off' removes only the timer" });
  const schedule = opts.autoUpgrade === undefined || opts.autoUpgrade === AUTO_UPGRADE_OFF ? opts.autoUpgrade : checkSchedule(opts.autoUpgrade, "--auto-upgrade");
  if (opts.fromImage && opts.extCommand !== undefined) {
    throw new UsageError("--from-image and --ext-command exclude each other", { hint: "--from-image runs the ext of ext's own image; --ext-command names a program of the base system" });
  }
  if (opts.remove) {
    return withStateLock(ctx, async () => {
      const auto = await removeAutoUpgrade(ctx.layout);
      const removed = [...(await unsetupBoot(ctx.layout)), ...auto];
      if (auto.length > 0) await reload(ctx, [], "stop");
      return { action: "remove", removed };
    });
  }
  // An ext that lives only in its image (or --from-image): the shell selector, which runs that ext.
  const fromImage = opts.fromImage === true || (opts.extCommand === undefined && runsFromImage());
  const base = fromImage ? BOOT_SCRIPT_COMMAND : opts.extCommand ?? defaultExtCommand();
  const extCommand = ctx.extensionName === DEFAULT_EXTENSION_NAME ? base : `${base} --name ${quoteExecArg(ctx.extensionName)}`;
  return withStateLock(ctx, async () => {
    const result = await setupBoot(ctx.layout, {
      extensionName: ctx.extensionName,
      extCommand,
      fromImage,
      ...(opts.bootTries !== undefined ? { tries: opts.bootTries } : {}),
    });
    let autoUpgrade: AutoUpgradeSetup | undefined;
    if (schedule === AUTO_UPGRADE_OFF) {
      const removed = await removeAutoUpgrade(ctx.layout);
      autoUpgrade = { action: "off", removed };
      if (removed.length > 0) await reload(ctx, result.warnings, "stop");
    } else if (schedule !== undefined) {
      // The service runs the base system's ext, as ext-pull.service does: not the boot selector.
      const command = ctx.extensionName === DEFAULT_EXTENSION_NAME ? opts.extCommand ?? defaultExtCommand() : `${opts.extCommand ?? defaultExtCommand()} --name ${quoteExecArg(ctx.extensionName)}`;
      const installed = await installAutoUpgrade(ctx.layout, command, schedule);
      autoUpgrade = { action: "on", ...installed };
      if (installed.linked || installed.units.some((u) => u.written)) await reload(ctx, result.warnings, "restart");
    }
    for (const w of result.warnings) ctx.reporter.warn(w);
    return { action: "install", extCommand, ...result, ...(autoUpgrade ? { autoUpgrade } : {}) };
  });
}

/** On a running systemd (not under --root): read the changed units and start (or stop) the timer,
 *  what `systemctl enable --now` would do; elsewhere the links take effect at the next boot. */
async function reload(ctx: CommandContext, warnings: string[], timer: "restart" | "stop"): Promise<void> {
  for (const failed of (await tellSystemd(ctx.layout, [["daemon-reload"], [timer, "ext-upgrade.timer"]])) ?? []) {
    warnings.push(`'${failed}' failed; the timer takes effect at the next boot`);
  }
}

export function formatSetup(r: SetupCommandResult): string[] {
  if (r.action === "remove") {
    return r.removed.length ? r.removed.map((p) => `removed ${p}`) : ["the boot units were not installed"];
  }
  const lines = r.bootScript ? [`boot selector: ${r.bootScript.written ? "written" : "unchanged"}  (${r.bootScript.path}: runs the ext of ext's own image)`] : [];
  lines.push(...r.units.map((u) => `${u.unit}: ${u.written ? "written" : "unchanged"}${u.linked ? ", enabled" : ", already enabled"}  (${u.path})`));
  const state = {
    created: `boot state created${r.adopted !== null ? `: generation ${r.adopted} (current) adopted as good` : ""}`,
    recreated: `boot state made anew${r.adopted !== null ? `: generation ${r.adopted} (current) adopted as good` : ""}`,
    updated: "boot state updated",
    unchanged: "boot state unchanged",
  }[r.bootState];
  lines.push(`${state}; a newly activated generation gets ${r.tries} boot ${r.tries === 1 ? "try" : "tries"}`);
  if (r.reloaded) lines.push("systemd reloaded");
  const a = r.autoUpgrade;
  if (a?.action === "on") {
    lines.push(...a.units.map((u) => `${u.unit}: ${u.written ? "written" : "unchanged"}  (${u.path})`));
    lines.push(`auto-upgrade: ${a.schedule}${a.linked ? ", enabled" : ", already enabled"} (ext-upgrade.timer runs 'ext upgrade --auto'; 'ext status' shows the last run)`);
  } else if (a?.action === "off") {
    lines.push(...(a.removed.length ? a.removed.map((p) => `removed ${p}`) : ["auto-upgrade was off"]));
  }
  return lines;
}
