import type { CommandContext } from "../context.js";
import { listGenerations, readCurrent } from "../../generations/store.js";
import { diffGenerations, describeDiff, type GenerationDiff } from "../../generations/diff.js";
import { formatBytes, formatSignedBytes, table } from "../output.js";

export interface GenerationEntry {
  id: number;
  current: boolean;
  createdAt: string;
  command: string;
  packages: string[];
  versions: Record<string, string>;
  closureSize: number;
  image: { sha256: string; size: number } | null;
  changes: GenerationDiff;
}

export async function generations(ctx: CommandContext): Promise<GenerationEntry[]> {
  const records = await listGenerations(ctx.layout);
  const current = await readCurrent(ctx.layout);
  const byId = new Map(records.map((r) => [r.id, r]));
  return records.map((r) => ({
    id: r.id,
    current: r.id === current,
    createdAt: r.createdAt,
    command: r.command,
    packages: r.packages.map((p) => p.name),
    versions: Object.fromEntries(r.packages.map((p) => [p.name, p.version])),
    closureSize: r.closure.narSize,
    image: r.image ? { sha256: r.image.sha256, size: r.image.size } : null,
    changes: diffGenerations(r.parent === null ? null : byId.get(r.parent) ?? null, r),
  }));
}

export function formatGenerations(entries: GenerationEntry[]): string[] {
  if (entries.length === 0) return ["no generations yet"];
  return table([
    ["", "ID", "DATE", "PACKAGES", "SIZE", "CHANGES"],
    ...entries.map((g) => [
      g.current ? "*" : "",
      String(g.id),
      g.createdAt.replace("T", " ").slice(0, 19),
      g.packages.join(" ") || "-",
      `${formatBytes(g.closureSize)} (${formatSignedBytes(g.changes.sizeDelta)})`,
      describeDiff(g.changes),
    ]),
  ]);
}
