import { realise, closure as nixClosure, ensurePaths } from "../../nix/index.js";
import type { InstalledPackage } from "../../generations/record.js";
import type { ClosureEntry, PackageRequest } from "../../nix/types.js";
import type { Plan, TxEnv } from "../types.js";

type BuildPlan = Extract<Plan, { kind: "build" }>;

/** resolve + realise: ask Nix for the new packages (built or substituted); make sure the kept
 *  ones' store paths are still present (a nix-collect-garbage may have removed them). */
export async function realiseStep(env: TxEnv, plan: BuildPlan): Promise<InstalledPackage[]> {
  const requests: PackageRequest[] = plan.resolve.map((spec) => ({
    name: spec.name,
    attr: spec.attr ?? spec.name,
    source: spec.source ?? env.source,
    ...(spec.outputs ? { outputs: spec.outputs } : {}),
    ...(spec.allowUnfree ? { allowUnfree: true } : {}),
  }));
  if (requests.length > 0) env.reporter.phase("building", requests.map((r) => r.name).join(", "));
  const resolved = requests.length > 0 ? await realise(env.nix, requests) : [];
  const keptPaths = plan.keep.flatMap((p) => Object.values(p.outPaths));
  if (keptPaths.length > 0) await ensurePaths(env.nix, keptPaths);
  const bySpec = new Map(plan.resolve.map((s) => [s.name, s]));
  const fresh: InstalledPackage[] = resolved.map((r) => {
    const spec = bySpec.get(r.name);
    return {
      ...r,
      ...(spec?.priority !== undefined ? { priority: spec.priority } : {}),
      ...(spec?.allowShadow ? { allowShadow: true } : {}),
    };
  });
  return [...plan.keep, ...fresh].sort((a, b) => a.name.localeCompare(b.name));
}

export async function closeStep(env: TxEnv, packages: InstalledPackage[]): Promise<ClosureEntry[]> {
  const roots = packages.flatMap((p) => Object.values(p.outPaths));
  if (roots.length === 0) return [];
  // The count is the closure's, known once Nix has answered; the packages' own outputs are only
  // where it starts.
  env.reporter.phase("closure", `of ${packages.length} package${packages.length === 1 ? "" : "s"}`);
  const closure = await nixClosure(env.nix, roots);
  env.reporter.progress?.(closure.length, undefined, "store paths");
  return closure;
}
