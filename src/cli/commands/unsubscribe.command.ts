import { defineCommand } from "../command.js";

export default defineCommand({
  name: "unsubscribe",
  summary: "remove the subscription's transfer, key and timer (generations stay)",
  examples: [{ command: "$0 unsubscribe", meaning: "stop following the published images" }],
  output: "report",
  schema: "unsubscribe",
  load: () => import("./subscribe.js"),
  run: ({ unsubscribe }, ctx) => unsubscribe(ctx),
  human: ({ formatUnsubscribe }, r) => formatUnsubscribe(r),
});
