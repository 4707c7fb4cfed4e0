#!/usr/bin/env node
// `npm run bench`: measures ext add, ext apply, stage, pack and activation on realistic closures and
// writes bench/RESULTS.md (every figure min / median / max over repeated runs). See bench/README.md.
//
// Needs root (mount namespaces), the README's set-up (scripts/setup.sh) and network once for
// bench/fetch-debs.sh. Everything that merges runs in a private mount namespace (bench/lib/ns.js):
// the host's /usr, /var/lib/extensions and /var/lib/ext are never touched.
//
// Environment: BENCH_RUNS (repetitions of the quick measurements, default 5), BENCH_HEAVY_RUNS
// (repetitions of whole-closure measurements, default 3), BENCH_ONLY (comma-separated sections:
// add,stagepack,compression,activation,apply,growth,addlast,nixprofile,startup; and compiled, only when
// named), BENCH_NOTE (a line for RESULTS.md).
// BENCH_ONLY=startup alone needs no root and no fixtures, and keeps the other sections of the last
// RESULTS.json: its figures are kept per host (Debian 12 here, trixie through scripts/in-host.sh).
// BENCH_ONLY naming only addlast, activation, nixprofile, stagepack (PER_HOST) keeps the other sections
// too, and these sections' figures of other hosts: each is kept per host (os-release).
// BENCH_NO_FETCH=1: the .debs are already extracted (in a host-matrix tree, which binds the host's
// /var/cache/ext-bench: the tree's apt would fetch its own suite's versions, other fixtures).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from "node:fs";
import { cpus, totalmem, loadavg, release, hostname } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { openNamespace, STATE_DIRS } from "./lib/ns.js";
import { benchStartup } from "./lib/startup.js";
import { summary, fmtMs, fmtRatio, fmtBytes, fmtRate } from "./lib/stats.js";

const BENCH = dirname(fileURLToPath(import.meta.url));
// BENCH_REPO: measure another build of ext (its bin/ and dist/), e.g. a checkout of the commit before an
// optimisation, with these fixtures and this script; BENCH_OUT: where the results go.
const REPO = process.env.BENCH_REPO ?? dirname(BENCH);
const OUT = process.env.BENCH_OUT ?? join(BENCH, "RESULTS.md");
const WORK = join(BENCH, "work");
const EXT = join(REPO, "bin/ext.js");
const FLAKE = `path:${join(BENCH, "fixtures")}`;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const HEAVY = Number(process.env.BENCH_HEAVY_RUNS ?? 3);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",")) : null;
const want = (s) => ONLY === null || ONLY.has(s);

/** The package set: the one measured alone, the five big ones, then everything. */
const ONE = "git";
const FIVE = ["git", "vim", "python3", "perl", "llvm"];
const ALL = [...FIVE, "sqlite", "openssl", "xz", "zstd", "bzip2", "curl", "file", "less", "tree", "nano"];

// Offline Nix: no substituters, no registry. `build-users-group =` builds the fixtures as root: the test
// suite's chroot-store builds share the nixbld users, and Nix kills every process of a build user when
// one of its builds ends, which killed fixture builds that happened to run at the same moment.
const NIX_CONFIG = [
  "experimental-features = nix-command flakes",
  "substituters =",
  "flake-registry =",
  "warn-dirty = false",
].join("\n");
const extEnv = { ...process.env, NIX_CONFIG, EXT_SOURCE: FLAKE, NO_COLOR: "1" };

// BENCH_ONLY=compiled: CPython and git compiled from source with their prefix in the store (the test
// fixtures' compiled.nix), added from the test fixtures' flake. Opt-in, never part of the default run:
// on a machine without /var/cache/ext-fixtures/built they compile first (minutes).
const TEST_FLAKE = `path:${join(dirname(BENCH), "test/fixtures")}`;
const COMPILED = ["cpython", "git"];

const log = (m) => process.stderr.write(`bench: ${m}\n`);
const results = { sections: {} };
const loads = [];

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, ...opts });
}

function timed(fn) {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
}

function noteLoad(when) {
  loads.push({ when, load: loadavg().map((x) => x.toFixed(2)).join(" ") });
}

// ---------------------------------------------------------------------------------------------- set-up

function checkHost() {
  if (process.getuid?.() !== 0) throw new Error("npm run bench needs root (mount namespaces, systemd-sysext)");
  // mksquashfs and valgrind only for the sections that use them: a host-matrix tree has neither.
  const tools = ["nix", "nix-store", "mkfs.erofs", "fsck.erofs", "systemd-sysext", "unshare", "nsenter", "patchelf",
    ...(want("compression") ? ["mksquashfs"] : []), ...(want("apply") || want("startup") ? ["valgrind"] : [])];
  for (const tool of tools) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is missing: run 'bash scripts/setup.sh' (see README.md)`);
    }
  }
  if (!existsSync(join(REPO, "dist/image/index.js"))) throw new Error("dist/ is missing: npm run build");
}

function buildFixtures() {
  if (process.env.BENCH_NO_FETCH !== "1") {
    log("fetching the Debian packages the fixtures are made of (bench/fetch-debs.sh)");
    execFileSync("bash", [join(BENCH, "fetch-debs.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  }
  log(`building the fixture packages (${ALL.join(", ")})`);
  const { ms, value } = timed(() => sh("nix", ["build", "--no-link", "--json", ...ALL.map((p) => `${FLAKE}#${p}`)], {
    // No sandbox: the fixtures' builders use the host's /usr/bin (sh, coreutils, patchelf), and
    // Nix's own default is a sandbox on trixie and later (the bench in a host-matrix tree).
    env: { ...process.env, NIX_CONFIG: NIX_CONFIG + "\nbuild-users-group =\nsandbox = false\n" },
    stdio: ["ignore", "pipe", "inherit"],
  }));
  const built = JSON.parse(value);
  const outOf = {};
  for (const b of built) {
    const name = b.drvPath.replace(/^.*?-/, "").replace(/\.drv$/, "");
    const pkg = ALL.find((p) => name.startsWith(`${p}-`) && /^\d/.test(name.slice(p.length + 1)));
    if (pkg) outOf[pkg] = b.outputs.out;
  }
  for (const p of ALL) if (!outOf[p]) throw new Error(`nix build did not return ${p}`);
  const closureOf = (roots) => sh("nix-store", ["-qR", ...roots]).trim().split("\n").sort();
  const sizes = JSON.parse(sh("nix", ["path-info", "--json", ...closureOf(ALL.map((p) => outOf[p]))], { env: { ...process.env, NIX_CONFIG } }));
  const narSize = new Map((Array.isArray(sizes) ? sizes : Object.entries(sizes).map(([path, v]) => ({ path, ...v }))).map((e) => [e.path, e.narSize]));
  const info = (pkgs) => {
    const paths = closureOf(pkgs.map((p) => outOf[p]));
    return { paths, bytes: paths.reduce((n, p) => n + (narSize.get(p) ?? 0), 0) };
  };
  const perPackage = Object.fromEntries(ALL.map((p) => [p, info([p])]));
  const all = info(ALL);
  const files = Number(sh("sh", ["-c", `find ${all.paths.join(" ")} -type f | wc -l`]).trim());
  const symlinks = Number(sh("sh", ["-c", `find ${all.paths.join(" ")} -type l | wc -l`]).trim());
  results.fixtures = {
    buildMs: ms,
    outOf,
    perPackage: Object.fromEntries(Object.entries(perPackage).map(([p, i]) => [p, { paths: i.paths.length, bytes: i.bytes }])),
    all: { paths: all.paths.length, bytes: all.bytes, files, symlinks },
    five: { paths: info(FIVE).paths.length, bytes: info(FIVE).bytes },
  };
  return { outOf, closureOf, info };
}

/** The spec stage-pack.js reads: a closure and its packages, as ext add would stage them. */
function writeSpec(name, pkgs, fx, extensionName = "ext") {
  const file = join(WORK, `spec-${name}.json`);
  writeFileSync(file, JSON.stringify({
    closure: fx.closureOf(pkgs.map((p) => fx.outOf[p])),
    packages: pkgs.map((p) => ({ name: p, outPaths: [fx.outOf[p]], allowShadow: true })),
    extensionName,
  }));
  return file;
}

