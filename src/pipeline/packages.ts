import { realise } from "../nix/index.js";
import type { PackageRequest, NixContext } from "../nix/types.js";
import type { InstalledPackage } from "../generations/record.js";
import type { Reporter } from "../base/reporter.js";

/** A package as the user asks for it (command line or tools.json entry). */
export interface PackageSpec {
  name: string;
  attr?: string;
  source?: string;
  outputs?: string[];
  priority?: number;
  allowShadow?: boolean;
  /** nixpkgs may evaluate it although its license is unfree. */
  allowUnfree?: boolean;
  /** It replaces one of ext's own packages (a bootstrap image's ext, nodejs or nix), and is one too. */
  self?: boolean;
}

/** What Nix is asked for a spec: its attribute (default: its name) from its source (default: the
 *  command's). Priority and shadowing are ext's, not Nix's: they stay with the spec. */
export function requestOf(spec: PackageSpec, defaultSource: string): PackageRequest {
  return {
    name: spec.name,
    attr: spec.attr ?? spec.name,
    source: spec.source ?? defaultSource,
    ...(spec.outputs ? { outputs: spec.outputs } : {}),
    ...(spec.allowUnfree ? { allowUnfree: true } : {}),
  };
}

/** The first phase of every image: Nix evaluates and builds (or substitutes) the packages, in one
 *  call for all of them, and each comes back with its store paths and ext's own settings. */
export async function resolvePackages(nix: NixContext, specs: readonly PackageSpec[], defaultSource: string, reporter: Reporter): Promise<InstalledPackage[]> {
  if (specs.length === 0) return [];
  const requests = specs.map((s) => requestOf(s, defaultSource));
  reporter.phase("building", requests.map((r) => r.name).join(", "));
  const resolved = await realise(nix, requests);
  const bySpec = new Map(specs.map((s) => [s.name, s]));
  return resolved.map((r) => withSettingsOf(r, bySpec.get(r.name)));
}

/** A resolved package with ext's own settings from the spec it was asked for by. */
export function withSettingsOf<P extends object>(p: P, spec: PackageSpec | undefined): P & Pick<PackageSpec, "priority" | "allowShadow" | "self"> {
  return {
    ...p,
    ...(spec?.priority !== undefined ? { priority: spec.priority } : {}),
    ...(spec?.allowShadow ? { allowShadow: true } : {}),
    ...(spec?.self ? { self: true } : {}),
  };
}

/** The order a set's packages are recorded and its farm is made in, by `ext add` and `ext build`
 *  alike: one order, so the same set gives the same image. */
export function inFarmOrder<P extends { name: string }>(packages: readonly P[]): P[] {
  return [...packages].sort((a, b) => a.name.localeCompare(b.name));
}
