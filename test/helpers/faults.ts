import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { FIXTURES, extOk as mustSucceed, type Namespace, type RunOutput } from "./namespace.js";

// The fault-injection suite's eyes (test/integration/faults.test.ts): what a person could see of ext's
// state after a fault, and a tally of held / broken per class of fault.

/** The fixture packages the suite moves between, with the program each puts in /usr/bin. */
export const PROGRAMS: Record<string, string[]> = {
  greet: ["/usr/bin/greet", "--version"],
  hello: ["/usr/bin/hello", "--version"],
  jq: ["/usr/bin/jq", "--version"],
};

export interface Observation {
  /** `ext list`: installed names, sorted; null when list failed. */
  listed: string[] | null;
  /** Packages whose program runs from /usr/bin with /nix hidden. */
  running: string[];
  /** Programs that are in /usr/bin but do not run (a damaged merge). */
  brokenPrograms: string[];
  merged: boolean | null;
  linkedMatchesGeneration: boolean | null;
  generation: number | null;
  images: string[];
  /** Images some record names. */
  recordedImages: string[];
  tmp: string[];
  extensions: string[];
  /** Atomic-write temp names left in the state directory, generations/ or images/. */
  tempNames: string[];
  /** Problems seen while looking: exit 70, stack traces. */
  problems: string[];
}

const STACK = /internal error|\n\s+at .*:\d+:\d+/;

/** Exit 70 or a stack trace in any output is always broken, whatever the command. */
export function crashProblem(what: string, r: RunOutput): string | null {
  if (r.status === 70) return `${what}: exit 70\n${r.stderr}`;
  if (STACK.test(r.stderr) || STACK.test(r.stdout)) return `${what}: stack trace\n${r.stderr}`;
  return null;
}

/** Runs ext and throws, with its output, unless it exits 0. */
export function extOk(ns: Namespace, args: string[], opts?: { env?: Record<string, string> }): RunOutput {
  return mustSucceed(ns, args, opts?.env);
}

function lines(s: string): string[] {
  return s.split("\n").filter((l) => l !== "");
}

export async function observe(ns: Namespace): Promise<Observation> {
  const problems: string[] = [];
  const ext = async (args: string[]) => {
    const r = await ns.extAsync(args);
    const p = crashProblem(`ext ${args.join(" ")}`, r);
    if (p) problems.push(p);
    return r;
  };
  const [list, st, gens] = await Promise.all([ext(["list", "--json"]), ext(["status", "--json"]), ext(["generations", "--json"])]);
  let listed: string[] | null = null;
  if (list.status === 0) listed = (JSON.parse(list.stdout) as { name: string }[]).map((p) => p.name).sort();
  const status = st.status === 0 ? (JSON.parse(st.stdout) as { generation: number | null; merged: boolean; linkedMatchesGeneration: boolean }) : null;
  const recordedImages = gens.status === 0
    ? [...new Set((JSON.parse(gens.stdout) as { image: { sha256: string } | null }[]).flatMap((g) => (g.image ? [g.image.sha256 + ".raw"] : [])))].sort()
    : [];
  const probe = Object.entries(PROGRAMS).map(([name, argv]) => `if [ -e ${argv[0]} ]; then if ${argv.join(" ")} >/dev/null 2>&1; then echo "ok ${name}"; else echo "bad ${name}"; fi; fi`).join("; ");
  const programs = lines(ns.run(["sh", "-c", probe], { hideNix: true }).stdout);
  const ls = (dir: string) => lines(ns.run(["sh", "-c", `ls -A ${dir} 2>/dev/null`]).stdout).sort();
  const S = "/var/lib/ext";
  return {
    listed,
    running: programs.filter((l) => l.startsWith("ok ")).map((l) => l.slice(3)).sort(),
    brokenPrograms: programs.filter((l) => l.startsWith("bad ")).map((l) => l.slice(4)),
    merged: status?.merged ?? null,
    linkedMatchesGeneration: status?.linkedMatchesGeneration ?? null,
    generation: status?.generation ?? null,
    images: ls(`${S}/images`),
    recordedImages,
    tmp: ls(`${S}/tmp`),
    extensions: ls("/var/lib/extensions"),
    tempNames: [S, `${S}/generations`, `${S}/images`].flatMap((d) => ls(d).filter((n) => /\.tmp$/.test(n)).map((n) => `${d}/${n}`)),
    problems,
  };
}

