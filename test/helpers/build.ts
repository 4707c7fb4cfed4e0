import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./namespace.js";

// The end-to-end tests run bin/ext.js, i.e. the bundle in dist/bundle/ (scripts/bundle.mjs).
// `npm test` builds first; a test file run on its own (npx vitest run test/integration/x.test.ts)
// rebuilds here when the bundle is missing or older than a source, so it never tests stale code.

const BUNDLE = join(REPO, "dist/bundle/main.js");

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

export function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    /* not built */
  }
  const sources = Math.max(...["src", "scripts/bundle.mjs", "scripts/man-page.mjs", "package-lock.json", "tsconfig.json"].map((p) => newestMtime(join(REPO, p))));
  if (built > sources) return;
  // In a host-matrix tree (scripts/test-hosts.sh) there is no npm: the host built the bundle.
  if (process.env["EXT_TEST_HOST"] !== undefined) {
    throw new Error(`dist/bundle is older than src/: run 'npm run build' on the host, then scripts/test-hosts.sh again`);
  }
  execFileSync("npm", ["run", "build", "--silent"], { cwd: REPO, stdio: ["ignore", "ignore", "pipe"] });
}
