import { defineCommand } from "../command.js";

export default defineCommand({
  name: "status",
  summary: "active generation, merged or not, image",
  examples: [
    { command: "$0 status", meaning: "current generation, its image, linked and merged or not" },
    { command: "$0 --root /mnt/sysroot status", meaning: "the state of another system" },
  ],
  output: "answer",
  schema: "status",
  load: () => import("./status.js"),
  run: ({ status }, ctx) => status(ctx),
  human: ({ formatStatus }, r) => formatStatus(r),
});
