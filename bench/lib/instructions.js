// Counts the instructions a command executes, with valgrind's callgrind; prints { instructions }.
// Unlike a time, the count does not move with the machine's load: the same program doing the same
// work counts (nearly) the same, so a ratio of counts shows start-up cost without the noise.
// Under valgrind, V8's JIT behaves somewhat differently from a normal run, so it is a second view
// beside the times, not a replacement. Run inside the namespace by nsenter.
//
//   node bench/lib/instructions.js <command> [args…]
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [command, ...args] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), "ext-bench-cg-"));
try {
  const r = spawnSync("valgrind", ["--tool=callgrind", `--callgrind-out-file=${join(dir, "out")}`, command, ...args], { encoding: "utf8" });
  const m = /Collected\s*:\s*(\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`valgrind ${command} ${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  process.stdout.write(JSON.stringify({ instructions: Number(m[1]) }) + "\n");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
