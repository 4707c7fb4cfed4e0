import type { CommandContext } from "../context.js";
import { listGenerations, readCurrent } from "../../generations/store.js";
import { diffGenerations, describeDiff, type GenerationDiff } from "../../generations/diff.js";
import { formatBytes, formatSignedBytes, table } from "../output.js";
import { formatBootLabel, generationBootLabels, type GenerationBootLabel } from "../../boot/report.js";
import { readBootStateIfValid } from "../../boot/state.js";

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
  /** Boot state (ext setup): good, pending with tries left, or reverted (when and why); null: none. */
  boot: GenerationBootLabel | null;
}

export async function generations(ctx: CommandContext): Promise<GenerationEntry[]> {
  const records = await listGenerations(ctx.layout);
  const current = await readCurrent(ctx.layout);
  const byId = new Map(records.map((r) => [r.id, r]));
  const bootLabels = generationBootLabels(await readBootStateIfValid(ctx.layout), records.map((r) => ({ id: r.id, image: r.image?.sha256 ?? null })));
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
    boot: bootLabels.get(r.id) ?? null,
  }));
}

export function formatGenerations(entries: GenerationEntry[]): string[] {
  if (entries.length === 0) return ["no generations yet"];
  // The BOOT column (good / pending (N tries left) / reverted) only where ext setup made a boot state.
  const boot = entries.some((g) => g.boot !== null);
  const lines = table([
    ["", "ID", "DATE", "PACKAGES", "SIZE", ...(boot ? ["BOOT"] : []), "CHANGES"],
    ...entries.map((g) => [
      g.current ? "*" : "",
      String(g.id),
      g.createdAt.replace("T", " ").slice(0, 19),
      g.packages.join(" ") || "-",
      `${formatBytes(g.closureSize)} (${formatSignedBytes(g.changes.sizeDelta)})`,
      ...(boot ? [formatBootLabel(g.boot ?? undefined) || "-"] : []),
      describeDiff(g.changes),
    ]),
  ]);
  for (const g of entries) {
    if (g.boot?.state === "reverted") lines.push(`generation ${g.id} was reverted at boot: ${g.boot.reason ?? ""}`);
  }
  return lines;
}
