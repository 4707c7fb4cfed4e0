import type { CommandContext } from "../context.js";
import { asRoot, withStateLock } from "../context.js";
import { DEFAULT_EXTENSION_NAME } from "../context.js";
import { setupBoot, unsetupBoot, type SetupResult } from "../../boot/setup.js";
import { BOOT_SCRIPT_COMMAND, defaultExtCommand, quoteExecArg, runsFromImage } from "../../boot/units.js";
import { UsageError } from "../../errors.js";

// `ext setup`: install and enable the boot units (ext-boot-select.service before
// systemd-sysext.service, ext-boot-bless.service after boot-complete.target) and create the boot
// state. Idempotent; `--root DIR` installs into another system's tree. `--remove` takes them out.

export interface SetupCommandOptions {
  bootTries?: number;
  extCommand?: string;
  remove?: boolean;
  /** Run the ext inside ext's own image at boot (also when not set but this ext runs from one). */
  fromImage?: boolean;
}

export type SetupCommandResult = (SetupResult & { action: "install"; extCommand: string }) | { action: "remove"; removed: string[] };

export async function setup(ctx: CommandContext, opts: SetupCommandOptions): Promise<SetupCommandResult> {
  if (ctx.layout.root === "/") {
    await asRoot(ctx, opts.remove ? "removing the boot units" : "installing the boot units", [
      "setup",
      ...(opts.bootTries !== undefined ? ["--boot-tries", String(opts.bootTries)] : []),
      ...(opts.extCommand !== undefined ? ["--ext-command", opts.extCommand] : []),
      ...(opts.remove ? ["--remove"] : []),
      ...(opts.fromImage ? ["--from-image"] : []),
    ]);
  }
  if (opts.fromImage && opts.extCommand !== undefined) {
    throw new UsageError("--from-image and --ext-command exclude each other", { hint: "--from-image runs the ext of ext's own image; --ext-command names a program of the base system" });
  }
  if (opts.remove) return { action: "remove", removed: await unsetupBoot(ctx.layout) };
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
    for (const w of result.warnings) ctx.reporter.warn(w);
    return { action: "install", extCommand, ...result };
  });
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
  return lines;
}
