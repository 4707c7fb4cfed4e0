import { readFile, readlink, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Layout } from "../base/layout.js";
import { readStateFile, field, object, str, nullable, oneOf, id } from "../base/state-file.js";
import { UsageError, errnoCode } from "../errors.js";
import { writeJsonAtomic } from "../fsutil.js";
import { enableUnit, templatesDir, unitDir, writeUnitFile } from "../boot/units.js";

// `ext setup --auto-upgrade WHEN`: a timer (templates/ext-upgrade.timer) and a oneshot service
// (templates/ext-upgrade.service) that runs `ext upgrade --auto`. The timer file is the one record
// of the schedule (`ext status` reads OnCalendar= back from it, so an administrator's edit shows);
// the run itself writes the outcome of the last run to /var/lib/ext/auto-upgrade.json.

export const AUTO_UPGRADE_UNITS = ["ext-upgrade.service", "ext-upgrade.timer"] as const;
const WANTED_BY = "timers.target";

/** What --auto-upgrade takes besides an OnCalendar= expression: "off" removes the timer. */
export const AUTO_UPGRADE_OFF = "off";

export type AutoRunResult = "upgraded" | "up-to-date" | "failed";

/** The last `ext upgrade --auto` (the timer's run, or one by hand). */
export interface AutoRun {
  at: string;
  /** What the run did: the subscription's check, or an upgrade from the packages' sources. */
  via: "pull" | "upgrade";
  result: AutoRunResult;
  /** The generation the run made (upgraded) or left current. */
  generation: number | null;
  message: string;
}

export interface AutoUpgradeStatus {
  enabled: boolean;
  /** OnCalendar= of the installed timer (null: no timer). */
  schedule: string | null;
  lastRun: AutoRun | null;
}

export function autoRunFile(l: Layout): string {
  return join(l.stateDir, "auto-upgrade.json");
}

/** An OnCalendar= value ext writes into a unit: letters, digits and the calendar punctuation only,
 *  so nothing else can be smuggled into the timer file. */
export function checkSchedule(schedule: string, option: string): string {
  if (!/^[A-Za-z0-9 *:,./~-]{1,100}$/.test(schedule) || schedule.trim() === "") {
    throw new UsageError(`'${schedule}' is not an OnCalendar= schedule ext accepts (${option})`, { hint: "e.g. daily, weekly, hourly, 'Mon *-*-* 03:00', or off to remove the timer" });
  }
  return schedule.trim();
}

export interface AutoUpgradeChange {
  unit: (typeof AUTO_UPGRADE_UNITS)[number];
  path: string;
  written: boolean;
}

/** Writes both units (idempotent) and enables the timer. */
export async function installAutoUpgrade(l: Layout, extCommand: string, schedule: string): Promise<{ units: AutoUpgradeChange[]; wantsLink: string; linked: boolean; schedule: string }> {
  const units: AutoUpgradeChange[] = [];
  for (const unit of AUTO_UPGRADE_UNITS) {
    const path = join(unitDir(l), unit);
    const template = await readFile(join(templatesDir(), unit), "utf8");
    units.push({ unit, path, written: await writeUnitFile(path, template.replace(/@EXT@/g, extCommand).replace(/@SCHEDULE@/g, schedule)) });
  }
  return { units, ...(await enableUnit(unitDir(l), "ext-upgrade.timer", WANTED_BY)), schedule };
}

/** Removes the units, the enabling link and the last run's record; returns what was removed. */
export async function removeAutoUpgrade(l: Layout): Promise<string[]> {
  const wants = join(unitDir(l), `${WANTED_BY}.wants`);
  const removed: string[] = [];
  for (const p of [join(wants, "ext-upgrade.timer"), ...AUTO_UPGRADE_UNITS.map((u) => join(unitDir(l), u)), autoRunFile(l)]) {
    try {
      await unlink(p);
      removed.push(p);
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e;
    }
  }
  // The subscription's timer may still be in there.
  await rmdir(wants).catch(() => {});
  return removed;
}

export async function autoUpgradeStatus(l: Layout): Promise<AutoUpgradeStatus> {
  const timer = await readFile(join(unitDir(l), "ext-upgrade.timer"), "utf8").catch((e) => {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  });
  const schedule = timer === undefined ? null : /^OnCalendar=(.*)$/m.exec(timer)?.[1]?.trim() ?? null;
  const link = await readlink(join(unitDir(l), `${WANTED_BY}.wants`, "ext-upgrade.timer")).catch(() => undefined);
  return { enabled: timer !== undefined && link !== undefined, schedule, lastRun: (await readAutoRun(l)) ?? null };
}

function autoRunShape(value: unknown): AutoRun {
  const o = object(value, "");
  return {
    at: field(o, "", "at", str),
    via: field(o, "", "via", oneOf(["pull", "upgrade"] as const)),
    result: field(o, "", "result", oneOf(["upgraded", "up-to-date", "failed"] as const)),
    generation: field(o, "", "generation", nullable(id)),
    message: field(o, "", "message", str),
  };
}

export async function readAutoRun(l: Layout): Promise<AutoRun | undefined> {
  return readStateFile(autoRunFile(l), autoRunShape, `move it away (sudo mv ${autoRunFile(l)} /root/); the next 'ext upgrade --auto' writes it again`);
}

export async function writeAutoRun(l: Layout, run: AutoRun): Promise<void> {
  await writeJsonAtomic(autoRunFile(l), run);
}

export function formatAutoUpgrade(s: AutoUpgradeStatus): string[] {
  if (!s.enabled && s.schedule === null && s.lastRun === null) return ["auto-upgrade: off ('sudo ext setup --auto-upgrade daily' turns it on)"];
  const lines = [`auto-upgrade: ${s.enabled ? `on, ${s.schedule ?? "no OnCalendar="} (ext-upgrade.timer)` : s.schedule !== null ? `installed but not enabled (${s.schedule})` : "off"}`];
  const r = s.lastRun;
  lines.push(r ? `  last run:   ${r.at} ${r.result} (${r.via}): ${r.message}` : "  last run:   never ('sudo ext upgrade --auto' runs it now)");
  return lines;
}