function nodeJson(args, opts = {}) {
  const out = sh("node", args, { stdio: ["ignore", "pipe", "inherit"], ...opts });
  return JSON.parse(out.trim().split("\n").pop());
}

function freshDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}

/** Lets writeback of the previous measurement finish, so it is not charged to the next one. */
function settle() {
  spawnSync("sync");
}

/** Bytes of the files under `path` that nothing else links (the rest share their inode with the store). */
function ownBytes(path) {
  if (!existsSync(path)) return 0;
  return sh("find", [path, "-type", "f", "-links", "1", "-printf", "%s\n"]).split("\n").filter(Boolean).reduce((n, x) => n + Number(x), 0);
}

function duBytes(path) {
  if (!existsSync(path)) return 0;
  return Number(sh("du", ["-sb", path]).split(/\s/)[0]);
}

// --------------------------------------------------------------------------------- ext in a namespace

let ns;
// BENCH_VARLIB: ext's state (and so its images) on another file system, e.g. a btrfs with reflinks
// mounted by the caller in a namespace of its own (bench/README.md); bench/work/varlib by default.
const STATE = process.env.BENCH_VARLIB ?? join(WORK, "varlib");

/** Nothing merged, no ext state: the directories behind /var/lib/{ext,extensions,bench} emptied. */
function resetState() {
  ns.sh("systemd-sysext unmerge >/dev/null 2>&1 || true");
  for (const d of STATE_DIRS) freshDir(join(STATE, d));
}

