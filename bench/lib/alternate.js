// Times two commands (no shell) in alternation, A B A B …, `runs` times each after `warmup` untimed
// pairs; prints { a: [ms…], b: [ms…] }. Alternating puts both under the same momentary load: on this
// shared machine `node -e 0` alone drifts between 80 and 150 ms within minutes, and hyperfine's
// one-block-after-the-other would fold that drift into the ratio. Run inside the namespace by nsenter.
//
//   node bench/lib/alternate.js <warmup> <runs> '<json argv A>' '<json argv B>'
import { spawnSync } from "node:child_process";

const [warmupText, runsText, aJson, bJson] = process.argv.slice(2);
const commands = [JSON.parse(aJson), JSON.parse(bJson)];
const samples = [[], []];
const warmup = Number(warmupText);
for (let i = 0; i < warmup + Number(runsText); i++) {
  for (const k of [0, 1]) {
    const [command, ...args] = commands[k];
    const t0 = performance.now();
    const r = spawnSync(command, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${commands[k].join(" ")} failed (${r.status ?? r.signal}): ${r.stderr}`);
    if (i >= warmup) samples[k].push(ms);
  }
}
process.stdout.write(JSON.stringify({ a: samples[0], b: samples[1] }) + "\n");
