import { defineCommand } from "../command.js";

export default defineCommand({
  name: "remove",
  summary: "uninstall packages (one new generation)",
  positionals: [{ name: "packages", required: true, variadic: true, completes: "installed", describe: "installed names (see 'ext list')" }],
  examples: [
    { command: "$0 remove jq", meaning: "uninstall jq (one new generation)" },
    { command: "$0 remove jq ripgrep", meaning: "uninstall two at once" },
  ],
  output: "report",
  schema: "transaction",
  load: () => import("./remove.js"),
  run: ({ remove }, ctx, args) => remove(ctx, args),
  human: ({ formatRemove }, r) => formatRemove(r),
});
