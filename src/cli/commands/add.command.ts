import { defineCommand } from "../command.js";

export default defineCommand({
  name: "add",
  summary: "install packages (one new generation)",
  positionals: [{ name: "packages", required: true, variadic: true, describe: "NAME or NAME=ATTR" }],
  options: {
    "allow-shadow": { type: "boolean", default: false, describe: "let these packages shadow files of the host's /usr" },
    "allow-unfree": { type: "boolean", default: false, describe: "let nixpkgs evaluate these packages although their license is unfree" },
    priority: { type: "number", min: -1_000_000, max: 1_000_000, value: "N", describe: "wins file collisions against lower priorities" },
  },
  examples: [
    { command: "$0 add ripgrep jq", meaning: "install two tools in one new generation" },
    { command: "$0 add rg=ripgrep", meaning: "install attribute ripgrep under the name rg" },
    { command: "$0 add python3Packages.requests", meaning: "a package inside a set" },
    { command: "$0 add --priority 10 busybox", meaning: "let busybox win collisions with files of other packages" },
    { command: "$0 add jq --json", meaning: "the result as JSON (schemas/cli/transaction.json)" },
  ],
  output: "report",
  schema: "transaction",
  load: () => import("./add.js"),
  run: ({ add }, ctx, args) => add(ctx, args),
  human: ({ formatAdd }, r) => formatAdd(r),
});
