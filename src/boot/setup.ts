import { realpath } from "node:fs/promises";
import { join } from "node:path";
import type { Layout } from "../base/layout.js";
import { readCurrentGeneration } from "../generations/store.js";
import { tellSystemd } from "./systemctl.js";
import {
  DEFAULT_BOOT_TRIES,
  emptyBootState,
  readBootState,
  readGoodBackup,
  setAsideDamaged,
  writeBootState,
} from "./state.js";
import { BOOT_SCRIPT, installBootScript, installUnits, uninstallUnits, type UnitChange } from "./units.js";

// `ext setup`: install the boot units and create the boot state. Running it again changes only
// what differs (a new --boot-tries, a new ext path).

export interface SetupOptions {
  extensionName: string;
  /** The command that runs ext on the target system (ExecStart= prefix). */
  extCommand: string;
  tries?: number;
  now?: Date;
  /** The units run the shell selector (BOOT_SCRIPT), which runs the ext inside ext's own image. */
  fromImage?: boolean;
}

export interface SetupResult {
  units: UnitChange[];
  /** The shell selector was written (undefined: not used). */
  bootScript?: { path: string; written: boolean };
  bootState: "created" | "updated" | "unchanged" | "recreated";
  tries: number;
  /** The current generation, adopted as good when the boot state was created. */
  adopted: number | null;
  reloaded: boolean;
  warnings: string[];
}

export async function setupBoot(l: Layout, opts: SetupOptions): Promise<SetupResult> {
  const warnings = opts.fromImage ? [] : await checkExtCommand(l, opts.extCommand);
  // The script first: a unit that names it must never find it missing.
  const bootScript = opts.fromImage ? { path: join(l.root, BOOT_SCRIPT), written: await installBootScript(l) } : undefined;
  const units = await installUnits(l, opts.extCommand);

  const read = await readBootState(l);
  let bootState: SetupResult["bootState"] = "unchanged";
  let adopted: number | null = null;
  let tries: number;
  if (read.kind === "ok") {
    tries = opts.tries ?? read.state.tries;
    if (tries !== read.state.tries) {
      await writeBootState(l, { ...read.state, tries }, read.state.good);
      bootState = "updated";
    }
  } else {
    // The running set is the baseline: it is adopted as good, so a later generation that fails
    // its boots has somewhere to go back to. (A good list kept in the backup file is kept.)
    const backup = await readGoodBackup(l);
    tries = opts.tries ?? backup.tries ?? DEFAULT_BOOT_TRIES;
    const state = emptyBootState(opts.extensionName, tries);
    state.good = backup.good;
    const current = await readCurrentGeneration(l).catch(() => null);
    if (current?.image) {
      adopted = current.id;
      state.good.push({ generation: current.id, image: current.image.sha256, blessedAt: (opts.now ?? new Date()).toISOString(), adopted: true });
    }
    if (read.kind === "corrupt") {
      await setAsideDamaged(l);
      warnings.push(`the boot state file ${read.reason}; it was set aside as boot.json.damaged and made anew`);
    }
    await writeBootState(l, state);
    bootState = read.kind === "corrupt" ? "recreated" : "created";
  }

  let reloaded = false;
  if (units.some((u) => u.written || u.linked)) {
    const failed = await tellSystemd(l, [["daemon-reload"]]);
    reloaded = failed !== null && failed.length === 0;
    if (failed?.length) warnings.push("'systemctl daemon-reload' failed; the units take effect at the next boot");
  }
  return { units, ...(bootScript ? { bootScript } : {}), bootState, tries, adopted, reloaded, warnings };
}

export async function unsetupBoot(l: Layout): Promise<string[]> {
  const removed = await uninstallUnits(l);
  if (removed.length > 0) await tellSystemd(l, [["daemon-reload"]]);
  return removed;
}

/** The units run before any extension is merged: the program they start must be on the base
 *  system, not inside an ext image (/usr/store), and must exist in the target root. */
async function checkExtCommand(l: Layout, command: string): Promise<string[]> {
  const warnings: string[] = [];
  const first = /^"((?:[^"\\]|\\.)*)"|^(\S+)/.exec(command.trim());
  const program = first ? (first[1] ?? first[2] ?? "") : "";
  if (!program.startsWith("/")) {
    warnings.push(`the unit command '${program}' is not an absolute path; systemd will search its own PATH for it`);
    return warnings;
  }
  const inRoot = join(l.root, program);
  const real = await realpath(inRoot).catch(() => undefined);
  if (!real) warnings.push(`${program} does not exist${l.root === "/" ? "" : ` under ${l.root}`}; the boot units will fail until it does`);
  else if (real.slice(l.root === "/" ? 0 : l.root.length).startsWith("/usr/store/")) {
    warnings.push(`${program} comes from an ext image (/usr/store), which is not merged yet when ext-boot-select.service runs; use --from-image (the units then run ext from its image), or --ext-command with a program of the base system`);
  }
  return warnings;
}

