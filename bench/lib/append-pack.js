// Packing a generation that only adds, both ways, in a fresh process through dist/image: in full
// (what Debian 12's mkfs.erofs 1.5 must do) and by appending to the previous image (mkfs.erofs ≥ 1.8:
// src/image/append.ts, with the sha256 check of the previous image that ext does first). Then both
// images are unpacked (fsck.erofs --extract) and compared entry by entry. Runs wherever the stages
// are readable: the stages are made on the host (stage-pack.js stage) and this runs in a host-matrix
// tree (scripts/in-host.sh trixie node bench/lib/append-pack.js …). Prints one JSON line.
//
//   node bench/lib/append-pack.js <stage before> <stage after> <work dir> <compression> <runs>
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const dist = `${process.env.BENCH_REPO ?? fileURLToPath(new URL("../..", import.meta.url))}/dist`;
const image = await import(`${dist}/image/index.js`);
const [before, after, dir, compression, runs = "3"] = process.argv.slice(2);
mkdirSync(dir, { recursive: true });
const result = { mkfs: execFileSync("sh", ["-c", "mkfs.erofs --version 2>&1 | head -1"]).toString().trim(), canAppend: await image.canAppend(), full: [], append: [], plan: [] };
const base = join(dir, "before.raw");
const prev = await image.pack({ stageDir: before, output: base, compression });
result.before = prev.size;
const bases = execFileSync("ls", [join(after, "usr/store")]).toString().trim().split("\n");
for (let i = 0; i < Number(runs); i++) {
  let t = performance.now();
  const full = await image.pack({ stageDir: after, output: join(dir, "full.raw"), compression });
  result.full.push(performance.now() - t);
  result.fullSize = full.size;
  if (!result.canAppend) continue;
  t = performance.now();
  const plan = await image.planAppend(base, after, bases);
  result.plan.push(performance.now() - t);
  if (plan.kind !== "append") throw new Error(`cannot append: ${plan.reason}`);
  result.storePaths = plan.storePaths.length;
  result.entries = plan.entries.length;
  t = performance.now();
  const appended = await image.appendPack({ previous: base, previousSha256: prev.sha256, stageDir: after, output: join(dir, "app.raw"), compression, closureBases: bases }, plan);
  result.append.push(performance.now() - t);
  result.appendSize = appended.size;
}
if (result.canAppend) {
  const listing = (img) => {
    const out = join(dir, `x-${img}`);
    rmSync(out, { recursive: true, force: true });
    execFileSync("fsck.erofs", [`--extract=${out}`, join(dir, img)], { stdio: "ignore" });
    const l = execFileSync("sh", ["-c", `cd '${out}' && find . -printf '%P %y %m %U:%G %T@ %l\\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum`], { maxBuffer: 256 * 1024 * 1024 }).toString();
    rmSync(out, { recursive: true, force: true });
    return l;
  };
  const a = listing("app.raw");
  result.entriesCompared = a.split("\n").length;
  result.sameTree = a === listing("full.raw");
}
rmSync(dir, { recursive: true, force: true });
process.stdout.write(JSON.stringify(result) + "\n");
