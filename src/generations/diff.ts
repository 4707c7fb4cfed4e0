import type { GenerationRecord } from "./record.js";

export interface GenerationDiff {
  added: { name: string; version: string }[];
  removed: { name: string; version: string }[];
  changed: { name: string; from: string; to: string }[];
  /** Same version, other store paths (another revision of the source, other outputs). */
  rebuilt: { name: string; version: string }[];
  /** Other settings: the priority in file collisions, shadowing the host allowed. */
  settings: SettingChange[];
  /** Closure size difference in bytes (NAR sizes). */
  sizeDelta: number;
}

export interface SettingChange {
  name: string;
  /** Absent priorities are 0, as the farm treats them. */
  priority?: { from: number; to: number };
  allowShadow?: { from: boolean; to: boolean };
}

export function diffGenerations(before: GenerationRecord | null, after: GenerationRecord | null): GenerationDiff {
  const a = new Map((before?.packages ?? []).map((p) => [p.name, p]));
  const b = new Map((after?.packages ?? []).map((p) => [p.name, p]));
  const added = [...b.values()].filter((p) => !a.has(p.name)).map((p) => ({ name: p.name, version: p.version }));
  const removed = [...a.values()].filter((p) => !b.has(p.name)).map((p) => ({ name: p.name, version: p.version }));
  const changed: GenerationDiff["changed"] = [];
  const rebuilt: GenerationDiff["rebuilt"] = [];
  const settings: SettingChange[] = [];
  for (const p of b.values()) {
    const old = a.get(p.name);
    if (!old) continue;
    if (old.version !== p.version) changed.push({ name: p.name, from: old.version, to: p.version });
    else if (!samePaths(old.outPaths, p.outPaths)) rebuilt.push({ name: p.name, version: p.version });
    const setting: SettingChange = { name: p.name };
    if ((old.priority ?? 0) !== (p.priority ?? 0)) setting.priority = { from: old.priority ?? 0, to: p.priority ?? 0 };
    if (!!old.allowShadow !== !!p.allowShadow) setting.allowShadow = { from: !!old.allowShadow, to: !!p.allowShadow };
    if (setting.priority || setting.allowShadow) settings.push(setting);
  }
  return { added, removed, changed, rebuilt, settings, sizeDelta: (after?.closure.narSize ?? 0) - (before?.closure.narSize ?? 0) };
}

function samePaths(a: Record<string, string>, b: Record<string, string>): boolean {
  return JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
}

export function describeDiff(d: GenerationDiff): string {
  const parts = [
    ...d.added.map((p) => `+${p.name} ${p.version}`),
    ...d.removed.map((p) => `-${p.name}`),
    ...d.changed.map((p) => `${p.name} ${p.from} → ${p.to}`),
    ...d.rebuilt.map((p) => `${p.name} ${p.version} rebuilt`),
    ...d.settings.map(describeSetting),
  ];
  return parts.length > 0 ? parts.join(", ") : "no package changes";
}

function describeSetting(c: SettingChange): string {
  const parts: string[] = [];
  if (c.priority) parts.push(`priority ${c.priority.from} → ${c.priority.to}`);
  if (c.allowShadow) parts.push(c.allowShadow.to ? "may shadow the host" : "no longer shadows the host");
  return `${c.name} ${parts.join(", ")}`;
}
