// One measurement in a fresh process, as the CLI runs it: stage() and/or pack() from dist/ with the
// options `ext add` uses (STAGE_OPTIONS), or with BENCH_REUSE=copy the plain copy every optimisation
// is checked against (same image bytes). Prints one JSON line.
//
//   node bench/lib/stage-pack.js stagepack <spec.json> <stageDir> <image> <compression>
//   node bench/lib/stage-pack.js stage     <spec.json> <stageDir>
//   node bench/lib/stage-pack.js pack      <stageDir> <image> <compression>
//
// spec.json: { closure: ["/nix/store/…"], packages: [{ name, outPaths, allowShadow }], extensionName }
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

// BENCH_REPO: another build of ext (see run.js); an older one may have no STAGE_OPTIONS (stage()'s defaults).
const dist = `${process.env.BENCH_REPO ?? fileURLToPath(new URL("../..", import.meta.url))}/dist`;
const { stage, pack } = await import(`${dist}/image/index.js`);
// Where STAGE_OPTIONS is: pipeline/ since the reshape, machine/actors/ before it.
const { STAGE_OPTIONS = {} } = await import(`${dist}/pipeline/index.js`).catch(() => import(`${dist}/machine/actors/image-steps.js`));

const [mode, ...args] = process.argv.slice(2);
const result = {};

async function doStage(specFile, stageDir) {
  const spec = JSON.parse(readFileSync(specFile, "utf8"));
  const t0 = performance.now();
  const report = await stage({
    closure: spec.closure.map((path) => ({ path, narSize: 0 })),
    packages: spec.packages,
    store: { root: "/" },
    stageDir,
    extensionName: spec.extensionName ?? "ext",
    architecture: "x86-64",
    hostRoot: "/",
  }, process.env.BENCH_REUSE ? { ...STAGE_OPTIONS, reuse: process.env.BENCH_REUSE } : STAGE_OPTIONS);
  result.stageMs = performance.now() - t0;
  result.files = report.files;
  result.bytes = report.bytes;
  result.rewritten = report.rewritten;
  result.symlinks = report.symlinks;
  result.opaque = report.opaqueReferences.length;
}

async function doPack(stageDir, image, compression) {
  const t0 = performance.now();
  const packed = await pack({ stageDir, output: image, compression });
  result.packMs = performance.now() - t0;
  result.sha256 = packed.sha256;
  result.size = packed.size;
}

if (mode === "stagepack") {
  await doStage(args[0], args[1]);
  await doPack(args[1], args[2], args[3]);
} else if (mode === "stage") {
  await doStage(args[0], args[1]);
} else if (mode === "pack") {
  await doPack(args[0], args[1], args[2]);
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.stdout.write(JSON.stringify(result) + "\n");
