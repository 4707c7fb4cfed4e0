#!/usr/bin/env node
// node scripts/bundle.mjs — part of `npm run build`, after tsc has type-checked.
//
// Why a bundle: Node 20 compiles every ES module from source on every run (no code cache for ESM),
// and resolving and compiling ~150 modules of ext and its libraries took longer than the work of a
// no-op `ext apply` itself (bench/NOTES.md). esbuild turns src/ and the libraries into a few files in
// dist/bundle/: the entry holds what every run needs (yargs, the context), and each command's module
// stays a separate chunk that is loaded when that command runs (`import()` in src/cli/main.ts), so
// `ext apply` does not compile execa or the image code it does not use.
//
// The bundle is what bin/ext.js runs and what the packages ship; it needs no node_modules.
// dist/ besides dist/bundle/ is tsc's module-per-file output, which the benchmark's stage/pack
// workers import directly.
import { build } from "esbuild";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist/bundle");
rmSync(outdir, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: { main: "src/cli/main.ts" },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // jsonc-parser's "main" is a UMD build that require()s its parts at run time; its "module" is ESM.
  mainFields: ["module", "main"],
  // CommonJS libraries (fast-glob, cross-spawn, …) call require() for Node's built-ins; an ES module
  // has no require, so the bundle makes one.
  banner: { js: 'import { createRequire as __extCreateRequire } from "node:module"; const require = __extCreateRequire(import.meta.url);' },
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});
