import { defineCommand } from "../command.js";

export default defineCommand({
  name: "pull",
  summary: "fetch and verify the newest published version and make it a generation",
  options: {
    via: { type: "string", choices: ["auto", "sysupdate", "ext"], default: "auto", value: "HOW", describe: "systemd-sysupdate, or ext's own verified pull (auto: sysupdate where the host has it)" },
  },
  examples: [
    { command: "$0 pull", meaning: "what ext-pull.timer runs" },
    { command: "$0 pull --via ext", meaning: "ext's own pull (gpgv + sha256), also where sysupdate is installed" },
  ],
  output: "report",
  schema: "pull",
  load: () => import("./subscribe.js"),
  run: ({ pull }, ctx, args) => pull(ctx, args),
  human: ({ formatPull }, r) => formatPull(r),
});
