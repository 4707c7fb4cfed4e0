import type { GenerationRecord } from "./record.js";

export interface GenerationDiff {
  added: { name: string; version: string }[];
  removed: { name: string; version: string }[];
  changed: { name: string; from: string; to: string }[];
  /** Closure size difference in bytes (NAR sizes). */
  sizeDelta: number;
}

export function diffGenerations(before: GenerationRecord | null, after: GenerationRecord | null): GenerationDiff {
  const a = new Map((before?.packages ?? []).map((p) => [p.name, p]));
  const b = new Map((after?.packages ?? []).map((p) => [p.name, p]));
  const added = [...b.values()].filter((p) => !a.has(p.name)).map((p) => ({ name: p.name, version: p.version }));
  const removed = [...a.values()].filter((p) => !b.has(p.name)).map((p) => ({ name: p.name, version: p.version }));
  const changed = [...b.values()]
    .filter((p) => a.has(p.name) && a.get(p.name)!.version !== p.version)
    .map((p) => ({ name: p.name, from: a.get(p.name)!.version, to: p.version }));
  return { added, removed, changed, sizeDelta: (after?.closure.narSize ?? 0) - (before?.closure.narSize ?? 0) };
}

export function describeDiff(d: GenerationDiff): string {
  const parts = [
    ...d.added.map((p) => `+${p.name} ${p.version}`),
    ...d.removed.map((p) => `-${p.name}`),
    ...d.changed.map((p) => `${p.name} ${p.from} → ${p.to}`),
  ];
  return parts.length > 0 ? parts.join(", ") : "no package changes";
}
