import type { NixContext } from "./types.js";
import { nixCommand } from "./command.js";
import { classifyNixStderr, nixFailed, sourceError } from "./errors.js";
import { parseAttrNames } from "./parse.js";
import { suggest } from "./suggest.js";
import { installable, validateAttrPath, validateFlakeRef, validateSystem } from "./validate.js";

// The package names a source offers, to suggest close matches for a mistyped one. A flake installable
// `src#x` means `packages.<system>.x` or `legacyPackages.<system>.x` (nixpkgs only has the latter),
// so both sets are listed and merged.

// Constant function text: a derivation is itself an attribute set, but its attributes are not packages.
const NAMES_EXPR = `s: if builtins.isAttrs s && (s.type or null) != "derivation" then builtins.attrNames s else [ ]`;

/** Attribute names directly under `parent` (`""` = the top level; `python3Packages` = inside it). */
export async function listAttributes(ctx: NixContext, source: string, parent = ""): Promise<string[]> {
  const src = validateFlakeRef(source);
  validateSystem(ctx.system);
  const suffix = parent === "" ? "" : `.${validateAttrPath(parent).join(".")}`;
  const sets = ["packages", "legacyPackages"];
  const results = await Promise.all(sets.map(async (set) => {
    const result = await nixCommand(ctx, ["eval", "--json", installable(src, `${set}.${ctx.system}${suffix}`), "--apply", NAMES_EXPR], { log: false });
    if (result.exitCode === 0) return { names: parseAttrNames(result.stdout) };
    return { failure: classifyNixStderr(result.stderr), result };
  }));
  const names = new Set<string>();
  let found = false;
  for (const r of results) {
    if ("names" in r && r.names) {
      found = true;
      for (const n of r.names) names.add(n);
    }
  }
  if (!found) {
    for (const r of results) {
      if (!("failure" in r) || !r.failure) continue;
      const fromSource = sourceError(r.failure, src);
      if (fromSource) throw fromSource;
      if (r.failure.kind !== "unknown-attribute") throw nixFailed(`listing the packages of ${src}`, r.result.command, r.result.stderr);
    }
  }
  return [...names].sort();
}

/** Close matches for an unknown (possibly dotted) attribute path, as full attribute paths. Looks in
 *  the parent set first (`python3Packages.requestz` → `python3Packages.requests`), then at the top. */
export async function suggestAttributes(ctx: NixContext, source: string, attr: string): Promise<string[]> {
  const segments = validateAttrPath(attr);
  const last = segments[segments.length - 1] ?? attr;
  if (segments.length > 1) {
    const parent = segments.slice(0, -1).join(".");
    const siblings = await listAttributes(ctx, source, parent).catch(() => []);
    if (siblings.length > 0) return suggest(last, siblings).map((s) => `${parent}.${s}`);
  }
  const top = await listAttributes(ctx, source);
  if (segments.length > 1) {
    const first = segments[0] ?? "";
    if (!top.includes(first)) return suggest(first, top).map((s) => [s, ...segments.slice(1)].join("."));
    return [];
  }
  return suggest(last, top);
}
