import { defineCommand } from "../command.js";

export default defineCommand({
  name: "setup",
  summary: "install the boot units: choose a good extension set at boot, revert a failing one",
  options: {
    "boot-tries": { type: "number", min: 1, max: 100, value: "N", describe: "boots a newly activated generation gets before ext goes back to the last good one (default 3)" },
    "ext-command": { type: "string", value: "COMMAND", describe: "how the units run ext on the target system (default: this node and this ext)" },
    remove: { type: "boolean", default: false, describe: "disable and remove the boot units" },
    "auto-upgrade": { type: "string", value: "WHEN", describe: "also install ext-upgrade.timer, which runs 'ext upgrade --auto' (or the subscription's check) on this OnCalendar= schedule: daily, weekly, …; off removes it" },
    "from-image": { type: "boolean", default: false, describe: "the units run the ext inside ext's own image, through /etc/ext/boot.sh (the default when this ext runs from one)" },
  },
  examples: [
    { command: "$0 setup", meaning: "install and enable ext-boot-select.service and ext-boot-bless.service" },
    { command: "$0 setup --boot-tries 2", meaning: "a new generation gets two boots to be blessed" },
    { command: "$0 setup --auto-upgrade weekly", meaning: "also upgrade once a week (a randomized hour later; missed runs at the next boot)" },
    { command: "$0 setup --auto-upgrade off", meaning: "remove the auto-upgrade timer" },
    { command: "$0 --root /mnt/sysroot setup --from-image", meaning: "for a system whose ext lives only in its own image (docs/boot.md)" },
  ],
  output: "report",
  schema: "setup",
  load: () => import("./setup.js"),
  run: ({ setup }, ctx, args) => setup(ctx, args),
  human: ({ formatSetup }, r) => formatSetup(r),
});