/** ext … in the namespace; returns wall time, the per-step timings EXT_TIMINGS wrote, and output. */
function ext(args, { allowFail = false, env = {} } = {}) {
  const timings = join(STATE, "bench/timings.jsonl");
  rmSync(timings, { force: true });
  const t0 = performance.now();
  const r = ns.run(["node", EXT, ...args], { env: { ...extEnv, EXT_TIMINGS: "/var/lib/bench/timings.jsonl", ...env }, allowFail });
  const wall = performance.now() - t0;
  const steps = existsSync(timings)
    ? readFileSync(timings, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l))
    : [];
  return { wall, steps, stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function phaseSplit(run) {
  const dur = (...names) => run.steps.filter((s) => names.includes(s.phase)).reduce((n, s) => n + (s.end - s.start), 0);
  const split = {
    total: run.wall,
    nix: dur("realise", "close"),
    stage: dur("stage"),
    pack: dur("pack"),
    verify: dur("verify"),
    activate: dur("activate", "check"),
  };
  split.other = split.total - split.nix - split.stage - split.pack - split.verify - split.activate;
  split.startup = run.steps.length > 0 ? Math.min(...run.steps.map((s) => s.start)) : NaN;
  return split;
}

function currentGeneration() {
  const cur = JSON.parse(readFileSync(join(STATE, "ext/current.json"), "utf8"));
  const id = cur.generation ?? cur.id ?? cur.current;
  return JSON.parse(readFileSync(join(STATE, `ext/generations/${id}.json`), "utf8"));
}

function collect(rows) {
  const out = {};
  for (const r of rows) for (const [k, v] of Object.entries(r)) (out[k] ??= []).push(v);
  return out;
}

// ------------------------------------------------------------------------------------------- sections

function benchAddOne(fx) {
  log(`ext add ${ONE} (${RUNS} runs, fresh state each)`);
  const rows = [];
  let image;
  for (let i = 0; i < RUNS; i++) {
    resetState();
    settle();
    const run = ext(["add", "--allow-shadow", ONE]);
    rows.push(phaseSplit(run));
    image = currentGeneration().image;
  }
  // The image works: its program runs from the merged /usr with /nix hidden.
  const check = ns.run(["unshare", "-m", "sh", "-c", `mount -t tmpfs tmpfs /nix && /usr/bin/${ONE} --version`], { allowFail: true });
  results.sections.add = {
    pkg: ONE, closure: fx.info([ONE]), phases: collect(rows), image,
    runsFromUsr: check.status === 0 ? check.stdout.trim() : `FAILED: ${check.stderr.trim()}`,
  };
}

function benchCompiled() {
  log(`ext add ${COMPILED.join(" ")} from the test fixtures (${RUNS} runs, fresh state each)`);
  const { ms, value } = timed(() => sh("nix", ["build", "--no-link", "--json", ...COMPILED.map((p) => `${TEST_FLAKE}#${p}`)], {
    env: { ...process.env, NIX_CONFIG }, stdio: ["ignore", "pipe", "inherit"],
  }));
  const outs = JSON.parse(value).map((b) => b.outputs.out);
  const paths = sh("nix-store", ["-qR", ...outs]).trim().split("\n").sort();
  const sizes = JSON.parse(sh("nix", ["path-info", "--json", ...paths], { env: { ...process.env, NIX_CONFIG } }));
  const bytes = (Array.isArray(sizes) ? sizes : Object.values(sizes)).reduce((n, e) => n + e.narSize, 0);
  const files = Number(sh("sh", ["-c", `find ${paths.join(" ")} -type f | wc -l`]).trim());
  const rows = [];
  let image;
  for (let i = 0; i < RUNS; i++) {
    resetState();
    settle();
    const run = ext(["add", "--allow-shadow", ...COMPILED], { env: { EXT_SOURCE: TEST_FLAKE } });
    rows.push(phaseSplit(run));
    image = currentGeneration().image;
  }
  const check = ns.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /nix && /usr/bin/python3 -c 'import sys; print(sys.prefix)' && /usr/bin/git --version"], { allowFail: true });
  results.sections.compiled = {
    pkgs: COMPILED, buildMs: ms, closure: { paths, bytes, files }, phases: collect(rows), image,
    runsFromUsr: check.status === 0 ? check.stdout.trim().replace(/\n/g, "; ") : `FAILED: ${check.stderr.trim()}`,
  };
}

function benchStagePack(fx) {
  log(`stage + pack of the whole closure vs cp -a (${HEAVY} runs)`);
  const startLoad = loadNow();
  const spec = writeSpec("all", ALL, fx);
  const closure = fx.closureOf(ALL.map((p) => fx.outOf[p]));
  const dir = join(WORK, "sp");
  const rows = [];
  const hashes = new Set();
  let report;
  for (let i = 0; i < HEAVY; i++) {
    freshDir(dir);
    settle();
    const sp = nodeJson([join(BENCH, "lib/stage-pack.js"), "stagepack", spec, join(dir, "stage"), join(dir, "ext.raw"), "none"]);
    hashes.add(sp.sha256);
    report = sp;
    freshDir(dir);
    settle();
    const cp = timed(() => sh("cp", ["-a", ...closure, dir]));
    freshDir(dir);
    settle();
    // What a packer that did not relocate would cost: mkfs.erofs straight on the copied tree.
    sh("cp", ["-a", ...closure, dir]);
    settle();
    const mk = timed(() => sh("mkfs.erofs", ["--quiet", "-T0", "--all-root", "-x-1", join(WORK, "plain.raw"), dir]));
    rmSync(join(WORK, "plain.raw"), { force: true });
    rows.push({ stage: sp.stageMs, pack: sp.packMs, stagePack: sp.stageMs + sp.packMs, cp: cp.ms, ratio: (sp.stageMs + sp.packMs) / cp.ms, mkfsOnly: mk.ms });
  }
  // Every optimisation keeps the bytes: the same tree staged the plain way (every file copied) must
  // give the same image.
  freshDir(dir);
  const reference = nodeJson([join(BENCH, "lib/stage-pack.js"), "stagepack", spec, join(dir, "stage"), join(dir, "ext.raw"), "none"],
    { env: { ...process.env, BENCH_REUSE: "copy" } });
  freshDir(dir);
  keepPerHost("stagepack", { bytes: fx.info(ALL).bytes, report, hashes: [...hashes], reference: reference.sha256, ...collect(rows) },
    { tool: firstLine("mkfs.erofs", ["--version"]), startLoad });
}

function availableCompressions() {
  const help = spawnSync("mkfs.erofs", ["--help"], { encoding: "utf8" });
  const text = `${help.stdout}\n${help.stderr}`;
  const m = /Available compressors are:?([^\n]*(?:\n\s+[a-z0-9, ]+)*)/i.exec(text);
  const found = m ? m[1].split(/[\s,]+/).filter((w) => /^(lz4|lz4hc|lzma|deflate|libdeflate|zstd)$/.test(w)) : [];
  return ["none", ...["lz4", "lz4hc", "lzma", "deflate", "libdeflate", "zstd"].filter((c) => found.includes(c))];
}

function benchCompression(fx) {
  const compressions = availableCompressions();
  log(`compression: ${compressions.join(", ")} and mksquashfs lz4, zstd (${HEAVY} runs each, one stage)`);
  const spec = writeSpec("all", ALL, fx);
  const dir = join(WORK, "comp");
  freshDir(dir);
  nodeJson([join(BENCH, "lib/stage-pack.js"), "stage", spec, join(dir, "stage")]);
  const out = {};
  for (const c of compressions) {
    const rows = [];
    for (let i = 0; i < HEAVY; i++) {
      rmSync(join(dir, "ext.raw"), { force: true });
      settle();
      const r = nodeJson([join(BENCH, "lib/stage-pack.js"), "pack", join(dir, "stage"), join(dir, "ext.raw"), c]);
      rows.push({ ms: r.packMs, size: r.size });
    }
    out[`mkfs.erofs ${c}`] = collect(rows);
  }
  for (const c of ["lz4", "zstd"]) {
    const rows = [];
    for (let i = 0; i < HEAVY; i++) {
      rmSync(join(dir, "sq.raw"), { force: true });
      settle();
      const t = timed(() => sh("mksquashfs", [join(dir, "stage"), join(dir, "sq.raw"), "-comp", c, "-noappend", "-no-progress", "-all-root", "-no-xattrs", "-quiet"]));
      rows.push({ ms: t.ms, size: statSync(join(dir, "sq.raw")).size });
    }
    out[`mksquashfs ${c}`] = collect(rows);
  }
  freshDir(dir);
  results.sections.compression = { bytes: fx.info(ALL).bytes, cores: cpus().length, results: out };
}

/** Whether a package's farm (bin, sbin, share/…) would hide a file of the host's /usr. */
function shadowsHost(out) {
  const r = spawnSync("sh", ["-c", `cd '${out}' && find bin sbin share -mindepth 1 \\( -type f -o -type l \\) 2>/dev/null`], { encoding: "utf8" });
  return r.stdout.split("\n").filter(Boolean).some((rel) => existsSync(`/usr/${rel}`));
}

function benchActivation(fx) {
  log(`activation vs bare systemd-sysext refresh (${RUNS} switches each way)`);
  const startLoad = loadNow();
  // The second generation adds a package whose files the host lacks: switching back from a package that
  // shadowed a host file fails ext's check (see NOTES.md), which is not what this measures.
  const extra = ALL.filter((p) => p !== ONE).find((p) => !shadowsHost(fx.outOf[p]));
  if (!extra) throw new Error("every fixture package shadows a host file; cannot measure switching");
  resetState();
  ext(["add", "--allow-shadow", ONE]);
  const a = currentGeneration();
  ext(["add", extra]);
  const b = currentGeneration();
  const rows = [];
  const images = [a, b].map((g) => `/var/lib/ext/images/${g.image.sha256}.raw`);
  const bare = { samples: [] };
  // Alternating (issue 17): ext switches a, b, then the bare refresh switches a, b, in turn, so a change
  // of load hits both. The bare loop ends on b, which is ext's current generation too.
  for (let i = 0; i < RUNS; i++) {
    for (const g of [a, b]) {
      const run = ext(["rollback", "--to", String(g.id)]);
      const split = phaseSplit(run);
      // The check alone (the post-merge check of /usr), to see what ext adds beyond the refresh.
      const check = run.steps.filter((st) => st.phase === "check").reduce((n, st) => n + (st.end - st.start), 0);
      rows.push({ activate: split.activate, check, total: split.total });
    }
    bare.samples.push(...JSON.parse(ns.run(["node", join(BENCH, "lib/refresh-loop.js"), "1", "/var/lib/extensions", "ext", ...images]).stdout).samples);
  }
  const act = collect(rows);
  keepPerHost("activation", {
    ...act, bare: bare.samples,
    ratio: summary(act.activate).median / summary(bare.samples).median,
    switched: `${ONE} ↔ ${ONE} + ${extra}`,
  }, { tool: firstLine("systemd-sysext", ["--version"]), startLoad });
}

function benchApplyNoop() {
  log("ext apply with nothing changed vs node -e 0 (alternating runs, then instruction counts)");
  resetState();
  const manifest = join(STATE, "bench/tools.json");
  writeFileSync(manifest, JSON.stringify({ version: 1, source: FLAKE, packages: { [ONE]: { allowShadow: true } } }, null, 2) + "\n");
  const apply = ["node", EXT, "apply", "/var/lib/bench/tools.json"];
  const first = ext(apply.slice(2));
  if (first.status !== 0) throw new Error(`ext apply failed: ${first.stderr}`);
  const again = ext(apply.slice(2));
  if (!/nothing to do/.test(again.stdout)) throw new Error(`the second ext apply was not a no-op: ${again.stdout}${again.stderr}`);
  const node = ["node", "-e", "0"];
  // The same ext from tsc's one-module-per-file output: what the bundle (scripts/bundle.mjs) saves.
  const unbundled = ["node", join(BENCH, "lib/unbundled.js"), REPO, ...apply.slice(2)];
  const runs = Math.max(20, RUNS * 4);
  const alternate = (a, b) => JSON.parse(ns.run(["node", join(BENCH, "lib/alternate.js"), "3", String(runs), JSON.stringify(a), JSON.stringify(b)], { env: extEnv }).stdout);
  const vsApply = alternate(node, apply);
  const vsUnbundled = existsSync(join(REPO, "dist/cli/main.js")) ? alternate(node, unbundled) : null;
  const count = (argv) => JSON.parse(ns.run(["node", join(BENCH, "lib/instructions.js"), ...argv], { env: extEnv }).stdout).instructions;
  const counts = { node: [], apply: [], unbundled: [] };
  for (let i = 0; i < 3; i++) {
    counts.node.push(count(node));
    counts.apply.push(count(apply));
    if (vsUnbundled) counts.unbundled.push(count(unbundled));
  }
  results.sections.apply = {
    node: vsApply.a,
    apply: vsApply.b,
    ratio: summary(vsApply.b).median / summary(vsApply.a).median,
    pairRatios: vsApply.b.map((t, i) => t / vsApply.a[i]),
    unbundled: vsUnbundled && { node: vsUnbundled.a, apply: vsUnbundled.b, ratio: summary(vsUnbundled.b).median / summary(vsUnbundled.a).median },
    instructions: counts,
  };
}

function benchGrowth(fx) {
  log(`ext add as the installed set grows: 1, 5, ${ALL.length} packages (${HEAVY} runs)`);
  const steps = [
    { timed: [ONE], k: 1 },
    { untimed: FIVE.slice(1, -1) },
    { timed: [FIVE.at(-1)], k: FIVE.length },
    { untimed: ALL.slice(FIVE.length, -1) },
    { timed: [ALL.at(-1)], k: ALL.length },
  ];
  // Twice: as ext runs (the stage cache keeps the last stage's store paths for the next add), and with
  // the cache removed before each timed add, i.e. staging the whole union closure as before the cache.
  const perGen = {};
  const noCache = {};
  for (let i = 0; i < HEAVY; i++) {
    for (const cached of [true, false]) {
      resetState();
      for (const s of steps) {
        settle();
        if (s.timed && !cached) ns.sh("rm -rf /var/lib/ext/staged");
        const run = ext(["add", "--allow-shadow", ...(s.timed ?? s.untimed)]);
        if (run.status !== 0) throw new Error(`ext add failed: ${run.stderr}`);
        if (!s.timed) continue;
        const split = phaseSplit(run);
        const g = currentGeneration();
        if (!cached) {
          const row = (noCache[s.k] ??= { k: s.k, add: [], build: [], sha256: g.image.sha256 });
          row.add.push(split.total);
          row.build.push(split.stage + split.pack);
          if (row.sha256 !== g.image.sha256) throw new Error(`k=${s.k}: images differ between runs`);
          continue;
        }
        const row = (perGen[s.k] ??= { k: s.k, pkg: s.timed[0], add: [], build: [], stage: [], activate: [], image: g.image.size, images: 0, sha256: g.image.sha256 });
        row.add.push(split.total);
        row.build.push(split.stage + split.pack);
        row.stage.push(split.stage);
        row.activate.push(split.activate);
        row.images = duBytes(join(STATE, "ext/images"));
        row.cache = ownBytes(join(STATE, "ext/staged"));
        // Merge time of the one image holding the whole set: a bare refresh with it linked.
        const merge = JSON.parse(ns.run(["node", join(BENCH, "lib/timeit.js"), "1", String(RUNS), "systemd-sysext", "refresh"]).stdout);
        (row.merge ??= []).push(...merge.samples);
      }
    }
  }
  // Same bytes with and without the cache (the image key would be equal too, but this is the sha256
  // of what was packed).
  for (const row of Object.values(perGen)) {
    const other = noCache[row.k];
    row.noCache = other;
    if (other && other.sha256 !== row.sha256) throw new Error(`k=${row.k}: the stage cache changed the image (${row.sha256} vs ${other.sha256})`);
  }

  // The alternative: one image per package (its own closure), all merged side by side.
  log("the alternative: one image per package");
  resetState();
  const dir = join(STATE, "bench/per-package");
  mkdirSync(dir, { recursive: true });
  const perPkg = {};
  const compression = results.sections.add?.image?.compression ?? "lz4";
  const built = {};
  for (const [idx, p] of ALL.entries()) {
    const k = idx + 1;
    const isTimed = k === 1 || k === FIVE.length || k === ALL.length;
    const spec = writeSpec(`pkg-${p}`, [p], fx, `ext-${p}`);
    const rows = [];
    for (let i = 0; i < (isTimed ? HEAVY : 1); i++) {
      freshDir(join(dir, "stage"));
      rmSync(join(dir, `ext-${p}.raw`), { force: true });
      settle();
      rows.push(nodeJson([join(BENCH, "lib/stage-pack.js"), "stagepack", spec, join(dir, "stage", "t"), join(dir, `ext-${p}.raw`), compression]));
    }
    built[p] = statSync(join(dir, `ext-${p}.raw`)).size;
    ns.sh(`ln -f /var/lib/bench/per-package/ext-${p}.raw /var/lib/extensions/ext-${p}.raw`);
    if (!isTimed) continue;
    const merge = JSON.parse(ns.run(["node", join(BENCH, "lib/timeit.js"), "1", String(RUNS), "systemd-sysext", "refresh"]).stdout);
    perPkg[k] = {
      k, pkg: p,
      build: rows.map((r) => r.stageMs + r.packMs),
      merge: merge.samples,
      image: built[p],
      images: Object.values(built).reduce((n, x) => n + x, 0),
    };
  }
  freshDir(join(dir, "stage"));
  rmSync(join(dir, "stage"), { recursive: true, force: true });
  const check = ns.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /nix && /usr/bin/git --version && /usr/bin/python3 -c 'import ssl, sqlite3' && /usr/bin/llc-14 --version >/dev/null && /usr/bin/nano --version >/dev/null"], { allowFail: true });
  resetState();
  results.sections.growth = { compression, perGeneration: Object.values(perGen), perPackage: Object.values(perPkg), perPackageRuns: check.status === 0 };
}

/** Issue 17's first goal: `ext add` of a small package with 14 installed against the same add with
 *  none, alternating (none, 14, none, 14 …) so a change of load hits both; each split by step. */
function benchAddLast() {
  const last = ALL.at(-1);
  const rest = ALL.slice(0, -1);
  log(`ext add ${last} with ${rest.length} installed vs none installed (${HEAVY} runs each, alternating)`);
  const startLoad = loadavg().map((x) => x.toFixed(2)).join(" ");
  const rows = { none: [], many: [] };
  for (let i = 0; i < HEAVY; i++) {
    for (const key of ["none", "many"]) {
      resetState();
      if (key === "many") {
        const r = ext(["add", "--allow-shadow", ...rest]);
        if (r.status !== 0) throw new Error(`ext add failed: ${r.stderr}`);
      }
      settle();
      const run = ext(["add", "--allow-shadow", last]);
      if (run.status !== 0) throw new Error(`ext add ${last} failed: ${run.stderr}`);
      const g = currentGeneration();
      rows[key].push({ ...phaseSplit(run), appended: g.image.appended ?? 0, image: g.image.size });
    }
  }
  const mkfs = (spawnSync("mkfs.erofs", ["--version"], { encoding: "utf8" }).stdout ?? "").trim().split("\n")[0];
  const previous = results.sections.addlast ?? {};
  results.sections.addlast = {
    ...previous,
    [hostLabel()]: {
      pkg: last, installed: rest.length, none: collect(rows.none), many: collect(rows.many),
      mkfs, date: new Date().toISOString().replace(/\.\d+Z$/, "Z"), load: { start: startLoad, end: loadavg().map((x) => x.toFixed(2)).join(" ") },
      limit: addLastLimit(collect(rows.none), collect(rows.many)),
    },
  };
}

/** What bounds the add with 14 installed on this host, from its own split (medians). */
function addLastLimit(none, many) {
  const median = (xs) => summary(xs).median;
  const ms = (xs) => `${(median(xs) / 1000).toFixed(2)} s`;
  const size = `${(median(many.image) / 1024 ** 2).toFixed(0)} MiB`;
  const parts = `pack ${ms(many.pack)} with ${ALL.length - 1} vs ${ms(none.pack)}, stage ${ms(many.stage)} vs ${ms(none.stage)}`;
  if (many.appended.every((a) => a === 0)) {
    return `this mkfs.erofs cannot append (no --incremental before 1.8): every add packs the ${size} union in full (${parts})`;
  }
  return `appended (${many.appended.join(", ")}), but each add writes a new ${size} image: the previous one is copied (content-addressed, perhaps active: never written in place; a reflink where the file system has them, not ext4), then hashed and fsynced (${parts})`;
}

/** ext add of a package that is already built against `nix profile install` of it into a new
 *  profile: the same closure, the same store, alternating (issue 17: ≤ 3×). Both start from nothing
 *  installed; the profile's install is what Nix itself does to "install" a built package. */
function benchNixProfile() {
  const pkg = "nano";
  log(`ext add ${pkg} vs nix profile install of it (${RUNS} runs each, alternating)`);
  const startLoad = loadNow();
  const profileDir = join(WORK, "profiles");
  const rows = { ext: [], profile: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const key of i % 2 === 0 ? ["ext", "profile"] : ["profile", "ext"]) {
      if (key === "ext") {
        resetState();
        settle();
        const run = ext(["add", "--allow-shadow", pkg]);
        if (run.status !== 0) throw new Error(`ext add ${pkg} failed: ${run.stderr}`);
        rows.ext.push(phaseSplit(run));
      } else {
        freshDir(profileDir);
        settle();
        const { ms } = timed(() => sh("nix", ["profile", "install", "--profile", join(profileDir, "p"), `${FLAKE}#${pkg}`], {
          // The profile's buildEnv is a (builtin) build: built as root without a sandbox, as the fixtures
          // are (a host-matrix tree has Nix's default sandbox and no nixbld group).
          env: { ...process.env, NIX_CONFIG: NIX_CONFIG + "\nbuild-users-group =\nsandbox = false\n" }, stdio: ["ignore", "pipe", "pipe"],
        }));
        if (!existsSync(join(profileDir, "p", "bin", pkg))) throw new Error(`nix profile install ${pkg} made no bin/${pkg}`);
        rows.profile.push(ms);
      }
    }
  }
  rmSync(profileDir, { recursive: true, force: true });
  keepPerHost("nixprofile", { pkg, ext: collect(rows.ext), profile: rows.profile }, { tool: firstLine("nix", ["--version"]), startLoad });
}

