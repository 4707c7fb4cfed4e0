import { defineCommand } from "../command.js";

// What the completion scripts ask for (installed names, generation ids), one a line; not for people.
export default defineCommand({
  name: "__complete",
  hidden: true,
  summary: "installed names or generation ids, for the completion scripts",
  positionals: [{ name: "what", required: true, choices: ["installed", "generations"] }],
  examples: [{ command: "$0 __complete installed", meaning: "the installed package names, one a line" }],
  output: "answer",
  load: () => import("./completion.js"),
  run: ({ completeNames }, ctx, args) => completeNames(ctx, args.what),
  human: (_m, names) => names,
});
