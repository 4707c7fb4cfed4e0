import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// ext's own files (package.json, templates/, schemas/, bin/ext.js) are found from the running code.
// That code is either tsc's output (dist/<module>/x.js), the source under vitest (src/<module>/x.ts) or
// the bundle (dist/bundle/*.js, see scripts/bundle.mjs), each at its own depth below the package root;
// a fixed "../../" would be right for one of them only. So walk up to the directory that holds both
// package.json and templates/ — the package root in a checkout, an npm install and the Nix package.

let root: string | undefined;
let startDir: string | undefined;

/** Where the search starts when the running code cannot say where it is: code restored from the
 *  start-up snapshot (src/cli/snapshot.ts) was loaded where the blob was built, which need not be
 *  where it runs now. */
export function searchPackageRootFrom(dir: string): void {
  startDir = dir;
  root = undefined;
}

export function packageRoot(): string {
  if (root !== undefined) return root;
  const start = startDir ?? dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "templates"))) return (root = dir);
    if (dirname(dir) === dir) {
      // A broken installation, not a user error: the message says what is missing and where it looked.
      throw new Error(`ext's package root (package.json next to templates/) was not found above ${start}`);
    }
  }
}

/** A file or directory of ext's own package, e.g. packagePath("templates"). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
