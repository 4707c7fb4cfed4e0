import { startupSnapshot } from "node:v8";
import { dirname } from "node:path";
import { main } from "./main.js";
import { packagePath, searchPackageRootFrom } from "../paths.js";

// The entry of ext's V8 start-up snapshot (docs/startup.md). scripts/bundle.mjs bundles this file
// with everything main.ts imports statically into one CommonJS file and runs it under
// `node --build-snapshot`: evaluating those modules (yargs, the context, the reporters) happens once,
// there, and the resulting heap is saved in dist/snapshot/ext.blob. bin/ext starts
// `node --snapshot-blob …/ext.blob ARGS` when the blob was made by the same node binary; Node then
// restores the heap and calls the function below instead of loading any script. Command modules stay
// lazy: their `import()` became a function the bundle calls on first use, as in the ES bundle.

/** The blob's path, from Node's own options: where the package is now (the bundle that made the
 *  blob may have been elsewhere, e.g. before ext relocated itself into /usr/store). */
function blobPath(): string | undefined {
  const at = process.execArgv.indexOf("--snapshot-blob");
  if (at >= 0) return process.execArgv[at + 1];
  const joined = process.execArgv.find((a) => a.startsWith("--snapshot-blob="));
  return joined?.slice("--snapshot-blob=".length);
}

async function run(): Promise<void> {
  const blob = blobPath();
  if (blob !== undefined) searchPackageRootFrom(dirname(blob));
  // A restored snapshot has no script: argv is [node, ...arguments]. yargs' hideBin and anything
  // else that reads process.argv expect [node, script, ...arguments], as `node bin/ext.js` has it.
  process.argv.splice(1, 0, packagePath("bin", "ext.js"));
  process.exitCode = await main();
}

if (startupSnapshot.isBuildingSnapshot()) startupSnapshot.setDeserializeMainFunction(() => void run());
