import { defineCommand } from "../command.js";

export default defineCommand({
  name: "search",
  summary: "find packages by name or description (through nix search)",
  positionals: [{ name: "query", required: true, describe: "text to look for (not a regular expression); '' lists everything" }],
  options: {
    limit: { type: "number", min: 0, max: Number.MAX_SAFE_INTEGER, meaning: "0 shows every match", value: "N", describe: "show at most N matches (0: all; default 30, all with --json)" },
  },
  examples: [
    { command: "$0 search ripgrep", meaning: "packages whose name or description contains 'ripgrep'" },
    { command: "$0 search 'json processor' --limit 5", meaning: "the five best matches" },
    { command: "$0 search --source github:NixOS/nixpkgs/nixos-24.11 jq", meaning: "search another nixpkgs" },
    { command: "$0 search jq --json", meaning: "every match as JSON (schemas/cli/search.json)" },
  ],
  output: "answer",
  schema: "search",
  load: () => import("./search.js"),
  run: ({ search }, ctx, args) => search(ctx, args),
  human: ({ formatSearch }, r) => formatSearch(r),
});
