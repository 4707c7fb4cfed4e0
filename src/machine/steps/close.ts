import { pipeline } from "./lazy.js";
import { need, type Step } from "../step.js";

export const closeStep: Step = {
  name: "close",
  description: "the runtime closure of the whole set",
  when: "building",
  async run({ env, made }) {
    return { closure: await (await pipeline()).closureOf(env.nix, need(made, "packages"), env.reporter) };
  },
};
