import { defineCommand } from "../command.js";

export default defineCommand({
  name: "untrack",
  summary: "stop keeping the tracked tools.json up to date (the file is left as it is)",
  examples: [{ command: "$0 untrack", meaning: "ext add/remove no longer update the tracked tools.json" }],
  output: "report",
  schema: "untrack",
  load: () => import("./apply.js"),
  run: ({ untrack }, ctx) => untrack(ctx),
  human: ({ formatUntrack }, r) => formatUntrack(r),
});
