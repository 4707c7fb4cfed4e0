// Runs inside the bench's mount namespace: a bare `systemd-sysext refresh` switching between images,
// the way ext activates (hard link to a temporary name, rename over <name>.raw), with only the
// refresh timed. Prints one JSON line: { samples: [ms…] }.
//
//   node bench/lib/refresh-loop.js <runs> <extensions-dir> <name> <image>…
import { linkSync, renameSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";

const [runsText, dir, name, ...images] = process.argv.slice(2);
const runs = Number(runsText);
const samples = [];
for (let i = 0; i < runs * images.length; i++) {
  const image = images[i % images.length];
  const tmp = `${dir}/.${name}.raw.bench`;
  rmSync(tmp, { force: true });
  linkSync(image, tmp);
  renameSync(tmp, `${dir}/${name}.raw`);
  const t0 = performance.now();
  const r = spawnSync("systemd-sysext", ["refresh"], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`systemd-sysext refresh failed: ${r.stderr}`);
  samples.push(ms);
}
process.stdout.write(JSON.stringify({ samples }) + "\n");
