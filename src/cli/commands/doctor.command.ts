import { defineCommand } from "../command.js";

export default defineCommand({
  name: "doctor",
  summary: "check the host and say how to fix what is wrong",
  examples: [
    { command: "$0 doctor", meaning: "systemd-sysext, kernel, nix, mkfs.erofs, space, /usr/store, state, units" },
    { command: "$0 doctor --json", meaning: "findings as JSON (schemas/cli/doctor.json); exit code 1 when one is an error" },
  ],
  output: "answer",
  schema: "doctor",
  load: () => import("./doctor.js"),
  run: ({ doctor }, ctx) => doctor(ctx),
  human: ({ formatDoctor }, r) => formatDoctor(r),
  exitCode: ({ doctorExitCode }, r) => doctorExitCode(r),
});
