import { defineCommand } from "../command.js";

export default defineCommand({
  name: "generations",
  summary: "history of extension sets",
  examples: [
    { command: "$0 generations", meaning: "each generation: date, packages, size, what changed" },
    { command: "$0 generations --json", meaning: "as JSON (schemas/cli/generations.json)" },
  ],
  output: "answer",
  schema: "generations",
  load: () => import("./generations.js"),
  run: ({ generations }, ctx) => generations(ctx),
  human: ({ formatGenerations }, r) => formatGenerations(r),
});
