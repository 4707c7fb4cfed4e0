import { chmod, lstat, mkdir, readdir, readlink, symlink, writeFile } from "node:fs/promises";
import { posix } from "node:path";
import { CollisionError, errnoCode, UnsafeImageError } from "../errors.js";
import type { HostView } from "./host.js";
import { DIR_MODE, EXEC_MODE } from "./copy.js";
import { relocatedPath } from "./store-paths.js";
import { wrapperScript } from "./wrapper.js";
import type { FarmPackage } from "./types.js";

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

export async function buildFarm(options: FarmOptions): Promise<FarmResult> {
  const plan = await planFarm(options);
  await createFarm(options.stageDir, plan);
  return { links: plan.links.map((l) => l.rel), shadowed: plan.shadowed, wrappers: plan.links.filter((l) => l.wrapper !== undefined).map((l) => l.rel) };
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
        const dir = await resolver.resolve(from);
        if (dir?.isDir) await collect(resolver, dir.physical, from, "", rule, pkg, candidates, 0);
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

  const shadowed: string[] = [];
  const refused: string[] = [];
  for (const w of winners) {
    if ((await host.kind(w.rel)) === "missing" || (await host.isOwnLink(w.rel))) continue;
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
  const r = await resolver.resolve(target);
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

async function collect(
  resolver: StageResolver, physical: string, logical: string, sub: string, rule: FarmRule,
  pkg: FarmPackage, out: Candidate[], depth: number,
): Promise<void> {
  const entries = await readdir(physical, { withFileTypes: true, encoding: "buffer" });
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
      const r = await resolver.resolve(childLogical);
      if (r?.isDir) dirPhysical = r.physical;
      else if (!r) outside = await resolver.outside(childLogical);
    }
    if (dirPhysical !== undefined) {
      // A directory in bin/ or completions/ is not something the host would look up by name.
      if (rule.recursive && depth < MAX_DEPTH) await collect(resolver, dirPhysical, childLogical, childSub, rule, pkg, out, depth + 1);
      continue;
    }
    out.push({ rel: `${rule.to}/${childSub}`, target: childLogical, pkg, ...(outside !== undefined ? { outside } : {}) });
  }
}

/** Follows symlinks of the staged tree inside the stage (their targets already say /usr/store). */
class StageResolver {
  constructor(readonly stageDir: string) {}

  async resolve(path: string, depth = 0): Promise<{ physical: string; isDir: boolean } | undefined> {
    if (depth > MAX_LINK_DEPTH) return undefined;
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    const done: string[] = [];
    let isDir = true;
    for (let i = 0; i < parts.length; i++) {
      const here = `${this.stageDir}/${[...done, parts[i]!].join("/")}`;
      let st;
      try {
        st = await lstat(here);
      } catch (e) {
        if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return undefined;
        throw e;
      }
      if (st.isSymbolicLink()) {
        const target = await readlink(here);
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
  async outside(path: string, depth = 0): Promise<string | undefined> {
    if (depth > MAX_LINK_DEPTH) return undefined;
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    const done: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const here = `${this.stageDir}/${[...done, parts[i]!].join("/")}`;
      let st;
      try {
        st = await lstat(here);
      } catch (e) {
        if (errnoCode(e) !== "ENOENT" && errnoCode(e) !== "ENOTDIR") throw e;
        // usr/store/<name> missing: a store path outside the closure (the host may have one there).
        return i <= 2 ? `/${parts.join("/")}` : undefined;
      }
      if (st.isSymbolicLink()) {
        const target = await readlink(here);
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
