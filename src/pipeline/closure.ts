import { closure as nixClosure } from "../nix/index.js";
import type { ClosureEntry, NixContext } from "../nix/types.js";
import type { InstalledPackage } from "../generations/record.js";
import type { Reporter } from "../base/reporter.js";

/** Every store path the packages need at run time: what the image holds. */
export async function closureOf(nix: NixContext, packages: readonly InstalledPackage[], reporter: Reporter): Promise<ClosureEntry[]> {
  const roots = packages.flatMap((p) => Object.values(p.outPaths));
  if (roots.length === 0) return [];
  // The count is the closure's, known once Nix has answered; the packages' own outputs are only
  // where it starts.
  reporter.phase("closure", `of ${packages.length} package${packages.length === 1 ? "" : "s"}`);
  const closure = await nixClosure(nix, roots);
  reporter.progress?.(closure.length, undefined, "store paths");
  return closure;
}