// -------------------------------------------------------------------------------------------- report

function machine() {
  const cpu = cpus();
  const pkg = (p) => {
    const r = spawnSync("dpkg-query", ["-W", "-f=${Version}", p], { encoding: "utf8" });
    return r.status === 0 ? r.stdout : "?";
  };
  // On a fresh machine /nix/store appears only when the fixtures are built (after this): ask for the
  // nearest directory that exists.
  const existing = (p) => (existsSync(p) ? p : existing(dirname(p)));
  const fs = (p) => sh("findmnt", ["-no", "FSTYPE", "-T", existing(p)]).trim();
  const dev = (p) => sh("findmnt", ["-no", "SOURCE", "-T", existing(p)]).trim();
  return {
    host: hostname(),
    cpu: `${cpu[0]?.model ?? "?"} × ${cpu.length}`,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: release(),
    storeFs: `${fs("/nix/store")} (${dev("/nix/store")})`,
    workFs: `${fs(WORK)} (${dev(WORK)})`,
    stateFs: `${fs(STATE)} (${dev(STATE)})`,
    node: process.version,
    nix: sh("nix", ["--version"]).trim(),
    erofs: `erofs-utils ${pkg("erofs-utils")}`,
    squashfs: `squashfs-tools ${pkg("squashfs-tools")}`,
    systemd: `systemd ${pkg("systemd")}`,
  };
}

