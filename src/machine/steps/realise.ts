import { ensurePaths } from "../../nix/index.js";
import { pipeline } from "./lazy.js";
import { need, type Step } from "../step.js";

// Ask Nix for the new packages (built or substituted); make sure the kept ones' store paths are
// still present (a nix-collect-garbage may have removed them). Kept packages are not re-resolved:
// an unpinned nixpkgs never upgrades them behind the user's back.
export const realiseStep: Step = {
  name: "realise",
  description: "build or substitute the new packages; check that the kept ones are present",
  when: "building",
  async run({ env, made }) {
    const plan = need(made, "plan");
    if (plan.kind !== "build") return;
    const fresh = await (await pipeline()).resolvePackages(env.nix, plan.resolve, env.source, env.reporter);
    const keptPaths = plan.keep.flatMap((p) => Object.values(p.outPaths));
    if (keptPaths.length > 0) await ensurePaths(env.nix, keptPaths);
    return { packages: (await pipeline()).inFarmOrder([...plan.keep, ...fresh]) };
  },
};
