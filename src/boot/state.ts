import { readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode } from "../errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../fsutil.js";
import { imagePath, type Layout } from "../base/layout.js";

// The boot state (/var/lib/ext/boot.json): which generations reached a good boot, which one is on
// trial and how many boots it has left, what the selector chose at the last boot and why it went
// back. Written atomically (temp file, fsync, rename) by `ext setup`, the transaction (a newly
// activated generation becomes pending), the selector (before systemd-sysext.service) and bless.
//
// The list of good generations is also kept in a second file (boot.good.json), written before
// boot.json, so that a damaged or deleted boot.json still leaves the last good generation known.

export const BOOT_STATE_VERSION = 1;
export const DEFAULT_BOOT_TRIES = 3;
/** How many reverts and good entries are remembered. */
const HISTORY = 20;

/** A generation that reached a good boot (bless). The image is kept so that a generation whose
 *  record was gc'd can still be matched to another generation with the same image. */
export interface GoodEntry {
  generation: number;
  image: string | null;
  blessedAt: string;
  /** The boot that blessed it; absent when `ext setup` adopted the running set as good. */
  bootId?: string;
  adopted?: boolean;
}

/** A newly activated generation on trial: it is used for `triesLeft` more boots, then reverted
 *  unless a boot blesses it. */
export interface PendingEntry {
  generation: number;
  image: string | null;
  triesLeft: number;
  /** The tries it was given (for the message when it runs out). */
  tries?: number;
  since: string;
}

/** A persistent revert done at boot. `to: null` is the base system (no ext extension). */
export interface RevertEntry {
  from: number | null;
  to: number | null;
  at: string;
  reason: string;
  bootId: string;
}

/** How the selector chose this boot's set:
 *  current  — the current generation, already good;
 *  pending  — the current generation on trial (one try used);
 *  reverted — the current generation ran out of tries (or the state was lost): back to the last good;
 *  override — ext.generation=N|previous on the kernel command line, this boot only;
 *  disabled — ext.disable on the kernel command line: no ext extension this boot;
 *  none     — there is no generation to use. */
export type BootHow = "current" | "pending" | "reverted" | "override" | "disabled" | "none";

export interface BootRecord {
  bootId: string;
  at: string;
  generation: number | null;
  image: string | null;
  how: BootHow;
  /** For how = pending: the tries left after this boot. */
  triesLeft?: number;
  /** Set by bless when this boot was marked good (or, for one-boot choices, seen). */
  blessedAt?: string;
  messages: string[];
}

export interface BootState {
  version: number;
  extensionName: string;
  /** Boot tries a newly activated generation gets. */
  tries: number;
  pending: PendingEntry | null;
  /** Oldest first; the last usable entry is where a revert goes. */
  good: GoodEntry[];
  /** Oldest first. */
  reverts: RevertEntry[];
  lastBoot: BootRecord | null;
}

export function emptyBootState(extensionName: string, tries = DEFAULT_BOOT_TRIES): BootState {
  return { version: BOOT_STATE_VERSION, extensionName, tries, pending: null, good: [], reverts: [], lastBoot: null };
}

export function goodBackupFile(l: Layout): string {
  return l.bootStateFile.replace(/\.json$/, ".good.json");
}

export type ReadBootState =
  | { kind: "ok"; state: BootState }
  | { kind: "missing" }
  | { kind: "corrupt"; reason: string };

/** Reads boot.json without throwing on damage: the caller decides what is safe. */
export async function readBootState(l: Layout): Promise<ReadBootState> {
  let text: string;
  try {
    text = await readFile(l.bootStateFile, "utf8");
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return { kind: "missing" };
    return { kind: "corrupt", reason: `cannot be read (${errnoCode(e) ?? String(e)})` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: "corrupt", reason: "is not valid JSON" };
  }
  const problem = validate(parsed);
  if (problem) return { kind: "corrupt", reason: problem };
  return { kind: "ok", state: parsed as BootState };
}

/** Reads boot.json for display or for the transaction; undefined when absent or damaged. */
export async function readBootStateIfValid(l: Layout): Promise<BootState | undefined> {
  const r = await readBootState(l);
  return r.kind === "ok" ? r.state : undefined;
}