function writeResults() {
  const r = results;
  const L = [];
  const m = r.machine;
  L.push("# ext benchmark results", "");
  L.push(`Written by \`npm run bench\` (bench/run.js) on ${r.date}${REPO !== dirname(BENCH) ? ` for the build of ext in ${REPO}` : ""}. Every figure is **min / median / max** over`);
  L.push(`the repeated runs named beside it; the page cache was warm (the store had just been built or read).`);
  // Sections run alone later (BENCH_ONLY) keep the rest of the page: theirs is the newer date.
  const newer = PER_HOST.flatMap((k) => Object.values(r.sections[k] ?? {})).map((h) => h?.date)
    .filter((d) => typeof d === "string" && d > r.date).sort().at(-1);
  if (newer) L.push(`Per-host sections were run alone since then (BENCH_ONLY), the newest on ${newer}: each names its own date and load.`);
  L.push("How the fixtures are made and what each figure means: [README.md](README.md).", "");
  L.push("## Machine", "");
  L.push("| | |", "|---|---|");
  for (const [k, v] of Object.entries({
    CPU: m.cpu, memory: m.memory, kernel: m.kernel, "/nix/store": m.storeFs, "bench/work (stage)": m.workFs, "/var/lib (ext's state)": m.stateFs,
    Node: m.node, Nix: m.nix, "mkfs.erofs": m.erofs, mksquashfs: m.squashfs, "systemd-sysext": m.systemd,
    "load average (1, 5, 15 min)": loads.map((l) => `${l.when}: ${l.load}`).join("; "),
  })) L.push(`| ${k} | ${v} |`);
  if (process.env.BENCH_NOTE) L.push("", `Note: ${process.env.BENCH_NOTE}`);
  L.push("");

  const fx = r.fixtures;
  if (fx) {
    L.push("## Fixtures", "");
    L.push(`${ALL.length} packages from Debian 12 .debs made into store paths (bench/fixtures): the whole closure is`);
    L.push(`**${fmtBytes(fx.all.bytes)}** in ${fx.all.paths} store paths, ${fx.all.files} files and ${fx.all.symlinks} symlinks.`, "");
    L.push("| package | closure | store paths |", "|---|---:|---:|");
    for (const p of ALL) L.push(`| ${p} | ${fmtBytes(fx.perPackage[p].bytes)} | ${fx.perPackage[p].paths} |`);
    L.push("");
  }

  const targets = [];
  const med = (xs) => summary(xs).median;
  // Only figures kept per host (a section from before issue 17 item 5 was not keyed by host).
  const perHost = (name) => hostEntries(r.sections[name]);
  const spHosts = perHost("stagepack");
  const acHosts = perHost("activation");
  const npHosts = perHost("nixprofile");
  const spRatio = (sp) => med(sp.stagePack) / med(sp.cp);
  const npRatioOf = (np) => med(np.ext.total) / med(np.profile);
  const ap = r.sections.apply;
  // Limits: issue 17's (stage + pack ≤ 1.3×, activation ≤ 1.2×, nix profile ≤ 3×).
  for (const [host, sp] of spHosts) targets.push([`stage + pack (no compression) vs cp -a of the same closure — ${host}`, "≤ 1.3× (issue 17; ≤ 2× before)", `${spRatio(sp).toFixed(2)}× (medians)`, spRatio(sp) <= 1.3]);
  if (ap) targets.push(["ext apply, nothing changed, vs node -e 0", "≤ 3×", `${ap.ratio.toFixed(2)}× (medians)`, ap.ratio <= 3]);
  for (const [host, ac] of acHosts) targets.push([`activation vs bare systemd-sysext refresh — ${host}`, "≤ 1.2× (issue 17; ≤ 1.5× before)", `${ac.ratio.toFixed(2)}× (medians)`, ac.ratio <= 1.2]);
  for (const [host, np] of npHosts) targets.push([`ext add ${np.pkg} (built) vs nix profile install of it — ${host}`, "≤ 3×", `${npRatioOf(np).toFixed(2)}× (medians)`, npRatioOf(np) <= 3]);
  if (targets.length > 0) {
    L.push("## Targets", "");
    L.push("| target | limit | measured | met |", "|---|---|---|---|");
    for (const [t, lim, got, ok] of targets) L.push(`| ${t} | ${lim} | ${got} | ${ok ? "yes" : "**no**"} |`);
    L.push("");
  }

  if (npHosts.length > 0) {
    const [, first] = npHosts[0];
    L.push(`## ext add ${first.pkg} vs nix profile install, per host (alternating runs)`, "");
    L.push(`Both of an already built ${first.pkg}, from nothing installed, in the same store. ext does what a profile does`);
    L.push("(evaluate, make sure the outputs are there, link them) and then stages the closure into an image, packs it,");
    L.push("verifies it and merges it with systemd-sysext; the split says where its time goes. Goal (issue 17): ≤ 3×.", "");
    L.push("| host | nix | runs | load (start; end) | nix profile install | ext add (wall) | ratio (medians) | goal |", "|---|---|---:|---|---|---|---:|---|");
    for (const [host, np] of npHosts) {
      L.push(`| ${host} | ${np.tool} | ${np.profile.length} each | ${np.load.start}; ${np.load.end} | ${fmtMs(np.profile)} | ${fmtMs(np.ext.total)} | **${npRatioOf(np).toFixed(2)}×** | ≤ 3×: ${npRatioOf(np) <= 3 ? "met" : "not met"} |`);
    }
    L.push("", "ext add split by step (median ms; EXT_TIMINGS):", "");
    const steps = ["nix", "stage", "pack", "verify", "activate", "other", "startup"];
    L.push("*other* is the wall time in no step (Node start-up, lock, plan, commit); *start-up* (to the first step) is part of it.", "");
    L.push(`| host | ${steps.map((k) => (k === "startup" ? "… of other: start-up" : k)).join(" | ")} |`, `|---|${steps.map(() => "---:").join("|")}|`);
    for (const [host, np] of npHosts) L.push(`| ${host} | ${steps.map((k) => (np.ext[k] ? med(np.ext[k]).toFixed(0) : "–")).join(" | ")} |`);
    L.push("");
  }

  const add = r.sections.add;
  if (add) {
    const ph = add.phases;
    L.push(`## ext add ${add.pkg} (${ph.total.length} runs, fresh state each)`, "");
    L.push(`Closure ${fmtBytes(add.closure.bytes)} in ${add.closure.paths.length} store paths; image ${fmtBytes(add.image.size)}`);
    L.push(`(compression ${add.image.compression}, the default). Phases from EXT_TIMINGS (each step's own time, journal`);
    L.push("write included); *other* is the rest of the wall time: Node start-up and module loading, argument");
    L.push("parsing, the lock, plan, commit and finalize.", "");
    L.push("| phase | time |", "|---|---|");
    for (const [k, label] of [["total", "**total (wall)**"], ["nix", "Nix (evaluate, realise, closure)"], ["stage", "stage"], ["pack", "pack"],
      ["verify", "verify"], ["activate", "activate (link, systemd-sysext refresh, check)"], ["other", "other"], ["startup", "… of which start-up until the first step"]]) {
      L.push(`| ${label} | ${fmtMs(ph[k])} |`);
    }
    L.push("", `The program runs from the merged /usr with /nix hidden: \`${add.runsFromUsr}\``, "");
  }

  const cd = r.sections.compiled;
  if (cd) {
    const ph = cd.phases;
    L.push(`## ext add ${cd.pkgs.join(" ")}: compiled from source, prefix in the store (${ph.total.length} runs, fresh state each)`, "");
    L.push(`The test fixtures' CPython 3.11.2 and git 2.39.5 (test/fixtures/compiled.nix), with \`BENCH_ONLY=compiled\`. Closure`);
    L.push(`${fmtBytes(cd.closure.bytes)} in ${cd.closure.paths.length} store paths, ${cd.closure.files} files; image ${fmtBytes(cd.image.size)} (compression ${cd.image.compression}).`);
    L.push(`nix build of both before the runs: ${fmtMs([cd.buildMs])} (already built or unpacked from /var/cache/ext-fixtures/built; compiling is in test/fixtures/README.md).`, "");
    L.push("| phase | time |", "|---|---|");
    for (const [k, label] of [["total", "**total (wall)**"], ["nix", "Nix (evaluate, realise, closure)"], ["stage", "stage"], ["pack", "pack"],
      ["verify", "verify"], ["activate", "activate (link, systemd-sysext refresh, check)"], ["other", "other"]]) {
      L.push(`| ${label} | ${fmtMs(ph[k])} |`);
    }
    L.push("", `From the merged /usr with /nix hidden: \`${cd.runsFromUsr}\``, "");
  }

  if (spHosts.length > 0) {
    L.push("## Stage + pack of the whole closure vs cp -a, per host (no compression)", "");
    L.push("Each run does stage + pack, then cp -a, in turn (so a change of load hits both). Goal (issue 17): ≤ 1.3× (the Targets table's older limit was ≤ 2×).", "");
    L.push("| host | mkfs.erofs | runs | load (start; end) | stage + pack | cp -a | ratio (medians) | per-run ratio | goal |", "|---|---|---:|---|---|---|---:|---|---|");
    for (const [host, sp] of spHosts) {
      L.push(`| ${host} | ${sp.tool} | ${sp.ratio.length} | ${sp.load.start}; ${sp.load.end} | ${fmtMs(sp.stagePack)} | ${fmtMs(sp.cp)} | **${spRatio(sp).toFixed(2)}×** | ${fmtRatio(sp.ratio)} | ≤ 1.3×: ${spRatio(sp) <= 1.3 ? "met" : "not met"} |`);
    }
    L.push("");
  }
  for (const [host, sp] of spHosts) {
    L.push(`### ${host}, ${sp.date} (${sp.ratio.length} runs)`, "");
    L.push(`${fmtBytes(sp.bytes)}: ${sp.report.files} files (${sp.report.rewritten} rewritten /nix/store → /usr/store), ${sp.report.symlinks} symlinks.`);
    L.push("Stage and pack run in a fresh Node process through dist/image (stage() with the options `ext add` uses);");
    L.push("pack includes the fsync of the image, cp -a does not sync. `sync` runs, untimed, before each measurement.", "");
    L.push("| | time | throughput |", "|---|---|---|");
    L.push(`| stage | ${fmtMs(sp.stage)} | ${fmtRate(sp.bytes, sp.stage)} |`);
    L.push(`| pack (mkfs.erofs, none) | ${fmtMs(sp.pack)} | ${fmtRate(sp.bytes, sp.pack)} |`);
    L.push(`| **stage + pack** | ${fmtMs(sp.stagePack)} | ${fmtRate(sp.bytes, sp.stagePack)} |`);
    L.push(`| cp -a (the copy limit) | ${fmtMs(sp.cp)} | ${fmtRate(sp.bytes, sp.cp)} |`);
    L.push(`| **ratio (stage + pack) / cp -a**, per run | ${fmtRatio(sp.ratio)} | |`);
    L.push(`| for reference: mkfs.erofs straight on a cp -a'd tree (no relocation) | ${fmtMs(sp.mkfsOnly)} | ${fmtRate(sp.bytes, sp.mkfsOnly)} |`);
    const same = sp.hashes.length === 1 && sp.hashes[0] === sp.reference;
    L.push("", `Image sha256 in every run: ${sp.hashes.map((h) => `\`${h}\``).join(", ")}; staged with every file copied`);
    L.push(`(no hard links): \`${sp.reference}\` — ${same ? "**identical**" : "**DIFFERENT**"}.`, "");
  }

  const co = r.sections.compression;
  if (co) {
    L.push(`## Compression (${fmtBytes(co.bytes)} closure, staged once; ${HEAVY} runs each)`, "");
    L.push(`mkfs.erofs ${m.erofs.replace("erofs-utils ", "")} compresses on one thread; mksquashfs uses all ${co.cores} cores. Same staged tree for all.`, "");
    L.push("| packer | time | size | size vs none |", "|---|---|---:|---:|");
    const none = summary(co.results["mkfs.erofs none"]?.size ?? []).median;
    for (const [k, v] of Object.entries(co.results)) {
      const size = summary(v.size).median;
      L.push(`| ${k} | ${fmtMs(v.ms)} | ${fmtBytes(size)} | ${(size / none * 100).toFixed(0)} % |`);
    }
    L.push("");
  }

  if (acHosts.length > 0) {
    L.push("## Activation vs a bare systemd-sysext refresh, per host", "");
    L.push("Goal (issue 17): ≤ 1.2× (the older limit was ≤ 1.5×). ext's two switches and two bare refreshes (bench/lib/refresh-loop.js) alternate, except in figures dated before 2026-12-02T13:10Z (all ext switches first).", "");
    L.push("| host | systemd-sysext | switches | load (start; end) | ext activation | bare refresh | ratio (medians) | goal |", "|---|---|---:|---|---|---|---:|---|");
    for (const [host, ac] of acHosts) {
      L.push(`| ${host} | ${ac.tool} | ${ac.activate.length} each | ${ac.load.start}; ${ac.load.end} | ${fmtMs(ac.activate)} | ${fmtMs(ac.bare)} | **${ac.ratio.toFixed(2)}×** | ≤ 1.2×: ${ac.ratio <= 1.2 ? "met" : "not met"} |`);
    }
    L.push("");
    for (const [host, ac] of acHosts) if (ac.check) L.push(`- ${host}: of ext's activation, the check of /usr after the merge took ${fmtMs(ac.check)}.`);
    if (acHosts.some(([, ac]) => ac.check)) L.push("");
  }
  for (const [host, ac] of acHosts) {
    L.push(`### ${host}, ${ac.date} (${ac.activate.length} switches each)`, "");
    L.push(`ext: the activate and check steps of \`ext rollback --to N\`, switching between two generations (${ac.switched}):`);
    L.push("hard link to a temporary name, rename over /var/lib/extensions/ext.raw, `systemd-sysext refresh`, then the check");
    L.push("that /usr shows the generation. Bare: the same link switch untimed, then only `systemd-sysext refresh`, timed.", "");
    L.push("| | time |", "|---|---|");
    L.push(`| ext activation (activate + check) | ${fmtMs(ac.activate)} |`);
    L.push(`| bare systemd-sysext refresh | ${fmtMs(ac.bare)} |`);
    L.push(`| ratio of medians | ${ac.ratio.toFixed(2)}× |`);
    L.push(`| whole \`ext rollback\` (wall) | ${fmtMs(ac.total)} |`, "");
  }

  if (ap) {
    L.push(`## ext apply with nothing changed vs node -e 0 (${ap.apply.length} runs each, alternating, after 3 warm-up pairs)`, "");
    L.push("The two commands run in turn (bench/lib/alternate.js), so both see the same momentary load; *per-pair ratio* is");
    L.push("each ext run over the node run just before it. *Unbundled* is the same ext from tsc's one-module-per-file");
    L.push("output (dist/cli/main.js), i.e. without scripts/bundle.mjs, measured against node -e 0 in its own alternation.", "");
    L.push("| | time |", "|---|---|");
    L.push(`| node -e 0 | ${fmtMs(ap.node)} |`);
    L.push(`| ext apply tools.json (nothing to do) | ${fmtMs(ap.apply)} |`);
    L.push(`| ratio of medians | ${ap.ratio.toFixed(2)}× |`);
    if (ap.pairRatios) L.push(`| per-pair ratio | ${fmtRatio(ap.pairRatios)} |`);
    if (ap.unbundled) {
      L.push(`| unbundled ext apply (its node -e 0: ${fmtMs(ap.unbundled.node)}) | ${fmtMs(ap.unbundled.apply)} |`);
      L.push(`| unbundled: ratio of medians | ${ap.unbundled.ratio.toFixed(2)}× |`);
    }
    L.push("");
    const ins = ap.instructions;
    if (ins && ins.node.length > 0) {
      const med = (xs) => summary(xs).median;
      const fmtIns = (xs) => `${(med(xs) / 1e6).toFixed(0)} M`;
      L.push("Instructions executed (valgrind --tool=callgrind, median of 3; independent of load):", "");
      L.push("| | instructions | vs node -e 0 |", "|---|---:|---:|");
      L.push(`| node -e 0 | ${fmtIns(ins.node)} | 1.00× |`);
      L.push(`| ext apply (bundle) | ${fmtIns(ins.apply)} | ${(med(ins.apply) / med(ins.node)).toFixed(2)}× |`);
      if (ins.unbundled.length > 0) L.push(`| ext apply (unbundled) | ${fmtIns(ins.unbundled)} | ${(med(ins.unbundled) / med(ins.node)).toFixed(2)}× |`);
      L.push("");
    }
  }

  const hosts = r.sections.addlast ? Object.entries(r.sections.addlast) : [];
  if (hosts.length > 0) {
    const med = (xs) => summary(xs).median;
    const [, first] = hosts[0];
    L.push(`## ext add ${first.pkg} with ${first.installed} installed vs none, per host (alternating runs, the default path)`, "");
    L.push("Goal (issue 17): ≤ 1.3×. *appended*: how many appends the add's image is since its last full pack (1: appended to the");
    L.push("previous image, mkfs.erofs ≥ 1.8, src/image/append.ts; 0: packed in full, where this mkfs.erofs cannot append).", "");
    L.push("| host | mkfs.erofs | runs | load (start; end) | ratio (medians) | goal | limit on this host |", "|---|---|---:|---|---:|---|---|");
    for (const [host, al] of hosts) {
      const ratio = med(al.many.total) / med(al.none.total);
      L.push(`| ${host} | ${al.mkfs} | ${al.none.total.length} each | ${al.load.start}; ${al.load.end} | **${ratio.toFixed(2)}×** | ${ratio <= 1.3 ? "met" : "not met"} | ${al.limit ?? "–"} |`);
    }
    L.push("");
    for (const [host, al] of hosts) {
      L.push(`${host}, ${al.date}:`, "");
      L.push("| installed | ext add (wall) | Nix | stage | pack | verify | activate | other | appended | image |", "|---|---|---|---|---|---|---|---|---:|---:|");
      for (const [label, row] of [["none", al.none], [String(al.installed), al.many]]) {
        L.push(`| ${label} | ${fmtMs(row.total)} | ${fmtMs(row.nix)} | ${fmtMs(row.stage)} | ${fmtMs(row.pack)} | ${fmtMs(row.verify)} | ${fmtMs(row.activate)} | ${fmtMs(row.other)} | ${row.appended.join(", ")} | ${fmtBytes(med(row.image))} |`);
      }
      L.push("");
    }
  }

  const gr = r.sections.growth;
  if (gr) {
    L.push(`## ext add as the installed set grows (${HEAVY} runs; compression ${gr.compression})`, "");
    L.push("**One image per generation** (what ext does): `ext add P` when the set reaches k packages packs the union");
    L.push("closure again; the merge is one image. Store paths staged by the previous add come from the stage cache");
    L.push("(/var/lib/ext/staged), so only P's new store paths are staged. *Without cache*: the same add with the cache");
    L.push("removed first, i.e. staging the whole union (how ext worked before the cache); same image sha256 both ways");
    L.push("(checked). *disk* is /var/lib/ext/images with every generation's image kept (what rollback needs; `ext gc`");
    L.push("removes the rest); *cache* is the stage cache's own bytes (the rest of it is hard links into the store).", "");
    L.push("| k | package added | ext add (wall) | build (stage + pack) | … of it stage | without cache: ext add | without cache: build | activate | merge (bare refresh) | image | disk, all generations | cache |",
      "|---:|---|---|---|---|---|---|---|---|---:|---:|---:|");
    for (const g of gr.perGeneration) {
      const nc = g.noCache;
      L.push(`| ${g.k} | ${g.pkg} | ${fmtMs(g.add)} | ${fmtMs(g.build)} | ${g.stage ? fmtMs(g.stage) : "–"} | ${nc ? fmtMs(nc.add) : "–"} | ${nc ? fmtMs(nc.build) : "–"} | ${fmtMs(g.activate)} | ${fmtMs(g.merge)} | ${fmtBytes(g.image)} | ${fmtBytes(g.images)} | ${g.cache !== undefined ? fmtBytes(g.cache) : "–"} |`);
    }
    L.push("", "**One image per package** (the alternative, simulated with the same stage and pack): adding the k-th package");
    L.push("builds only its own closure, but shared dependencies are stored once per image and systemd-sysext merges k images.", "");
    L.push("| k | package added | build (stage + pack) | merge k images (bare refresh) | its image | disk, k images |", "|---:|---|---|---|---:|---:|");
    for (const g of gr.perPackage) {
      L.push(`| ${g.k} | ${g.pkg} | ${fmtMs(g.build)} | ${fmtMs(g.merge)} | ${fmtBytes(g.image)} | ${fmtBytes(g.images)} |`);
    }
    L.push("", `All ${ALL.length} per-package images merged, programs run with /nix hidden: ${gr.perPackageRuns ? "yes" : "**no**"}.`, "");
  }

  if (r.sections.startup) renderStartup(L, r.sections.startup);

  if (r.notes) L.push("## Notes", "", r.notes.trim(), "");
  writeFileSync(OUT, L.join("\n"));
}

