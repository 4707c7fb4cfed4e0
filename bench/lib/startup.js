// Start-up cost of ext (BENCH_ONLY=startup; no root, no fixtures, no namespace): node -e 0 against
// ext --version, ext list, ext status and a no-op ext apply, each run the plain way (node bin/ext.js)
// and through the launcher from the V8 start-up snapshot (bin/ext, docs/startup.md). The state is a
// temp --root with nothing installed and an empty tools.json applied once, so apply has nothing to do.
//
// Instructions (valgrind --tool=callgrind --trace-children=yes, every process of a run summed) are the
// figure the goal is stated in; they do not move with the machine's load. V8 tags a snapshot with the
// CPU features it detected, and valgrind's virtual CPU has other features than the real one, so node
// under valgrind refuses the package's blob (exit 14; bin/ext's check cannot see valgrind's CPU): the
// counted snapshot runs use a copy of the package whose blob was made under valgrind by
// scripts/snapshot.mjs. Times alternate with node -e 0 (bench/lib/alternate.js) on a second copy
// whose blob this node made outside valgrind (in a host-matrix tree the checkout's blob is the host's
// node's, which bin/ext rightly does not use there). BENCH_VALGRIND: another valgrind (a tree has none).
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const LIB = dirname(fileURLToPath(import.meta.url));
const VALGRIND = process.env.BENCH_VALGRIND ?? "valgrind";

/** Instructions of one run, all processes summed (the launcher's sh and stat, then node). */
function instructions(argv, env, tries = 3) {
  try {
    return countOnce(argv, env);
  } catch (e) {
    // valgrind sometimes fails to start under heavy load in a host-matrix tree ("can't open
    // /proc/self/maps"); that is not ext's result, so it is run again.
    if (tries > 1 && /aspacem|\/proc\/self/.test(String(e))) return instructions(argv, env, tries - 1);
    throw e;
  }
}

function countOnce(argv, env) {
  const dir = mkdtempSync(join(tmpdir(), "ext-bench-cg-"));
  try {
    const r = spawnSync(VALGRIND, ["--tool=callgrind", "--trace-children=yes", `--callgrind-out-file=${join(dir, "out.%p")}`, ...argv], { encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 });
    if (r.error) throw new Error(`${VALGRIND} could not be run: ${r.error.message}`);
    const counts = [...r.stderr.matchAll(/Collected\s*:\s*(\d+)/g)].map((m) => Number(m[1]));
    if (r.status !== 0 || counts.length === 0) throw new Error(`valgrind ${argv.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    if (/Failed to load the startup snapshot/.test(r.stderr)) throw new Error(`node refused the snapshot under valgrind: ${r.stderr.slice(-1000)}`);
    return counts.reduce((a, b) => a + b, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A copy of the package (what bin/ext needs) in `dir`, with a blob made by this node, under
 *  valgrind or not; checks that bin/ext then runs from the snapshot. */
function packageCopy(repo, dir, underValgrind) {
  for (const d of ["bin", "templates", "schemas", "dist/bundle", "dist/snapshot"]) cpSync(join(repo, d), join(dir, d), { recursive: true });
  cpSync(join(repo, "package.json"), join(dir, "package.json"));
  const make = [process.execPath, join(repo, "scripts/snapshot.mjs"), dir];
  const r = underValgrind ? spawnSync(VALGRIND, ["-q", "--tool=none", "--trace-children=yes", ...make], { encoding: "utf8" }) : spawnSync(make[0], make.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`making the blob${underValgrind ? " under valgrind" : ""} failed: ${r.stderr.slice(-2000)}`);
  if (!underValgrind) {
    const trace = spawnSync("sh", ["-x", join(dir, "bin/ext"), "--version"], { encoding: "utf8" });
    if (!/^\+ exec \S+ --snapshot-blob /m.test(trace.stderr)) throw new Error(`bin/ext does not run from its snapshot: ${trace.stderr}`);
  }
}

/** The launcher with its two `exec`s made `exit 0`: what the check costs (sh, /proc/cpuinfo, stat),
 *  without node. (callgrind loses what a process counted before it execs, so the real launcher's
 *  own share cannot be read from its run.) */
export function checkOnlyLauncher(dir) {
  const launcher = join(dir, "bin/ext-check-only");
  const text = readFileSync(join(dir, "bin/ext"), "utf8").replace(/\bexec "\$node"/g, 'exit 0; : "$node"');
  if (text.includes('exec "$node"') || !text.includes('exit 0; : "$node"')) throw new Error("bin/ext's exec lines were not found");
  writeFileSync(launcher, text, { mode: 0o755 });
  return launcher;
}

export { instructions };

export function benchStartup({ repo, runs, log }) {
  const work = mkdtempSync(join(tmpdir(), "ext-bench-startup-"));
  try {
    const root = join(work, "root");
    for (const d of ["usr", "var"]) mkdirSync(join(root, d), { recursive: true });
    const manifest = join(root, "tools.json");
    writeFileSync(manifest, JSON.stringify({ version: 1, packages: {} }) + "\n");
    const env = { ...process.env, NO_COLOR: "1" };
    const commands = {
      version: ["--version"],
      list: ["--root", root, "list"],
      status: ["--root", root, "status"],
      apply: ["--root", root, "apply", manifest],
    };
    const first = spawnSync("node", [join(repo, "bin/ext.js"), ...commands.apply], { encoding: "utf8", env });
    if (first.status !== 0) throw new Error(`ext apply failed: ${first.stderr}`);
    const again = spawnSync("node", [join(repo, "bin/ext.js"), ...commands.apply], { encoding: "utf8", env });
    if (again.status !== 0 || !/nothing to do/.test(again.stdout)) throw new Error(`the second ext apply was not a no-op: ${again.stdout}${again.stderr}`);

    log("start-up: a package copy whose blob is made under valgrind (~1 min)");
    const vg = join(work, "pkg-valgrind");
    packageCopy(repo, vg, true);
    const real = join(work, "pkg");
    packageCopy(repo, real, false);
    const counts = { node: [], check: [] };
    for (const c of Object.keys(commands)) {
      counts[`${c} plain`] = [];
      counts[`${c} snapshot`] = [];
    }
    const check = checkOnlyLauncher(vg);
    const rounds = Number(process.env.BENCH_STARTUP_ROUNDS ?? 3);
    log(`start-up: instruction counts (callgrind), ${rounds} rounds`);
    for (let i = 0; i < rounds; i++) {
      counts.node.push(instructions(["node", "-e", "0"], env));
      counts.check.push(instructions([check, ...commands.apply], env));
      for (const [c, args] of Object.entries(commands)) {
        counts[`${c} plain`].push(instructions(["node", join(vg, "bin/ext.js"), ...args], env));
        counts[`${c} snapshot`].push(instructions([join(vg, "bin/ext"), ...args], env));
      }
    }

    log(`start-up: times, alternating with node -e 0 (${runs} pairs each)`);
    const alternate = (b) => JSON.parse(spawnSync("node", [join(LIB, "alternate.js"), "3", String(runs), JSON.stringify(["node", "-e", "0"]), JSON.stringify(b)], { encoding: "utf8", env }).stdout);
    const times = {
      "apply plain": alternate(["node", join(real, "bin/ext.js"), ...commands.apply]),
      "apply snapshot": alternate([join(real, "bin/ext"), ...commands.apply]),
    };
    const stamp = readFileSync(join(real, "dist/snapshot/ext.stamp"), "utf8").split("\n");
    const blobBytes = Number(stamp[0]?.split(" ")[3]);
    return { counts, times, blobBytes, node: process.version };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
