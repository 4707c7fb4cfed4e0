import { plan } from "../plan.js";
import type { Step } from "../step.js";

// Decide what the transaction must do from the request and the current generation (no Nix): a
// request that changes nothing ends here, a rollback goes straight to verify.
export const planStep: Step = {
  name: "plan",
  description: "decide from the request and the current generation: nothing to do, switch, import, or build",
  async run({ env, request }) {
    const p = await plan(env, request);
    return p.kind === "switch" ? { plan: p, record: p.target } : { plan: p };
  },
};
