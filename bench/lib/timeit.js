// Times a command (no shell) `runs` times after `warmup` untimed runs; prints { samples: [ms…] }.
// Run inside the namespace by nsenter, so nsenter's own start is not in the figures.
//
//   node bench/lib/timeit.js <warmup> <runs> <command> [args…]
import { spawnSync } from "node:child_process";

const [warmupText, runsText, command, ...args] = process.argv.slice(2);
const samples = [];
for (let i = 0; i < Number(warmupText) + Number(runsText); i++) {
  const t0 = performance.now();
  const r = spawnSync(command, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr}`);
  if (i >= Number(warmupText)) samples.push(ms);
}
process.stdout.write(JSON.stringify({ samples }) + "\n");