// ---------------------------------------------------------------------------------------------- start-up

/** The host's name for the start-up table: os-release's PRETTY_NAME (Debian 12 here, trixie in its tree). */
function hostLabel() {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"));
    if (m) return m[1];
  } catch {
    /* no os-release */
  }
  return hostname();
}

/** Sections kept per host (by os-release) in RESULTS.json, like addlast: run alone they keep the rest. */
const PER_HOST = ["addlast", "activation", "nixprofile", "stagepack"];
const loadNow = () => loadavg().map((x) => x.toFixed(2)).join(" ");
const nowIso = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const firstLine = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n")[0];
};

/** A per-host section's figures, host by host; a section from before issue 17 item 5 was not keyed by
 *  host, and its fields are left out. */
const hostEntries = (section) => Object.entries(section ?? {}).filter(([, v]) => v && typeof v === "object" && typeof v.date === "string" && v.load);

/** This host's figures of a per-host section replace its old ones; the other hosts' are kept (an old
 *  section not keyed by host is dropped). */
function keepPerHost(section, data, { tool, startLoad }) {
  const hosts = Object.fromEntries(hostEntries(results.sections[section]));
  results.sections[section] = { ...hosts, [hostLabel()]: { ...data, tool, date: nowIso(), load: { start: startLoad, end: loadNow() } } };
}

