import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import { chmod, lstat, mkdir, readdir, rm, rmdir, symlink, unlink, writeFile } from "node:fs/promises";
import { posix } from "node:path";
import { CollisionError, errnoCode, UnsafeImageError } from "../errors.js";
import type { HostView } from "./host.js";
import { DIR_MODE, EXEC_MODE } from "./copy.js";
import { relocatedPath } from "./store-paths.js";
import { wrapperScript } from "./wrapper.js";
import type { FarmPackage } from "./types.js";
import type { FarmRecord } from "./stage-cache.js";

// The farm makes a package's commands, man pages, completions, desktop files and icons appear where the
// host's tools look for them, as symlinks into /usr/store. Directories are real (so several packages and
// the host can share usr/share/man/man1); only leaves are links.

interface FarmRule {
  /** Directory inside a package output. */
  from: string;
  /** Where its entries go in the image. */
  to: string;
  /** Link every file of the subtree (man pages, icons) rather than the directory's own entries. */
  recursive: boolean;
}

export const FARM_RULES: readonly FarmRule[] = [
  { from: "bin", to: "usr/bin", recursive: false },
  // On merged-/usr hosts usr/sbin → bin; HostView.placeDirectory sends these to usr/bin there.
  { from: "sbin", to: "usr/sbin", recursive: false },
  { from: "share/man", to: "usr/share/man", recursive: true },
  { from: "share/bash-completion/completions", to: "usr/share/bash-completion/completions", recursive: false },
  { from: "share/zsh/site-functions", to: "usr/share/zsh/site-functions", recursive: false },
  { from: "share/fish/vendor_completions.d", to: "usr/share/fish/vendor_completions.d", recursive: false },
  { from: "share/applications", to: "usr/share/applications", recursive: false },
  { from: "share/icons", to: "usr/share/icons", recursive: true },
];

// Commands are links, except for programs that find their library from the path they were started by
// without resolving a link: the farm would send them to the host's /usr/lib. CPython does this for a
// venv (pyvenv.cfg's `home` is the directory of the path python was started by, /usr/bin, and the
// venv's python then looks for /usr/lib/pythonX.Y: the host's standard library, or none). Such a
// command is a two-line /bin/sh wrapper that execs the package's own entry by its /usr/store path:
// argv[0] is that path (same basename), so the program finds its files beside it. Recognised by the
// landmark CPython itself looks for (docs/design.md, "Commands started by their own path").
const STARTED_BY_PATH: readonly { name: RegExp; landmark: (storeRoot: string) => Promise<boolean> }[] = [
  { name: /^python\d+(\.\d+)*$/, landmark: hasPythonStdlib },
];

async function hasPythonStdlib(storeRoot: string): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(`${storeRoot}/lib`);
  } catch {
    return false;
  }
  for (const n of names.filter((n) => /^python\d+\.\d+$/.test(n))) {
    if (await lstat(`${storeRoot}/lib/${n}/os.py`).then((st) => st.isFile(), () => false)) return true;
  }
  return false;
}

const MAX_DEPTH = 32;
const MAX_LINK_DEPTH = 40;

interface Candidate {
  rel: string;
  /** Absolute symlink target, /usr/store/…, valid once the image is merged. */
  target: string;
  pkg: FarmPackage;
  /** Where the package's own entry leads when that is outside the image's closure (a host path, or a
   *  store path the image does not hold). */
  outside?: string;
  /** A /bin/sh wrapper that execs this /usr/store path instead of a link (STARTED_BY_PATH). */
  wrapper?: string;
}

export interface FarmResult {
  links: string[];
  shadowed: string[];
  /** Those of `links` that are wrappers, not symlinks. */
  wrappers: string[];
}

export interface FarmOptions {
  stageDir: string;
  packages: readonly FarmPackage[];
  host: HostView;
  /** Logical store paths that were staged; every package output must be one of them. */
  staged: ReadonlySet<string>;
}

/**
 * Plans the farm and makes it in the stage. With `previous` (the farm of the last stage, taken back
 * from the stage cache into the stage's usr/), only the difference is made: the links and directories
 * that went are removed and the new ones made, so an add costs its own links, not the union's. The
 * result is then checked name by name against the plan, and anything unexpected (a damaged cache)
 * costs a farm made from scratch, never a different tree.
 */
