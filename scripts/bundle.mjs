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
// A second bundle, dist/snapshot/ext.cjs, is the same program as one CommonJS file for Node's start-up
// snapshot (src/cli/snapshot.ts, scripts/snapshot.mjs, docs/startup.md): `--build-snapshot` runs one
// CommonJS script, and no ES module. bin/ext runs from it when its blob matches the node binary.
//
// The bundle is what bin/ext.js runs and what the packages ship; it needs no node_modules.
// dist/ besides dist/bundle/ is tsc's module-per-file output, which the benchmark's stage/pack
// workers import directly.
import { build } from "esbuild";
import { readFileSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist/bundle");
const snapdir = join(root, "dist/snapshot");
rmSync(outdir, { recursive: true, force: true });
rmSync(snapdir, { recursive: true, force: true });

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

// A snapshot cannot hold an Intl object (V8 does not serialize them), and string-width makes an
// Intl.Segmenter when its module is evaluated; in the snapshot's bundle it is made on first use.
const lazySegmenter = {
  name: "lazy-intl-segmenter",
  setup(b) {
    b.onLoad({ filter: /node_modules[\\/].*\.js$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (!text.includes("new Intl.Segmenter()")) return undefined;
      const lazy = "{ segment(s) { return (this.real ??= new Intl.Segmenter()).segment(s); } }";
      return { contents: text.replaceAll("new Intl.Segmenter()", lazy), loader: "js" };
    });
  },
};

await build({
  absWorkingDir: root,
  entryPoints: { ext: "src/cli/snapshot.ts" },
  outdir: snapdir,
  outExtension: { ".js": ".cjs" },
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  mainFields: ["module", "main"],
  // import.meta does not exist in CommonJS; src/paths.ts is the one runtime user, and in the snapshot
  // it is told where the package is (src/cli/snapshot.ts).
  define: { "import.meta.url": "__extModuleUrl" },
  banner: { js: 'var __extModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [lazySegmenter],
  legalComments: "linked",
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: "warning",
});

// The blob, made with the node running this build (a blob works only with the binary that made it).
// If this node cannot make one, ext still runs, from bin/ext.js.
const made = spawnSync(process.execPath, [join(root, "scripts/snapshot.mjs"), root], { stdio: "inherit" });
if (made.status !== 0) console.warn("scripts/bundle.mjs: no start-up snapshot; bin/ext will run bin/ext.js");
