import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { need, type Step } from "../step.js";
import { pipeline } from "./lazy.js";

// The union closure, relocated, with the farm of links, in a directory of tmp/ (journalled as
// temporary before anything is put in it). Store paths staged by the previous transaction come
// from the stage cache (src/image/stage-cache.ts) instead of being staged again.
export const stageStep: Step = {
  name: "stage",
  description: "relocate the closure and make the farm of links, in tmp/",
  when: "packing",
  async run({ env, made, journal }) {
    const plan = need(made, "plan");
    const stageDir = await mkdtemp(join(env.layout.tmpDir, "stage-"));
    await journal.addTemp(stageDir);
    const stageReport = await (await pipeline()).stageClosure(env, {
      stageDir,
      packages: need(made, "packages"),
      closure: need(made, "closure"),
      store: env.nix.store,
      hostRoot: env.layout.root,
      cacheDir: env.layout.stageCacheDir,
      ...(env.bootId ? { bootId: env.bootId } : {}),
      // Its warnings were shown when these store paths arrived.
      alreadyWarned: plan.kind === "build" ? plan.current?.closure.paths ?? [] : [],
    }, env.reporter);
    return { stageDir, stageReport };
  },
};