export async function buildFarm(options: FarmOptions, previous?: FarmRecord): Promise<FarmResult & { record: FarmRecord }> {
  const plan = await planFarm(options);
  const record = farmRecord(plan);
  let made = false;
  if (previous !== undefined) {
    try {
      await updateFarm(options.stageDir, previous, plan);
      made = await farmMatches(options.stageDir, record);
    } catch {
      made = false;
    }
    if (!made) await clearFarm(options.stageDir);
  }
  if (!made) await createFarm(options.stageDir, plan);
  return { links: plan.links.map((l) => l.rel), shadowed: plan.shadowed, wrappers: plan.links.filter((l) => l.wrapper !== undefined).map((l) => l.rel), record };
}

export function farmRecord(plan: FarmPlan): FarmRecord {
  const tops = [...new Set(plan.directories.map((d) => d.split("/").slice(0, 2).join("/")))].sort(compare);
  return {
    links: plan.links.map((l) => ({ rel: l.rel, target: l.target, ...(l.wrapper !== undefined ? { wrapper: l.wrapper } : {}) })),
    directories: plan.directories,
    tops,
  };
}

const linkKey = (l: { target: string; wrapper?: string }) => `${l.target}\0${l.wrapper ?? ""}`;

async function updateFarm(stageDir: string, previous: FarmRecord, plan: FarmPlan): Promise<void> {
  const want = new Map(plan.links.map((l) => [l.rel, linkKey(l)]));
  const had = new Map(previous.links.map((l) => [l.rel, linkKey(l)]));
  await Promise.all(previous.links.filter((l) => want.get(l.rel) !== linkKey(l)).map((l) => unlink(posix.join(stageDir, l.rel))));
  const stays = new Set(plan.directories);
  // Children before their parents; a directory that went must be empty by now.
  for (const d of previous.directories.filter((d) => !stays.has(d)).sort(compare).reverse()) await rmdir(posix.join(stageDir, d));
  await createFarm(stageDir, { ...plan, links: plan.links.filter((l) => had.get(l.rel) !== linkKey(l)) });
}

/** Every farm directory holds exactly the names the record gives it, and usr/ nothing else but store. */
async function farmMatches(stageDir: string, record: FarmRecord): Promise<boolean> {
  const expected = new Map<string, Set<string>>([["usr", new Set(["store", ...record.tops.map((t) => posix.basename(t))])]]);
  for (const d of record.directories) expected.set(d, new Set());
  for (const entry of [...record.directories, ...record.links.map((l) => l.rel)]) expected.get(posix.dirname(entry))?.add(posix.basename(entry));
  for (const [dir, names] of expected) {
    const have = await readdir(posix.join(stageDir, dir));
    if (have.length !== names.size || have.some((n) => !names.has(n))) return false;
  }
  return true;
}

/** Removes whatever the stage's usr/ holds besides the store: a farm that could not be updated. */
async function clearFarm(stageDir: string): Promise<void> {
  const usr = posix.join(stageDir, "usr");
  for (const name of await readdir(usr)) if (name !== "store") await rm(posix.join(usr, name), { recursive: true, force: true });
}

export interface FarmPlan {
  links: Candidate[];
  directories: string[];
  shadowed: string[];
}