function runStartup() {
  const host = hostLabel();
  log(`start-up on ${host}`);
  const data = benchStartup({ repo: REPO, runs: Math.max(20, RUNS * 4), log });
  const previous = results.sections.startup ?? {};
  results.sections.startup = { ...previous, [host]: { ...data, date: new Date().toISOString().replace(/\.\d+Z$/, "Z"), load: loadavg()[0].toFixed(2) } };
}

/** BENCH_ONLY=startup: this host's start-up figures replace its old ones; everything else is kept. */
function startupOnly() {
  const saved = OUT.replace(/\.md$/, "") + ".json";
  if (existsSync(saved)) {
    const old = JSON.parse(readFileSync(saved, "utf8"));
    Object.assign(results, old);
    loads.push(...(old.loads ?? []));
  }
  if (results.machine === undefined) {
    mkdirSync(WORK, { recursive: true });
    results.date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    try {
      results.machine = machine();
    } catch {
      // A host-matrix tree has no /nix/store before Nix first runs: the start-up figures need none.
      const cpu = cpus();
      results.machine = { host: hostname(), cpu: `${cpu[0]?.model ?? "?"} × ${cpu.length}`, memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`, kernel: release(), node: process.version };
    }
    noteLoad("start");
  }
  runStartup();
  const notes = join(BENCH, "NOTES.md");
  if (existsSync(notes)) results.notes = readFileSync(notes, "utf8");
  writeFileSync(saved, JSON.stringify({ ...results, repo: results.repo ?? REPO, loads }, null, 2));
  writeResults();
  log(`wrote ${OUT}`);
}

/** BENCH_ONLY=compiled: the compiled fixtures' figures replace the old ones; everything else is kept
 *  (the bench's own fixtures are not built). */
function compiledOnly() {
  const saved = OUT.replace(/\.md$/, "") + ".json";
  if (existsSync(saved)) {
    const old = JSON.parse(readFileSync(saved, "utf8"));
    Object.assign(results, old);
    loads.push(...(old.loads ?? []));
  }
  checkHost();
  mkdirSync(WORK, { recursive: true });
  results.machine ??= machine();
  noteLoad("compiled start");
  ns = openNamespace(STATE);
  try {
    benchCompiled();
  } finally {
    try {
      resetState();
    } catch {
      /* the namespace is going away anyway */
    }
    ns.close();
  }
  noteLoad("compiled end");
  const notes = join(BENCH, "NOTES.md");
  if (existsSync(notes)) results.notes = readFileSync(notes, "utf8");
  writeFileSync(saved, JSON.stringify({ ...results, repo: results.repo ?? REPO, loads }, null, 2));
  writeResults();
  log(`wrote ${OUT}`);
}

function renderStartup(L, st) {
  const med = (xs) => summary(xs).median;
  const M = (xs) => `${(med(xs) / 1e6).toFixed(0)} M`;
  L.push("## Start-up: ext vs node -e 0, plain and from the V8 start-up snapshot", "");
  L.push("Nothing installed (a temp --root; `apply` of an empty tools.json that is already applied: nothing to do).");
  L.push("*plain*: `node bin/ext.js`; *snapshot*: `bin/ext`, the launcher that checks the blob and runs");
  L.push("`node --snapshot-blob dist/snapshot/ext.blob` (docs/startup.md). Instructions: valgrind --tool=callgrind,");
  L.push("every process of the run summed, median of the rounds (the counted snapshot runs use a blob made under valgrind:");
  L.push("V8 refuses one made on the real CPU). *check*: the launcher with its \`exec\`s made \`exit 0\` (sh, /proc/cpuinfo, stat).");
  L.push("Limit (issue 17): ≤ 1.5× node -e 0 for list, status and a no-op apply.", "");
  for (const [host, d] of Object.entries(st)) {
    const n = med(d.counts.node);
    L.push(`### ${host} (node ${d.node}, ${d.date}, load ${d.load}; blob ${fmtBytes(d.blobBytes)})`, "");
    L.push("| | plain | vs node -e 0 | snapshot | vs node -e 0 | limit | met |", "|---|---:|---:|---:|---:|---|---|");
    L.push(`| node -e 0 | ${M(d.counts.node)} | 1.00× | | | | |`);
    for (const c of ["version", "list", "status", "apply"]) {
      const p = d.counts[`${c} plain`];
      const s = d.counts[`${c} snapshot`];
      const limited = c !== "version";
      const ratio = med(s) / n;
      L.push(`| ext ${c === "version" ? "--version" : c} | ${M(p)} | ${(med(p) / n).toFixed(2)}× | ${M(s)} | ${ratio.toFixed(2)}× | ${limited ? "≤ 1.5×" : "–"} | ${limited ? (ratio <= 1.5 ? "yes" : "**no**") : "–"} |`);
    }
    L.push(`| check (the launcher without its exec) | | | ${(med(d.counts.check) / 1e6).toFixed(2)} M | ${(med(d.counts.check) / n * 100).toFixed(2)} % | | |`, "");
    const t = d.times;
    L.push("| time, alternating with node -e 0 | node -e 0 | ext apply (no-op) | ratio of medians |", "|---|---|---|---:|");
    for (const k of ["apply plain", "apply snapshot"]) L.push(`| ${k.replace("apply ", "")} | ${fmtMs(t[k].a)} | ${fmtMs(t[k].b)} | ${(med(t[k].b) / med(t[k].a)).toFixed(2)}× |`);
    L.push("");
  }
}

// ---------------------------------------------------------------------------------------------- main

async function main() {
  if (process.argv.includes("--render")) {
    // RESULTS.md again from the raw figures beside it (after editing NOTES.md), without measuring.
    const saved = JSON.parse(readFileSync(OUT.replace(/\.md$/, "") + ".json", "utf8"));
    Object.assign(results, saved);
    loads.push(...saved.loads);
    const notes = join(BENCH, "NOTES.md");
    if (existsSync(notes)) results.notes = readFileSync(notes, "utf8");
    writeResults();
    log(`wrote ${OUT}`);
    return;
  }
  if (ONLY !== null && ONLY.size === 1 && ONLY.has("startup")) return startupOnly();
  if (ONLY !== null && ONLY.size === 1 && ONLY.has("compiled")) return compiledOnly();
  checkHost();
  mkdirSync(WORK, { recursive: true });
  // BENCH_ONLY=addlast alone keeps the other sections and the other hosts' addlast figures (it is
  // run here and in the trixie tree, like start-up).
  // The same for activation, nixprofile and stagepack, alone or together (BENCH_ONLY=activation,nixprofile,stagepack).
  const keepOthers = ONLY !== null && [...ONLY].every((s) => PER_HOST.includes(s)) && existsSync(OUT.replace(/\.md$/, "") + ".json");
  if (keepOthers) {
    const old = JSON.parse(readFileSync(OUT.replace(/\.md$/, "") + ".json", "utf8"));
    Object.assign(results, old);
    loads.push(...(old.loads ?? []));
  } else {
    results.date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    results.machine = machine();
  }
  noteLoad("start");
  const fx = buildFixtures();
  ns = openNamespace(STATE);
  try {
    if (want("add")) benchAddOne(fx);
    if (ONLY?.has("compiled")) benchCompiled();
    if (want("stagepack")) benchStagePack(fx);
    if (want("compression")) benchCompression(fx);
    if (want("activation")) benchActivation(fx);
    if (want("apply")) benchApplyNoop();
    if (want("growth")) benchGrowth(fx);
    if (want("startup")) runStartup();
    if (want("addlast")) benchAddLast();
    if (want("nixprofile")) benchNixProfile();
  } finally {
    try {
      resetState();
    } catch {
      /* the namespace is going away anyway */
    }
    ns.close();
  }
  noteLoad("end");
  const notes = join(BENCH, "NOTES.md");
  if (existsSync(notes)) results.notes = readFileSync(notes, "utf8");
  writeFileSync(OUT.replace(/\.md$/, "") + ".json", JSON.stringify({ ...results, repo: REPO, loads }, null, 2));
  writeResults();
  log(`wrote ${OUT}`);
}

await main();
