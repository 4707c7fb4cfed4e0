import { defineCommand } from "../command.js";

export default defineCommand({
  name: "export",
  summary: "write the active set as a tools.json and its lock (to stdout without FILE)",
  positionals: [{ name: "file", required: false, completes: "file", describe: "tools.json to write or update in place" }],
  options: {
    track: { type: "boolean", default: false, describe: "track FILE afterwards, as 'ext apply FILE' would" },
    force: { type: "boolean", default: false, describe: "replace FILE even when it is not a valid tools.json" },
  },
  examples: [{ command: "$0 export ~/dotfiles/tools.json", meaning: "the active set, with tools.lock.json beside it" }],
  // Without FILE, the tools.json on stdout is the answer.
  output: (args) => (args.file === undefined ? "answer" : "report"),
  schema: "export",
  load: () => import("./export.js"),
  run: ({ exportSet }, ctx, args) => exportSet(ctx, args),
  human: ({ formatExport }, r) => formatExport(r),
});
