import { defineCommand } from "../command.js";

export default defineCommand({
  name: "repair",
  summary: "fix ext's state where that needs no guess (damaged files are moved aside, never deleted)",
  examples: [
    { command: "$0 repair", meaning: "recover, sweep, set damaged files aside, pack damaged images again, relink and merge the current generation" },
    { command: "$0 repair --json", meaning: "what was fixed, moved aside, and what needs you (exit code 1 when something does)" },
  ],
  output: "report",
  schema: "repair",
  load: () => import("./repair.js"),
  run: ({ repair }, ctx) => repair(ctx),
  human: ({ formatRepair }, r) => formatRepair(r),
  exitCode: ({ repairExitCode }, r) => repairExitCode(r),
});
