import type { CommandContext } from "../context.js";
import { readCurrentGeneration } from "../../generations/store.js";
import { table } from "../output.js";

export interface ListEntry {
  name: string;
  version: string;
  attr: string;
  source: string;
  description?: string;
  outPaths: Record<string, string>;
}

/** Reads state without the lock: records are immutable and the pointer is replaced atomically. */
export async function list(ctx: CommandContext): Promise<ListEntry[]> {
  const current = await readCurrentGeneration(ctx.layout);
  return (current?.packages ?? []).map((p) => ({
    name: p.name,
    version: p.version,
    attr: p.attr,
    source: p.source,
    ...(p.description ? { description: p.description } : {}),
    outPaths: p.outPaths,
  }));
}

export function formatList(entries: ListEntry[]): string[] {
  if (entries.length === 0) return ["nothing installed (add something with 'ext add PKG')"];
  return table(entries.map((e) => [e.name, e.version, e.description ?? ""]));
}