/** What is wrong with the state, given the sets it may be in and the images it may hold; [] when it
 *  held: the merged set is exactly one of `sets`, ext list agrees with it, it runs, nothing is left. */
export function invariantViolations(o: Observation, sets: string[][], allowedImages: Set<string>): string[] {
  const v = [...o.problems];
  const key = (s: string[]) => [...s].sort().join(",");
  if (o.listed === null) v.push("ext list failed");
  else {
    if (!sets.some((s) => key(s) === key(o.listed!))) v.push(`ext list says {${o.listed}}, expected one of ${sets.map((s) => `{${s}}`).join(" or ")}`);
    if (key(o.running) !== key(o.listed)) v.push(`running from /usr/bin: {${o.running}}, ext list: {${o.listed}}`);
  }
  if (o.brokenPrograms.length) v.push(`programs in /usr/bin that do not run: ${o.brokenPrograms.join(", ")}`);
  if (o.merged !== true) v.push(`ext status: merged ${o.merged}`);
  if (o.linkedMatchesGeneration !== true) v.push(`ext status: linked image does not match generation ${o.generation}`);
  if (o.tmp.length) v.push(`left in tmp/: ${o.tmp.join(" ")}`);
  if (o.tempNames.length) v.push(`temporary files left: ${o.tempNames.join(" ")}`);
  if (key(o.extensions) !== "ext.raw") v.push(`/var/lib/extensions holds ${o.extensions.join(" ") || "nothing"}`);
  const extra = o.images.filter((i) => !allowedImages.has(i));
  if (extra.length) v.push(`images that were not there before nor after a whole run: ${extra.join(" ")}`);
  const missing = o.recordedImages.filter((i) => !o.images.includes(i));
  if (missing.length) v.push(`images named by records but missing: ${missing.join(" ")}`);
  return v;
}

/** Held / broken per class, with the first violations of each broken case. */
export class Tally {
  private rows = new Map<string, { held: number; broken: number }>();
  readonly failures: string[] = [];

  record(cls: string, what: string, violations: string[]): void {
    const row = this.rows.get(cls) ?? { held: 0, broken: 0 };
    if (violations.length === 0) row.held++;
    else {
      row.broken++;
      this.failures.push(`${cls} / ${what}:\n  ${violations.join("\n  ")}`);
    }
    this.rows.set(cls, row);
  }

  table(): string {
    const width = Math.max(5, ...[...this.rows.keys()].map((k) => k.length));
    const out = [`${"class".padEnd(width)}  held  broken`];
    let held = 0;
    let broken = 0;
    for (const [cls, r] of this.rows) {
      out.push(`${cls.padEnd(width)}  ${String(r.held).padStart(4)}  ${String(r.broken).padStart(6)}`);
      held += r.held;
      broken += r.broken;
    }
    out.push(`${"total".padEnd(width)}  ${String(held).padStart(4)}  ${String(broken).padStart(6)}`);
    return out.join("\n");
  }
}

/** A tools.json of the fixture packages. */
export function toolsJson(packages: string[]): string {
  return JSON.stringify({ version: 1, source: FIXTURES, packages: Object.fromEntries(packages.map((p) => [p, {}])) });
}

/** Pids of the process group `pgid` still running (the tools a killed ext had started). */
export function groupMembers(pgid: number): number[] {
  try {
    // A zombie has finished: in a tree's own PID namespace the orphans' reaper may not wait for
    // them at once (seen in sid), and what matters is that nothing still runs.
    return lines(execFileSync("pgrep", ["-g", String(pgid)], { encoding: "utf8" })).map(Number).filter((pid) => !isZombie(pid));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Waits until a killed ext's group has no process left (orphaned nix, mkfs.erofs, systemd-sysext). */
export async function drainGroup(pgid: number, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (groupMembers(pgid).length > 0) {
    if (Date.now() - start > ms) {
      const left = groupMembers(pgid).map((pid) => `${pid} ${commandOf(pid)}`);
      throw new Error(`process group ${pgid} still runs after ${ms} ms: ${left.join("; ")}`);
    }
    await sleep(50);
  }
}

/** What a process runs, for a message ("?" once it is gone). */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "?";
  }
}

function isZombie(pid: number): boolean {
  try {
    // /proc/PID/stat: "pid (comm) state …"; comm may hold spaces and parentheses, so after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true; // gone
  }
}
