import { defineCommand } from "../command.js";

export default defineCommand({
  name: "apply",
  summary: "make the active set exactly what a tools.json says (one generation); tracks the file",
  positionals: [{ name: "file", required: false, completes: "file", describe: "tools.json (default: the tracked one)" }],
  options: {
    "dry-run": { type: "boolean", short: "n", default: false, describe: "only show what would change; nothing is built or changed" },
    track: { type: "boolean", default: true, negated: "leave tracking as it is", describe: "track FILE so ext add/remove keep it up to date (--no-track: leave tracking as it is)" },
  },
  examples: [
    { command: "$0 apply ~/dotfiles/tools.json", meaning: "install exactly what the file lists; its lock is written beside it" },
    { command: "$0 apply --dry-run", meaning: "what applying the tracked file would change (docs/tools-json.md)" },
  ],
  // --dry-run prints the plan it was asked for.
  output: (args) => (args.dryRun ? "answer" : "report"),
  schema: "apply",
  load: () => import("./apply.js"),
  run: ({ apply }, ctx, args) => apply(ctx, args),
  human: ({ formatApply }, r) => formatApply(r),
});
