import { defineCommand } from "../command.js";

export default defineCommand({
  name: "rollback",
  summary: "switch to the previous generation (or --to N) without rebuilding",
  options: {
    to: { type: "number", min: 1, max: Number.MAX_SAFE_INTEGER, meaning: "a generation id, see 'ext generations'", value: "N", completes: "generations", describe: "generation to switch to" },
  },
  examples: [
    { command: "$0 rollback", meaning: "back to the generation before the current one" },
    { command: "$0 rollback --to 3", meaning: "switch to generation 3 (see 'ext generations')" },
  ],
  output: "report",
  schema: "transaction",
  load: () => import("./rollback.js"),
  run: ({ rollback }, ctx, args) => rollback(ctx, args),
  human: ({ formatRollback }, r) => formatRollback(r),
});
