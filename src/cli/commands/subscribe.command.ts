import { defineCommand } from "../command.js";

export default defineCommand({
  name: "subscribe",
  summary: "follow images published at URL: a sysupdate transfer, the signing key and a timer (docs/fleet.md)",
  positionals: [{ name: "url", required: false, describe: "http(s) URL of the published directory" }],
  options: {
    key: { type: "string", value: "FILE", completes: "file", describe: "the public key that signs SHA256SUMS (armored or binary)" },
    "verity-cert": { type: "string", value: "FILE", completes: "file", describe: "PEM certificate of 'ext publish --ddi': only signed verity DDIs it signed are installed" },
    "require-signed": { type: "boolean", default: false, describe: "also make systemd-sysext.service merge only signed verity images (a drop-in; needs --verity-cert)" },
    manifest: { type: "string", short: "m", value: "FILE", completes: "file", describe: "take url, key and schedule from this tools.json's \"subscription\"" },
    schedule: { type: "string", value: "CALENDAR", describe: "when ext-pull.timer checks (OnCalendar=, default daily)" },
    "ext-command": { type: "string", value: "COMMAND", describe: "how the unit runs ext (default: this node and this ext)" },
  },
  examples: [
    { command: "$0 subscribe https://updates.example/ext --key fleet.asc", meaning: "then 'sudo ext pull' or wait for the timer" },
    { command: "$0 subscribe --manifest tools.json", meaning: "url, key and schedule from the file's \"subscription\"" },
  ],
  output: "report",
  schema: "subscribe",
  load: () => import("./subscribe.js"),
  run: ({ subscribe }, ctx, args) => subscribe(ctx, args),
  human: ({ formatSubscribe }, r) => formatSubscribe(r),
});
