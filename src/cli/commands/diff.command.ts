import { defineCommand } from "../command.js";

export default defineCommand({
  name: "diff",
  summary: "what 'ext apply' would change: added, removed, versions, closure size",
  positionals: [{ name: "file", required: false, completes: "file", describe: "tools.json (default: the tracked one)" }],
  examples: [{ command: "$0 diff ~/dotfiles/tools.json", meaning: "nothing is built or changed" }],
  output: "answer",
  schema: "diff",
  load: () => import("./diff.js"),
  run: ({ diff }, ctx, args) => diff(ctx, args),
  human: ({ formatDiff }, r) => formatDiff(r),
});
