#!/usr/bin/env node
// node test/fixtures-self/assemble.mjs DIR [--node /usr/bin/node]
//
// Makes DIR a flake whose package `ext` is this working tree's ext (see README.md): the template
// flake.nix, ext-self.nix and escape-store-literals.cjs from here, packages.nix from ../fixtures (for
// glibc, libgcc and dash), host.json (which node binary to relink, and its version), and payload/:
// dist/, bin/, package.json, templates/, schemas/ and the production dependencies in node_modules/
// (package-lock.json entries without "dev"). Run `npm run build` first: dist/ is what gets packaged.
// DIR is replaced if it was assembled before. Prints DIR's flake reference (path:DIR).
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../..");

/** Assembles the flake in `dir`; returns `path:<dir>`. */
export function assemble(dir, options = {}) {
  const repo = options.repo ?? REPO;
  const node = realpathSync(options.node ?? "/usr/bin/node");
  const target = resolve(dir);
  if (existsSync(target)) {
    if (!existsSync(join(target, "ext-self.nix"))) throw new Error(`${target} exists and is not an assembled ext-self flake; refusing to replace it`);
    rmSync(target, { recursive: true, force: true });
  }
  mkdirSync(join(target, "payload"), { recursive: true });

  for (const f of ["flake.nix", "ext-self.nix", "escape-store-literals.cjs"]) cpSync(join(HERE, f), join(target, f));
  cpSync(join(repo, "test/fixtures/packages.nix"), join(target, "packages.nix"));
  // An input-less flake's lock, so that no Nix version tries to write one.
  writeFileSync(join(target, "flake.lock"), JSON.stringify({ nodes: { root: {} }, root: "root", version: 7 }, null, 2) + "\n");
  const nodeVersion = execFileSync(node, ["--version"], { encoding: "utf8" }).trim().replace(/^v/, "");
  writeFileSync(join(target, "host.json"), JSON.stringify({ nodePath: node, nodeVersion }, null, 2) + "\n");

  const payload = join(target, "payload");
  if (!existsSync(join(repo, "dist/cli/main.js"))) throw new Error(`${repo}/dist is not built: run 'npm run build' first`);
  const skipMaps = (src) => !src.endsWith(".map");
  for (const d of ["dist", "bin", "templates", "schemas"]) {
    if (existsSync(join(repo, d))) cpSync(join(repo, d), join(payload, d), { recursive: true, filter: skipMaps });
  }
  cpSync(join(repo, "package.json"), join(payload, "package.json"));
  const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8"));
  let deps = 0;
  for (const [where, entry] of Object.entries(lock.packages ?? {})) {
    if (where === "" || entry.dev || entry.link || !where.startsWith("node_modules/")) continue;
    const src = join(repo, where);
    if (!existsSync(src)) continue; // optional dependencies of other platforms
    cpSync(src, join(payload, where), { recursive: true, filter: (s) => !s.includes("/node_modules/.bin") });
    deps++;
  }
  if (deps === 0) throw new Error("no production dependencies found in package-lock.json; run 'npm ci' first");
  return `path:${target}`;
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith("--"));
  const nodeAt = args.indexOf("--node");
  if (!dir) {
    console.error("usage: node test/fixtures-self/assemble.mjs DIR [--node /usr/bin/node]");
    process.exit(2);
  }
  console.log(assemble(dir, nodeAt >= 0 ? { node: args[nodeAt + 1] } : {}));
}
