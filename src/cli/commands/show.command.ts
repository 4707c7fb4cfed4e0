import { defineCommand } from "../command.js";

export default defineCommand({
  name: "show",
  summary: "what a package would install: version, license, commands, closure size, installed or not",
  positionals: [{ name: "package", required: true, describe: "NAME or NAME=ATTR" }],
  options: {
    build: { type: "boolean", default: true, negated: "metadata only, without building anything", describe: "build or fetch it to list its commands and closure (--no-build: metadata only)" },
  },
  examples: [
    { command: "$0 show ripgrep", meaning: "version, description, license, homepage, /usr/bin entries, closure size" },
    { command: "$0 show ripgrep --no-build", meaning: "metadata only, without building anything" },
    { command: "$0 show jq --json", meaning: "as JSON (schemas/cli/show.json)" },
  ],
  output: "answer",
  schema: "show",
  load: () => import("./show.js"),
  run: ({ show }, ctx, args) => show(ctx, args),
  human: ({ formatShow }, r) => formatShow(r),
});
