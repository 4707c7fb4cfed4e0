import { defineCommand } from "../command.js";
import { cliSpec } from "../completion-spec.js";

export default defineCommand({
  name: "completion",
  summary: "print a completion script for bash, zsh or fish",
  positionals: [{ name: "shell", required: true, choices: ["bash", "zsh", "fish"] }],
  examples: [
    { command: "source <($0 completion bash)", meaning: "bash, for this shell (add it to ~/.bashrc)" },
    { command: "$0 completion zsh > \"${fpath[1]}/_ext\"", meaning: "zsh" },
    { command: "$0 completion fish > ~/.config/fish/completions/ext.fish", meaning: "fish" },
  ],
  output: "answer",
  schema: "completion",
  load: () => import("./completion.js"),
  run: ({ completion }, ctx, args, table) => completion(ctx, { shell: args.shell, spec: cliSpec(table) }),
  human: ({ formatCompletion }, r) => formatCompletion(r),
});
