import { readFile, readlink, mkdir, symlink, unlink, rename, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { packagePath } from "../paths.js";
import { errnoCode } from "../errors.js";
import { fsyncDir, tempName, writeFileAtomic } from "../fsutil.js";
import type { Layout } from "../base/layout.js";

// The two units `ext setup` installs into <root>/etc/systemd/system from templates/, with the
// command that runs ext filled in, and enables them the way `systemctl enable` would (a symlink in
// the [Install] target's .wants/ directory), which needs no running systemd and works under --root.

export const UNIT_NAMES = ["ext-boot-select.service", "ext-boot-bless.service"] as const;
export type UnitName = (typeof UNIT_NAMES)[number];

const WANTED_BY: Record<UnitName, string> = {
  "ext-boot-select.service": "sysinit.target",
  "ext-boot-bless.service": "multi-user.target",
};

export function unitDir(l: Layout): string {
  return join(l.root, "etc/systemd/system");
}

export function templatesDir(): string {
  return packagePath("templates");
}

/** The shell selector for an ext that lives only in its own image (templates/ext-boot.sh), outside
 *  /usr so that it is there before anything is merged, beside the units that run it. */
export const BOOT_SCRIPT = "/etc/ext/boot.sh";
export const BOOT_SCRIPT_COMMAND = `/bin/sh ${BOOT_SCRIPT}`;

/** This ext runs from an ext image (/usr/store/…, ext managing itself): the base system has no ext. */
export function runsFromImage(): boolean {
  return packagePath().startsWith("/usr/store/");
}

/** Writes the shell selector (idempotent); true when it was written. */
export async function installBootScript(l: Layout): Promise<boolean> {
  const path = join(l.root, BOOT_SCRIPT);
  const content = await readFile(join(templatesDir(), "ext-boot.sh"), "utf8");
  if ((await readFile(path, "utf8").catch(() => undefined)) === content) return false;
  await writeFileAtomic(path, content, { mode: 0o755 });
  return true;
}

/** The ext command line a unit runs: this Node and this ext's bin/ext.js. */
export function defaultExtCommand(): string {
  return [process.execPath, packagePath("bin", "ext.js")].map(quoteExecArg).join(" ");
}

/** Quotes one word for ExecStart= (systemd.service(5): quotes, backslash escapes, % and $ doubled). */
export function quoteExecArg(word: string): string {
  const escaped = word.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export async function renderUnit(unit: UnitName, extCommand: string): Promise<string> {
  const template = await readFile(join(templatesDir(), unit), "utf8");
  if (!template.includes("@EXT@")) throw new Error(`template ${unit} has no @EXT@ placeholder`);
  return template.replace(/@EXT@/g, extCommand);
}

export interface UnitChange {
  unit: UnitName;
  path: string;
  /** The file was written (absent or different before). */
  written: boolean;
  /** The enabling symlink. */
  wantsLink: string;
  linked: boolean;
}

/** Idempotent: files and links that are already right are left alone. */
export async function installUnits(l: Layout, extCommand: string): Promise<UnitChange[]> {
  const dir = unitDir(l);
  const out: UnitChange[] = [];
  for (const unit of UNIT_NAMES) {
    const path = join(dir, unit);
    const written = await writeUnitFile(path, await renderUnit(unit, extCommand));
    out.push({ unit, path, written, ...(await enableUnit(dir, unit, WANTED_BY[unit])) });
  }
  return out;
}

/** Writes a unit file unless it already has this content; true when it was written. */
export async function writeUnitFile(path: string, content: string): Promise<boolean> {
  const before = await readFile(path, "utf8").catch(() => undefined);
  if (before === content) return false;
  await writeFileAtomic(path, content);
  return true;
}

/** What `systemctl enable` does for a unit with WantedBy=target: a symlink in target.wants/. */
export async function enableUnit(dir: string, unit: string, wantedBy: string): Promise<{ wantsLink: string; linked: boolean }> {
  const wantsDir = join(dir, `${wantedBy}.wants`);
  const wantsLink = join(wantsDir, unit);
  const target = `/etc/systemd/system/${unit}`;
  const existing = await readlink(wantsLink).catch(() => undefined);
  const linked = existing !== target;
  if (linked) {
    await mkdir(wantsDir, { recursive: true });
    const tmp = tempName(wantsLink);
    await symlink(target, tmp);
    await rename(tmp, wantsLink);
    await fsyncDir(wantsDir);
  }
  return { wantsLink, linked };
}

/** Removes the units and their enabling links; returns what was removed. */
export async function uninstallUnits(l: Layout): Promise<string[]> {
  const dir = unitDir(l);
  const removed: string[] = [];
  for (const unit of UNIT_NAMES) {
    const wantsDir = join(dir, `${WANTED_BY[unit]}.wants`);
    for (const p of [join(wantsDir, unit), join(dir, unit)]) {
      try {
        await unlink(p);
        removed.push(p);
      } catch (e) {
        if (errnoCode(e) !== "ENOENT") throw e;
      }
    }
    await rmdir(wantsDir).catch(() => {});
  }
  const script = join(l.root, BOOT_SCRIPT);
  try {
    await unlink(script);
    removed.push(script);
    await rmdir(join(script, "..")).catch(() => {});
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
  }
  return removed;
}
