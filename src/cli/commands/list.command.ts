import { defineCommand } from "../command.js";

export default defineCommand({
  name: "list",
  summary: "installed packages",
  examples: [
    { command: "$0 list", meaning: "name, version and description of each installed package" },
    { command: "$0 list --json", meaning: "with attribute, source and store paths (schemas/cli/list.json)" },
  ],
  output: "answer",
  schema: "list",
  load: () => import("./list.js"),
  run: ({ list }, ctx) => list(ctx),
  human: ({ formatList }, r) => formatList(r),
});
