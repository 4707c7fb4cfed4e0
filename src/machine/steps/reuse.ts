import { pipeline } from "./lazy.js";
import { imagePath } from "../../base/layout.js";
import { listGenerations } from "../../generations/store.js";
import { imageProblem } from "../../generations/image-integrity.js";
import type { ImageInfo } from "../../generations/record.js";
import type { TxEnv } from "../types.js";
import { need, type Step } from "../step.js";

// One image per generation, content-addressed: a set whose image an earlier generation had (a
// `remove` then `add` back, a rollback followed by the same add) skips stage and pack.
export const reuseStep: Step = {
  name: "reuse",
  description: "the image key, and an intact earlier image with that key",
  when: "building",
  async run({ env, made }) {
    const packages = need(made, "packages");
    if (packages.length === 0) return { imageKey: null, reusedImage: null };
    const key = (await pipeline()).imageKey(env, packages, need(made, "closure"));
    return { imageKey: key, reusedImage: await findReusableImage(env, key) };
  },
};

/** An earlier generation's image with this key, proven intact (hashed against its record). A damaged
 *  one is not reused: the transaction stages and packs it again, and pack replaces the damaged file. */
async function findReusableImage(env: TxEnv, key: string): Promise<ImageInfo | null> {
  for (const g of (await listGenerations(env.layout)).reverse()) {
    if (g.imageKey !== key || !g.image) continue;
    const problem = await imageProblem(imagePath(env.layout, g.image.sha256), g.image);
    if (problem === null) return g.image;
    if (problem !== "missing") env.reporter.warn(`the image of generation ${g.id} is ${problem}; packing it again instead of reusing it`);
    return null;
  }
  return null;
}
