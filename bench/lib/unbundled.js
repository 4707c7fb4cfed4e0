// ext run from tsc's module-per-file output (dist/cli/main.js) instead of the bundle that bin/ext.js
// runs: the bench's before/after of bundling, in the same run. Same arguments as bin/ext.js.
//
//   node bench/lib/unbundled.js <repo> <ext arguments…>
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const repo = process.argv[2];
process.argv.splice(2, 1); // main() reads process.argv as bin/ext.js would have it
const { main } = await import(pathToFileURL(join(repo, "dist/cli/main.js")).href);
process.exitCode = await main();