export async function planFarm(options: FarmOptions): Promise<FarmPlan> {
  const { stageDir, host } = options;
  const resolver = new StageResolver(stageDir);
  const candidates: Candidate[] = [];
  for (const pkg of options.packages) {
    for (const out of pkg.outPaths) {
      if (!options.staged.has(out)) {
        throw new UnsafeImageError(`output ${out} of package '${pkg.name}' is not in the closure`, {
          hint: "its farm links would point nowhere; this is a bug in how the closure was computed",
        });
      }
      for (const rule of FARM_RULES) {
        const from = `${relocatedPath(out)}/${rule.from}`;
        const dir = resolver.resolve(from);
        if (dir?.isDir) collect(resolver, dir.physical, from, "", rule, pkg, candidates, 0);
      }
    }
  }

  // Place each link's directory where the host has it, then decide every path among its providers.
  const byRel = new Map<string, Candidate[]>();
  for (const c of candidates) {
    const dir = await host.placeDirectory(posix.dirname(c.rel));
    const rel = `${dir}/${posix.basename(c.rel)}`;
    const list = byRel.get(rel);
    if (list) list.push({ ...c, rel });
    else byRel.set(rel, [{ ...c, rel }]);
  }
  const winners: Candidate[] = [];
  const collisions: string[] = [];
  for (const [rel, list] of [...byRel].sort(([a], [b]) => compare(a, b))) {
    const top = Math.max(...list.map((c) => c.pkg.priority ?? 0));
    const best = list.filter((c) => (c.pkg.priority ?? 0) === top).sort((a, b) => compare(a.pkg.name, b.pkg.name));
    const targets = new Set(best.map((c) => c.target));
    if (targets.size > 1) {
      collisions.push(`${rel}: ${best.map((c) => `'${c.pkg.name}' (${c.target})`).join(" and ")}`);
      continue;
    }
    winners.push(best[0]!);
  }
  if (collisions.length > 0) {
    throw new CollisionError(
      collisions.length === 1 ? `two packages provide ${collisions[0]}` : `${collisions.length} files are provided by more than one package`,
      { details: collisions.join("\n"), hint: "give one of the packages a higher priority, or remove one of them" },
    );
  }

  const directories = new Set<string>();
  for (const w of winners) {
    for (let d = posix.dirname(w.rel); d !== "." && d !== "usr"; d = posix.dirname(d)) directories.add(d);
  }
  const clashes = winners.filter((w) => directories.has(w.rel));
  if (clashes.length > 0) {
    throw new CollisionError(`'${clashes[0]!.pkg.name}' links ${clashes[0]!.rel}, which another package needs as a directory`, {
      details: clashes.map((c) => `${c.rel} ('${c.pkg.name}')`).join("\n"),
    });
  }
  const sortedDirs = [...directories].sort(compare);
  for (const d of sortedDirs) await host.assertDirectoryAllowed(d);

  // A command, man page or completion the image puts in /usr must come from the image. A link out of
  // the closure (/usr/bin/x → /etc/shadow, → /tmp/x, or via ../ out of the store) would make /usr show
  // a host file — one anybody may write, perhaps — under a name the host's tools trust. Refused unless
  // the package may replace what the host's /usr shows anyway (allowShadow).
  const escaping = winners.filter((w) => w.outside !== undefined && !w.pkg.allowShadow);
  if (escaping.length > 0) {
    const lines = escaping.map((w) => `/${w.rel} → ${w.outside} (from '${w.pkg.name}')`);
    throw new UnsafeImageError(
      escaping.length === 1 ? `the image would link ${lines[0]}, outside the package's closure` : `the image would link ${escaping.length} files outside their packages' closures`,
      { details: lines.join("\n"), hint: "allow it for that package (allowShadow) if showing that host path in /usr is intended; see docs/design.md" },
    );
  }

  // All at once (a lstat, and with ext's set merged a readlink, per link): the answers are in order.
  const shadows = await Promise.all(winners.map(async (w) => (await host.kind(w.rel)) !== "missing" && !(await host.isOwnLink(w.rel))));
  const shadowed: string[] = [];
  const refused: string[] = [];
  for (const [i, w] of winners.entries()) {
    if (!shadows[i]) continue;
    if (w.pkg.allowShadow) shadowed.push(w.rel);
    else refused.push(`/${w.rel} (from '${w.pkg.name}')`);
  }
  if (refused.length > 0) {
    throw new UnsafeImageError(
      refused.length === 1 ? `the image would shadow the host's ${refused[0]}` : `the image would shadow ${refused.length} files of the host's /usr`,
      { details: refused.join("\n"), hint: "allow it for that package (allowShadow) if replacing the host's file is intended" },
    );
  }
  for (const w of winners) {
    if (w.outside !== undefined || !/^usr\/s?bin\//.test(w.rel)) continue;
    const exec = await startedByPath(resolver, w.target);
    if (exec !== undefined) w.wrapper = exec;
  }
  return { links: winners, directories: sortedDirs, shadowed };
}

/** When the command at `target` (/usr/store/…) resolves to a program of STARTED_BY_PATH: the
 *  resolved file's /usr/store path, which the wrapper runs — beside it is what the program looks for
 *  (a `bin/python3` linked from another package, as buildEnv does, would not have it). */
async function startedByPath(resolver: StageResolver, target: string): Promise<string | undefined> {
  const r = resolver.resolve(target);
  if (r === undefined || r.isDir) return undefined;
  const rule = STARTED_BY_PATH.find((p) => p.name.test(posix.basename(r.physical)));
  if (rule === undefined) return undefined;
  const logical = `/${posix.relative(resolver.stageDir, r.physical)}`;
  // /usr/store/<hash>-<name>/…: the store path the program's file is in.
  const storePath = logical.split("/").slice(0, 4).join("/");
  return (await rule.landmark(`${resolver.stageDir}${storePath}`)) ? logical : undefined;
}

async function createFarm(stageDir: string, plan: FarmPlan): Promise<void> {
  // Sorted, so parents come before their children.
  for (const d of plan.directories) {
    const full = posix.join(stageDir, d);
    try {
      await mkdir(full);
    } catch (e) {
      if (errnoCode(e) !== "EEXIST") throw e;
    }
    await chmod(full, DIR_MODE);
  }
  await Promise.all(plan.links.map(async (l) => {
    const at = posix.join(stageDir, l.rel);
    if (!l.wrapper) return symlink(l.target, at);
    await writeFile(at, wrapperScript(l.wrapper), { mode: EXEC_MODE, flag: "wx" });
    await chmod(at, EXEC_MODE);
  }));
}

function collect(
  resolver: StageResolver, physical: string, logical: string, sub: string, rule: FarmRule,
  pkg: FarmPackage, out: Candidate[], depth: number,
): void {
  const entries = readdirSync(physical, { withFileTypes: true, encoding: "buffer" });
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  for (const e of entries) {
    const name = e.name.toString("utf8");
    if (!Buffer.from(name, "utf8").equals(e.name)) {
      throw new UnsafeImageError(`${logical}/${e.name.toString("latin1")} has a name that is not UTF-8; it cannot be linked into the farm`);
    }
    const childLogical = `${logical}/${name}`;
    const childSub = sub === "" ? name : `${sub}/${name}`;
    let dirPhysical: string | undefined;
    let outside: string | undefined;
    if (e.isDirectory()) dirPhysical = `${physical}/${name}`;
    else if (e.isSymbolicLink()) {
      const r = resolver.resolve(childLogical);
      if (r?.isDir) dirPhysical = r.physical;
      else if (!r) outside = resolver.outside(childLogical);
    }
    if (dirPhysical !== undefined) {
      // A directory in bin/ or completions/ is not something the host would look up by name.
      if (rule.recursive && depth < MAX_DEPTH) collect(resolver, dirPhysical, childLogical, childSub, rule, pkg, out, depth + 1);
      continue;
    }
    out.push({ rel: `${rule.to}/${childSub}`, target: childLogical, pkg, ...(outside !== undefined ? { outside } : {}) });
  }
}

/** Follows symlinks of the staged tree inside the stage (their targets already say /usr/store).
 *  Synchronous, as collect() is: planning the farm of 14 packages makes ~10 000 lstat/readlink calls,
 *  each ~40 µs as a round trip through libuv's thread pool (~400 ms in all, most of an add's stage)
 *  and a few µs made directly; nothing else runs while the farm is planned. */
class StageResolver {
  constructor(readonly stageDir: string) {}

  resolve(path: string, depth = 0): { physical: string; isDir: boolean } | undefined {
    if (depth > MAX_LINK_DEPTH) return undefined;
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    const done: string[] = [];
    let isDir = true;
    for (let i = 0; i < parts.length; i++) {
      const here = `${this.stageDir}/${[...done, parts[i]!].join("/")}`;
      let st;
      try {
        st = lstatSync(here);
      } catch (e) {
        if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return undefined;
        throw e;
      }
      if (st.isSymbolicLink()) {
        const target = readlinkSync(here);
        const base = target.startsWith("/") ? target : `/${posix.join(done.join("/"), target)}`;
        const next = posix.normalize(posix.join(base, ...parts.slice(i + 1)));
        // Anything outside /usr/store points at the host, which the stage cannot answer for.
        if (!next.startsWith("/usr/store/")) return undefined;
        return this.resolve(next, depth + 1);
      }
      done.push(parts[i]!);
      isDir = st.isDirectory();
    }
    return { physical: `${this.stageDir}/${done.join("/")}`, isDir };
  }

  /** Where `path` leads when following its symlinks takes it out of the image's closure: a path
   *  outside /usr/store, or a store path the stage does not hold. Undefined when it stays inside
   *  (resolved, or dangling within a store path of the closure: a broken package, not an escape). */
  outside(path: string, depth = 0): string | undefined {
    if (depth > MAX_LINK_DEPTH) return undefined;
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    const done: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const here = `${this.stageDir}/${[...done, parts[i]!].join("/")}`;
      let st;
      try {
        st = lstatSync(here);
      } catch (e) {
        if (errnoCode(e) !== "ENOENT" && errnoCode(e) !== "ENOTDIR") throw e;
        // usr/store/<name> missing: a store path outside the closure (the host may have one there).
        return i <= 2 ? `/${parts.join("/")}` : undefined;
      }
      if (st.isSymbolicLink()) {
        const target = readlinkSync(here);
        const base = target.startsWith("/") ? target : `/${posix.join(done.join("/"), target)}`;
        const next = posix.normalize(posix.join(base, ...parts.slice(i + 1)));
        if (!next.startsWith("/usr/store/")) return next;
        return this.outside(next, depth + 1);
      }
      done.push(parts[i]!);
    }
    return undefined;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
