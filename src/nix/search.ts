import type { NixContext, SearchResult } from "./types.js";
import { nixCommand } from "./command.js";
import { classifyNixStderr, nixFailed, sourceError } from "./errors.js";
import { parseSearchJson } from "./parse.js";
import { validateFlakeRef } from "./validate.js";

/** `nix search` takes a regular expression (POSIX extended in Nix 2.8, ECMAScript-compatible
 *  escapes in later versions); what the user types is searched literally. */
export function literalRegex(query: string): string {
  return query.replace(/[.[\]()*+?{}|^$\\]/g, "\\$&");
}

/** Packages whose name or description contains `query` (case-insensitive), best matches first. */
export async function search(ctx: NixContext, source: string, query: string): Promise<SearchResult[]> {
  const src = validateFlakeRef(source);
  const trimmed = query.trim();
  // Newer Nix refuses an empty pattern; '^' matches everything in every version.
  const pattern = trimmed === "" ? "^" : literalRegex(trimmed);
  // `--` so that a query starting with '-' stays a query.
  const result = await nixCommand(ctx, ["search", "--json", src, "--", pattern], { log: false });
  if (result.exitCode !== 0) {
    throw sourceError(classifyNixStderr(result.stderr), src) ?? nixFailed(`searching ${src}`, result.command, result.stderr);
  }
  return rankSearchResults(parseSearchJson(result.stdout), trimmed);
}

/** Exact names first, then names starting with the query, then names containing it, then the rest. */
export function rankSearchResults(results: SearchResult[], query: string): SearchResult[] {
  const q = query.toLowerCase();
  const rank = (r: SearchResult): number => {
    const attr = r.attr.toLowerCase();
    const last = attr.split(".").pop() ?? attr;
    const pname = r.pname.toLowerCase();
    if (q === "") return 0;
    if (last === q || pname === q) return 0;
    if (last.startsWith(q) || pname.startsWith(q)) return 1;
    if (attr.includes(q) || pname.includes(q)) return 2;
    return 3;
  };
  return [...results].sort((a, b) => rank(a) - rank(b) || a.attr.length - b.attr.length || (a.attr < b.attr ? -1 : a.attr > b.attr ? 1 : 0));
}