export async function writeBootState(l: Layout, state: BootState, previousGood?: GoodEntry[]): Promise<void> {
  const trimmed: BootState = {
    ...state,
    good: dedupeGood(state.good).slice(-HISTORY),
    reverts: state.reverts.slice(-HISTORY),
  };
  // The backup first: if we stop between the two writes, the backup is never behind boot.json.
  if (previousGood === undefined || JSON.stringify(previousGood) !== JSON.stringify(trimmed.good)) {
    await writeJsonAtomic(goodBackupFile(l), { version: BOOT_STATE_VERSION, tries: trimmed.tries, good: trimmed.good } satisfies GoodBackup);
  }
  await writeJsonAtomic(l.bootStateFile, trimmed);
  await writeFallback(l, trimmed.good);
}

/** For the shell selector of an ext that lives only in its image (templates/ext-boot.sh): the image
 *  of the newest good generation that is still there, one line a POSIX shell reads with `head`.
 *  Its ext runs the selection when the linked image's cannot. */
export function fallbackFile(l: Layout): string {
  return join(l.stateDir, "boot.fallback");
}

async function writeFallback(l: Layout, good: GoodEntry[]): Promise<void> {
  let image: string | undefined;
  for (const g of [...good].reverse()) {
    if (g.image === null) continue;
    if (await stat(imagePath(l, g.image)).then((s) => s.isFile(), () => false)) {
      image = g.image;
      break;
    }
  }
  const file = fallbackFile(l);
  const before = await readFile(file, "utf8").catch(() => undefined);
  if (image === undefined) {
    if (before !== undefined) await unlink(file).catch(() => {});
  } else if (before !== `${image}\n`) {
    await writeFileAtomic(file, `${image}\n`);
  }
}

export interface GoodBackup {
  version: number;
  tries?: number;
  good: GoodEntry[];
}

/** The good list (and the tries) from the backup file; an empty list when it is absent or damaged too. */
export async function readGoodBackup(l: Layout): Promise<GoodBackup> {
  try {
    const parsed = JSON.parse(await readFile(goodBackupFile(l), "utf8")) as { good?: unknown; tries?: unknown };
    return {
      version: BOOT_STATE_VERSION,
      ...(isInt(parsed.tries) && parsed.tries >= 1 ? { tries: parsed.tries } : {}),
      good: Array.isArray(parsed.good) ? parsed.good.filter(isGoodEntry) : [],
    };
  } catch {
    return { version: BOOT_STATE_VERSION, good: [] };
  }
}

/** Keeps a damaged boot.json beside it for inspection, so the fresh one does not destroy evidence. */
export async function setAsideDamaged(l: Layout): Promise<string | undefined> {
  const aside = `${l.bootStateFile}.damaged`;
  try {
    await rename(l.bootStateFile, aside);
    return aside;
  } catch {
    return undefined;
  }
}

function dedupeGood(good: GoodEntry[]): GoodEntry[] {
  // One entry per generation: the newest blessing wins its place at the end.
  const out: GoodEntry[] = [];
  for (const g of good) {
    const i = out.findIndex((o) => o.generation === g.generation);
    if (i >= 0) out.splice(i, 1);
    out.push(g);
  }
  return out;
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isIntOrNull = (v: unknown) => v === null || isInt(v);
const isStrOrNull = (v: unknown) => v === null || typeof v === "string";
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function isGoodEntry(v: unknown): v is GoodEntry {
  return isObj(v) && isInt(v["generation"]) && isStrOrNull(v["image"]) && typeof v["blessedAt"] === "string";
}

function validate(v: unknown): string | undefined {
  if (!isObj(v)) return "is not a JSON object";
  if (!isInt(v["version"])) return "has no version";
  if (v["version"] > BOOT_STATE_VERSION) return `was written by a newer ext (version ${v["version"]})`;
  if (typeof v["extensionName"] !== "string") return "has no extension name";
  if (!isInt(v["tries"]) || v["tries"] < 1) return "has no valid number of tries";
  const p = v["pending"];
  if (p !== null && !(isObj(p) && isInt(p["generation"]) && isStrOrNull(p["image"]) && isInt(p["triesLeft"]) && p["triesLeft"] >= 0)) {
    return "has a malformed pending entry";
  }
  if (!Array.isArray(v["good"]) || !v["good"].every(isGoodEntry)) return "has a malformed list of good generations";
  if (!Array.isArray(v["reverts"]) || !v["reverts"].every((r) => isObj(r) && isIntOrNull(r["from"]) && isIntOrNull(r["to"]) && typeof r["reason"] === "string")) {
    return "has a malformed list of reverts";
  }
  const b = v["lastBoot"];
  if (b !== null && !(isObj(b) && typeof b["bootId"] === "string" && isIntOrNull(b["generation"]) && typeof b["how"] === "string" && Array.isArray(b["messages"]))) {
    return "has a malformed last boot";
  }
  return undefined;
}
