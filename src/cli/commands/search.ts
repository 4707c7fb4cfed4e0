import type { CommandContext } from "../context.js";
import { search as nixSearch, suggestAttributes, validateAttrPath } from "../../nix/index.js";
import { readCurrentGeneration } from "../../generations/store.js";
import { isExtError } from "../../errors.js";
import { table } from "../output.js";

// `ext search QUERY`: packages of the source whose name or description contains QUERY, through
// `nix search`. Read-only: no lock, no root. Nothing found is an answer (exit 0), with close names.

export interface SearchOptions {
  query: string;
  /** Show at most this many (0 = all). Human output defaults to 30, --json to all. */
  limit?: number;
}

export interface SearchHit {
  /** What to type after `ext add`. */
  attr: string;
  pname: string;
  version: string;
  description: string;
  /** Installed in the current generation under this name. */
  installed: boolean;
}

export interface SearchOutput {
  query: string;
  source: string;
  /** How many packages matched (results may hold fewer, see limit). */
  total: number;
  results: SearchHit[];
  /** Names close to the query when nothing matched ("did you mean"). */
  suggestions: string[];
}

export const HUMAN_LIMIT = 30;

export async function search(ctx: CommandContext, opts: SearchOptions): Promise<SearchOutput> {
  const query = opts.query.trim();
  ctx.reporter.phase("searching", `${ctx.source} for '${query}'`);
  const found = await nixSearch(ctx.nix, ctx.source, query);
  const installed = new Set((await readCurrentGeneration(ctx.layout).catch(() => null))?.packages.map((p) => p.attr) ?? []);
  const limit = opts.limit ?? (ctx.json ? 0 : HUMAN_LIMIT);
  const shown = limit === 0 ? found : found.slice(0, limit);
  return {
    query,
    source: ctx.source,
    total: found.length,
    results: shown.map((r) => ({ attr: r.attr, pname: r.pname, version: r.version, description: r.description, installed: installed.has(r.attr) })),
    suggestions: found.length === 0 ? await closeNames(ctx, query) : [],
  };
}

/** A query that could be a package name gets the same "did you mean" as a misspelled `ext add`. */
async function closeNames(ctx: CommandContext, query: string): Promise<string[]> {
  try {
    validateAttrPath(query);
  } catch {
    return [];
  }
  ctx.reporter.phase("looking for close names");
  try {
    return await suggestAttributes(ctx.nix, ctx.source, query);
  } catch (e) {
    // Suggestions are a courtesy; the search itself worked.
    if (isExtError(e)) return [];
    throw e;
  }
}

export function formatSearch(r: SearchOutput): string[] {
  if (r.total === 0) {
    const lines = [`no package in ${r.source} matches '${r.query}'`];
    if (r.suggestions.length > 0) lines.push(`did you mean: ${r.suggestions.join(", ")}?`);
    return lines;
  }
  const lines = table(r.results.map((h) => [h.attr, h.version, `${h.installed ? "[installed] " : ""}${h.description}`]));
  if (r.results.length < r.total) {
    lines.push(`… ${r.total - r.results.length} more (of ${r.total}); narrow the query, or show all with --limit 0`);
  }
  return lines;
}
