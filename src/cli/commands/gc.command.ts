import { defineCommand } from "../command.js";

export default defineCommand({
  name: "gc",
  summary: "delete images no kept generation uses",
  options: {
    keep: { type: "number", min: 0, max: Number.MAX_SAFE_INTEGER, value: "N", describe: "keep the current and the newest N other generations" },
  },
  examples: [
    { command: "$0 gc", meaning: "delete images that no generation uses" },
    { command: "$0 gc --keep 2", meaning: "also forget all but the current and the two newest other generations" },
  ],
  output: "report",
  schema: "gc",
  load: () => import("./gc.js"),
  run: ({ gc }, ctx, args) => gc(ctx, args),
  human: ({ formatGc }, r) => formatGc(r),
});
