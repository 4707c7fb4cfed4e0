import { defineCommand } from "../command.js";

export default defineCommand({
  name: "upgrade",
  summary: "pin sources to their newest revision, show the version changes, apply them",
  positionals: [{ name: "packages", required: false, variadic: true, completes: "installed", describe: "only these packages (default: all)" }],
  options: {
    "dry-run": { type: "boolean", short: "n", default: false, describe: "only show what would change" },
    auto: { type: "boolean", default: false, describe: "what ext-upgrade.timer runs: the subscription's check (ext pull) or the upgrade, under ext's lock, its result kept for 'ext status'" },
  },
  examples: [
    { command: "$0 upgrade --dry-run", meaning: "newer versions, without changing anything" },
    { command: "$0 upgrade ripgrep", meaning: "only ripgrep (and its source's pin)" },
    { command: "$0 upgrade --auto", meaning: "what the timer of 'ext setup --auto-upgrade daily' runs" },
  ],
  output: (args) => (args.dryRun ? "answer" : "report"),
  schema: "upgrade",
  load: () => import("./upgrade.js"),
  run: ({ upgrade }, ctx, args) => upgrade(ctx, args),
  human: ({ formatUpgrade }, r) => formatUpgrade(r),
});
