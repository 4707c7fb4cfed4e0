#!/usr/bin/env node
// node scripts/snapshot.mjs [PACKAGE_DIR] — makes ext's V8 start-up snapshot with the node running it
// (docs/startup.md). Part of `npm run build` (after scripts/bundle.mjs has written
// dist/snapshot/ext.cjs); packagers run it again where ext is installed, with the node binary ext
// will run on (test/fixtures-self/ext-self.nix), because a blob only works with the binary that made it.
//
// Writes PACKAGE_DIR/dist/snapshot/ext.blob and, last, ext.stamp, whose lines bin/ext compares with
// what it finds before it lets node see the blob:
//   1. <node path> <node size> <node mtime> <blob size> *   — against `stat` of node and the blob
//      (a shell pattern; `*` where a value is not to be compared);
//   2. the processor's feature flags as /proc/cpuinfo lists them (the text after the first ':' of
//      the first "flags" or "Features" line): V8 tags a snapshot with its version, its flags and the
//      CPU features it detected (v8.cachedDataVersionTag()), and refuses it on a processor with other
//      features (exit 14) — the same binary in an image moved to another machine, or under valgrind;
//   3. that tag, for people (not compared). A node in a Nix store path (/nix/store,
// or /usr/store once ext has relocated itself) is named by its path, whose hash covers its contents,
// so its mtime — 1 in the store, 0 in an EROFS image — is not compared. The blob's mtime is never
// compared (the store and the image reset it); its size catches a blob cut short. No stamp, no
// snapshot: bin/ext then runs bin/ext.js, so a failed build here costs speed, not correctness.
import { spawnSync } from "node:child_process";
import { cachedDataVersionTag } from "node:v8";
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
const dir = join(pkg, "dist/snapshot");
const entry = join(dir, "ext.cjs");
const blob = join(dir, "ext.blob");
const stamp = join(dir, "ext.stamp");

function fail(message) {
  console.error(`scripts/snapshot.mjs: ${message}`);
  process.exit(1);
}

// The stamp goes first and comes back last: a half-made blob is never paired with a stamp.
rmSync(stamp, { force: true });
rmSync(blob, { force: true });
if (!existsSync(entry)) fail(`${entry} is missing: run scripts/bundle.mjs first`);
const node = process.execPath;
// The stamp is a shell pattern: a node path with pattern characters (or a space) could match another file.
if (/[\s*?[\]\\]/.test(node)) fail(`node's path ${JSON.stringify(node)} has a space or a pattern character; no snapshot`);

/** What bin/ext reads of /proc/cpuinfo, the same way (`IFS= read -r`, `${line#*:}`). */
function cpuFeatures() {
  let text = "";
  try {
    text = readFileSync("/proc/cpuinfo", "latin1");
  } catch {
    // No /proc (a build sandbox without it): an empty line, which only a host without /proc matches.
  }
  const line = text.split("\n").find((l) => l.startsWith("flags") || l.startsWith("Features"));
  return line === undefined ? "" : line.slice(line.indexOf(":") + 1);
}

const temp = `${blob}.${process.pid}.tmp`;
// cwd: the snapshot records the directory it was built in; / is there on every machine.
const r = spawnSync(node, ["--snapshot-blob", temp, "--build-snapshot", entry], { cwd: "/", stdio: ["ignore", "inherit", "pipe"], encoding: "utf8" });
// Node warns that node:module and node:child_process are "not yet fully verified" in a snapshot;
// ext's start-up loads both, as the ES bundle does, and spawns and requires work after restoring
// (test/integration/startup-snapshot.test.ts runs commands both ways). Anything else is shown.
const known = /^\(node:\d+\) Warning: It's not yet fully verified whether built-in module "node:(?:module|child_process)" works in user snapshot builder scripts\.\n(?:It may still work.*\n)?(?:To request support.*\n)?(?:\(Use `node --trace-warnings.*\n)?/gm;
process.stderr.write((r.stderr ?? "").replace(known, ""));
if (r.status !== 0) {
  rmSync(temp, { force: true });
  fail(`node --build-snapshot failed (${r.status ?? r.signal})`);
}
renameSync(temp, blob);

const st = statSync(node);
const inStore = /^\/(?:nix|usr)\/store\/[0-9a-z]{32}-/.test(node);
// A package in a Nix store path may be installed with ext itself, which rewrites every "/nix/store"
// byte sequence of the image to "/usr/store" — in the blob too. The blob holds the heap of ext's
// start-up, strings and all: a "/nix/store" there that is not a store path's reference (the store
// prefix ext looks for, the patterns that validate store paths; scripts/escape-store-literals.cjs
// escapes them in the source text, but the values evaluated at build time are plain) would become
// "/usr/store", and the relocated ext would look for the wrong store. Such a blob is not stamped.
const STORE_LITERAL = /\/nix\/store(?!\/[0-9a-df-np-sv-z]{32}-)/;
if (inStore && STORE_LITERAL.test(readFileSync(blob, "latin1"))) {
  rmSync(blob);
  console.error("scripts/snapshot.mjs: the blob held /nix/store literals that relocating this package to /usr/store would rewrite; no snapshot (docs/startup.md)");
  process.exit(0);
}
const line = `${node} ${st.size} ${inStore ? "*" : Math.floor(st.mtimeMs / 1000)} ${statSync(blob).size} *`;
writeFileSync(`${stamp}.tmp`, [line, cpuFeatures(), `v8 tag ${cachedDataVersionTag().toString(16)}`].join("\n") + "\n");
renameSync(`${stamp}.tmp`, stamp);
