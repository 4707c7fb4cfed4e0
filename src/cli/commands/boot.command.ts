import { defineCommand } from "../command.js";

export default defineCommand({
  name: "boot",
  summary: "run by the boot units: select this boot's set, or bless it once the boot is complete",
  positionals: [{ name: "step", required: true, choices: ["select", "bless"] }],
  options: {
    cmdline: { type: "string", empty: true, value: "CMDLINE", describe: "kernel command line to obey instead of /proc/cmdline ($EXT_BOOT_CMDLINE)" },
    "boot-id": { type: "string", value: "ID", describe: "boot id instead of the kernel's ($EXT_BOOT_ID)" },
  },
  examples: [
    { command: "$0 boot select", meaning: "what ext-boot-select.service runs before systemd-sysext.service" },
    { command: "$0 boot bless", meaning: "what ext-boot-bless.service runs once the boot is complete" },
  ],
  output: "report",
  schema: "boot",
  load: () => import("./boot.js"),
  run: ({ boot }, ctx, args) => boot(ctx, args),
  human: ({ formatBoot }, r) => formatBoot(r),
});
