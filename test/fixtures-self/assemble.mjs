#!/usr/bin/env node
// node test/fixtures-self/assemble.mjs DIR [--node /usr/bin/node] [--nix /usr/bin/nix]
//
// Makes DIR a flake whose package `ext` is this working tree's ext (see README.md): the template
// flake.nix and ext-self.nix from here, scripts/escape-store-literals.cjs, packages.nix from
// ../fixtures (for glibc, libgcc and dash) with the platforms.nix and mk.nix it imports, host.json (which node binary to relink, and its version),
// and payload/: dist/bundle/ (ext and its libraries, scripts/bundle.mjs), dist/ext.1 (the man page), bin/, package.json,
// templates/ and schemas/ — no node_modules. Run `npm run build` first: the bundle is what gets packaged.
// DIR is replaced if it was assembled before. Prints DIR's flake reference (path:DIR).
import { cpSync, existsSync, mkdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
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

  for (const f of ["flake.nix", "ext-self.nix"]) cpSync(join(HERE, f), join(target, f));
  cpSync(join(repo, "scripts/escape-store-literals.cjs"), join(target, "escape-store-literals.cjs"));
  for (const f of ["packages.nix", "platforms.nix", "mk.nix"]) cpSync(join(repo, "test/fixtures", f), join(target, f));
  // An input-less flake's lock, so that no Nix version tries to write one.
  writeFileSync(join(target, "flake.lock"), JSON.stringify({ nodes: { root: {} }, root: "root", version: 7 }, null, 2) + "\n");
  const nodeVersion = execFileSync(node, ["--version"], { encoding: "utf8" }).trim().replace(/^v/, "");
  // Nix for the bootstrap image's `nix` package: the host's (Debian's nix-bin), or --nix PATH.
  const nix = realpathSync(options.nix ?? "/usr/bin/nix");
  const nixVersion = execFileSync(nix, ["--version"], { encoding: "utf8" }).trim().replace(/^nix \(Nix\) /, "");
  writeFileSync(join(target, "host.json"), JSON.stringify({ nodePath: node, nodeVersion, nixPath: nix, nixVersion }, null, 2) + "\n");

  const payload = join(target, "payload");
  if (!existsSync(join(repo, "dist/bundle/main.js"))) throw new Error(`${repo}/dist/bundle is not built: run 'npm run build' first`);
  const skipMaps = (src) => !src.endsWith(".map");
  cpSync(join(repo, "dist/bundle"), join(payload, "dist/bundle"), { recursive: true, filter: skipMaps });
  // The man page (scripts/man-page.mjs, part of npm run build), installed as share/man/man1/ext.1.
  if (!existsSync(join(repo, "dist/ext.1"))) throw new Error(`${repo}/dist/ext.1 is not built: run 'npm run build' first`);
  cpSync(join(repo, "dist/ext.1"), join(payload, "dist/ext.1"));
  for (const d of ["bin", "templates", "schemas"]) cpSync(join(repo, d), join(payload, d), { recursive: true });
  cpSync(join(repo, "package.json"), join(payload, "package.json"));
  return `path:${target}`;
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const dir = args.find((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--"));
  const opt = (name) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
  if (!dir) {
    console.error("usage: node test/fixtures-self/assemble.mjs DIR [--node /usr/bin/node] [--nix /usr/bin/nix]");
    process.exit(2);
  }
  console.log(assemble(dir, { ...(opt("--node") ? { node: opt("--node") } : {}), ...(opt("--nix") ? { nix: opt("--nix") } : {}) }));
}
