import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { openNamespace, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";
import { Tally, crashProblem, extOk, drainGroup, groupMembers, invariantViolations, observe, sleep, toolsJson } from "../helpers/faults.js";

// Issue 14, item 7: ext's own fault-injection suite, on the real CLI in a private mount namespace with
// the fixture packages built offline by real Nix. Three kinds of fault, each followed by the next ext
// commands and a check of the invariants (test/helpers/faults.ts): the merged set is exactly the old
// one or the new one, its programs run from /usr/bin, `ext list` agrees, no exit 70, no stack trace,
// nothing left in tmp/, images/ or /var/lib/extensions, and a damaged file is named.
//
//   kill -9 at evenly spaced moments of a measured run of add / remove / rollback / apply / gc, of the
//     ext process alone (its nix, mkfs.erofs, systemd-sysext children run on) and of its whole group;
//   each state file damaged in each way (empty, {}, wrong types, truncated, garbage, a flipped byte,
//     a directory, a symlink, a FIFO where a file belongs), then `ext repair`;
//   a full disk: /var/lib (a tmpfs) shrunk to leave a little room, at levels where each step hits ENOSPC.
//
// The tally is printed; the test fails on any broken case. In CI: 2 kill moments per operation and mode
// and a covering subset of the damage matrix; `npm run test:faults` (EXT_FAULT_FULL=1) runs 12 moments
// and every (file, way) pair. EXT_FAULT_POINTS sets the moments.

const FULL = process.env["EXT_FAULT_FULL"] === "1";
const POINTS = Number(process.env["EXT_FAULT_POINTS"] ?? (FULL ? 12 : 2));

let ns: Namespace;
let dir: string;
const tally = new Tally();

beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
  dir = mkdtempSync(join(tmpdir(), "ext-faults-"));
});
afterAll(() => {
  ns?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(`fault injection: held / broken per class\n${tally.table()}`);
});

const ok = (args: string[]): RunOutput => extOk(ns, args);

function sh(script: string): RunOutput {
  return ns.run(["sh", "-c", script]);
}

let fileCount = 0;
/** A tools.json for exactly these packages (a new file each time: nothing tracks it). */
function setFile(packages: string[]): string {
  const file = join(dir, `set-${fileCount++}.json`);
  writeFileSync(file, toolsJson(packages));
  return file;
}

/** Makes the active set exactly `packages` (no tracking, so later commands edit no file). */
function toSet(packages: string[]): void {
  ok(["apply", "--no-track", setFile(packages)]);
}

/** Only the current generation and its image are kept: the next new set stages and packs. */
function onlyCurrent(): void {
  ok(["gc", "--keep", "0"]);
}

function images(): string[] {
  return sh("ls -A /var/lib/ext/images").stdout.split("\n").filter(Boolean);
}

function currentGeneration(): number {
  return (JSON.parse(ok(["status", "--json"]).stdout) as { generation: number }).generation;
}

interface Operation {
  name: string;
  /** Brings the state to where the operation starts; returns its arguments. */
  prepare: () => string[];
  before: string[];
  after: string[];
}

const OPERATIONS: Operation[] = [
  { name: "add", before: ["greet"], after: ["greet", "hello"], prepare: () => (toSet(["greet"]), onlyCurrent(), ["add", "hello"]) },
  { name: "remove", before: ["greet", "hello"], after: ["greet"], prepare: () => (toSet(["greet", "hello"]), onlyCurrent(), ["remove", "hello"]) },
  {
    name: "rollback", before: ["greet", "hello"], after: ["greet"],
    prepare: () => {
      toSet(["greet"]);
      onlyCurrent();
      const target = currentGeneration();
      toSet(["greet", "hello"]);
      return ["rollback", "--to", String(target)];
    },
  },
  { name: "apply", before: ["greet"], after: ["greet", "jq"], prepare: () => (toSet(["greet"]), onlyCurrent(), ["apply", "--no-track", setFile(["greet", "jq"])]) },
  { name: "gc", before: ["greet", "hello"], after: ["greet", "hello"], prepare: () => (toSet(["greet"]), onlyCurrent(), toSet(["greet", "hello"]), ["gc", "--keep", "0"]) },
];

/** Runs ext in a process group of its own; resolves with its exit once it is gone. */
function start(args: string[]) {
  const child = ns.spawnExt(args, { detached: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout?.resume();
    child.once("exit", (code, signal) => resolve({ code, signal, stderr }));
  });
  return { pid: child.pid!, exited };
}

describe("kill -9 at evenly spaced moments of a whole run", () => {
  for (const op of OPERATIONS) {
    it(`${op.name}: the ext process alone and its whole process group`, async () => {
      // One whole run, measured: the kills are spread over its length.
      const args = op.prepare();
      const before = images();
      const t0 = Date.now();
      const whole = await start(args).exited;
      const length = Date.now() - t0;
      expect(whole.code, whole.stderr).toBe(0);
      const allowed = new Set([...before, ...images()]);
      for (const mode of ["process", "group"] as const) {
        for (let i = 0; i < POINTS; i++) {
          const at = Math.round((length * (i + 0.5)) / POINTS);
          const runArgs = op.prepare();
          const run = start(runArgs);
          await sleep(at);
          try {
            process.kill(mode === "group" ? -run.pid : run.pid, "SIGKILL");
          } catch {
            /* it had finished */
          }
          const end = await run.exited;
          const violations: string[] = [];
          if (end.signal === null && end.code !== 0) violations.push(`the run itself failed (${end.code}): ${end.stderr}`);
          // The next commands, at once (orphaned tools of a lone kill may still run).
          for (const next of [["status"], ["add", "greet"]]) {
            const r = ns.ext(next);
            const crash = crashProblem(`ext ${next.join(" ")}`, r);
            if (crash) violations.push(crash);
            else if (next[0] === "add" && r.status !== 0) violations.push(`ext add greet after the kill failed (${r.status}): ${r.stderr}`);
          }
          // Once the orphans are gone, the next state-changing command sweeps what they left.
          if (groupMembers(run.pid).length > 0) {
            await drainGroup(run.pid);
            const sweep = ns.ext(["add", "greet"]);
            if (sweep.status !== 0) violations.push(`ext add greet failed (${sweep.status}): ${sweep.stderr}`);
          }
          violations.push(...invariantViolations(await observe(ns), [op.before, op.after], allowed));
          tally.record(`kill -9 ${mode} during ${op.name}`, `at ${at} of ${length} ms${end.signal ? "" : " (it had finished)"}`, violations);
        }
      }
      expect(tally.failures).toEqual([]);
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Damaged state: each state file in each way. Generation `old` holds {greet}, `cur` {greet, hello}.

type Kind = "json" | "image" | "dir" | "lock";
interface Target {
  name: string;
  kind: Kind;
  path: () => string;
  /** What a valid file there holds, when none is there normally (the journal). */
  valid?: () => string;
}

const S = "/var/lib/ext";
let old = 0;
let cur = 0;
const imageOf = (id: number) => {
  const gens = JSON.parse(ok(["generations", "--json"]).stdout) as { id: number; image: { sha256: string } }[];
  return `${S}/images/${gens.find((g) => g.id === id)!.image.sha256}.raw`;
};
const imagePaths = new Map<string, string>();

const TARGETS: Target[] = [
  { name: "an old record", kind: "json", path: () => `${S}/generations/${old}.json` },
  { name: "the current record", kind: "json", path: () => `${S}/generations/${cur}.json` },
  { name: "current.json", kind: "json", path: () => `${S}/current.json` },
  {
    name: "the journal", kind: "json", path: () => `${S}/journal.json`,
    // An interrupted add, as a kill during stage leaves it.
    valid: () => JSON.stringify({ txid: "0", pid: 1, command: "ext add x", startedAt: "", phase: "stage", extensionName: "ext", previousGeneration: cur, previousImage: imagePaths.get("cur")!.slice(-68, -4), temp: [] }, null, 2),
  },
  { name: "the lock", kind: "lock", path: () => `${S}/lock` },
  { name: "the current image", kind: "image", path: () => imagePaths.get("cur")! },
  { name: "an old image", kind: "image", path: () => imagePaths.get("old")! },
  { name: "staged/", kind: "dir", path: () => `${S}/staged` },
  { name: "tmp/", kind: "dir", path: () => `${S}/tmp` },
];

/** Ways to damage a file, as shell run with $F the file and $K a copy of what was there (if anything). */
const WAYS: Record<string, { kinds: Kind[]; script: (t: Target) => string; harmless?: Kind[] }> = {
  "empty": { kinds: ["json", "image", "dir", "lock"], script: () => ": > $F", harmless: ["lock"] },
  "{}": { kinds: ["json", "image", "dir", "lock"], script: () => "echo '{}' > $F", harmless: ["lock"] },
  "wrong types": {
    kinds: ["json", "lock"], harmless: ["lock"],
    script: (t) => t.path().endsWith("current.json") ? `echo '{"generation":"${cur}"}' > $F`
      : t.path().endsWith("journal.json") ? `sed 's/"phase": "stage"/"phase": 7/' $K > $F`
      : t.kind === "lock" ? `echo '{"pid":"x","command":[]}' > $F`
      : `sed 's/"packages": \\[/"packages": 7, "x": [/' $K > $F`,
  },
  "truncated": { kinds: ["json", "image"], script: () => `head -c $(( $(stat -c %s $K) / 2 )) $K > $F` },
  "garbage bytes": { kinds: ["json", "image", "dir", "lock"], script: (t) => `head -c ${t.kind === "image" ? "$(stat -c %s $K)" : 4096} /dev/urandom > $F`, harmless: ["lock"] },
  // JSON: the first ':' becomes ';' (a flip elsewhere may land in a string and change nothing).
  "a flipped byte": {
    kinds: ["json", "image"],
    script: (t) => t.kind === "image"
      ? `cp $K $F && node -e 'const fs=require("fs");const fd=fs.openSync(process.argv[1],"r+");const at=Math.floor(fs.fstatSync(fd).size/2);const b=Buffer.alloc(1);fs.readSync(fd,b,0,1,at);b[0]^=0xff;fs.writeSync(fd,b,0,1,at)' $F`
      : `sed '0,/:/s//;/' $K > $F`,
  },
  "a directory": { kinds: ["json", "image", "lock"], script: () => "mkdir $F && echo x > $F/x" },
  // A link to an intact copy elsewhere: the bytes are right, the place is not ext's.
  "a symlink": { kinds: ["json", "image", "dir", "lock"], script: () => "rm -rf /tmp/elsewhere && cp -a $K /tmp/elsewhere 2>/dev/null || mkdir -p /tmp/elsewhere; ln -s /tmp/elsewhere $F" },
  "a FIFO": { kinds: ["json", "image", "dir", "lock"], script: () => "mkfifo $F" },
  // Inside a directory: anything there is ext's scratch (tmp/) or a cache (staged/).
  "garbage inside": {
    kinds: ["dir"], harmless: ["dir"],
    script: (t) => t.path().endsWith("staged")
      ? "cp -a $K $F && for r in $F/v*/*.json; do head -c 100 /dev/urandom > $r; done; rm -rf $F/v*/.boot-id && mkdir $F/v*/.boot-id 2>/dev/null; mkdir -p $F/v1 && : > $F/v2"
      : "cp -a $K $F && head -c 4096 /dev/urandom > $F/junk && mkfifo $F/fifo && mkdir -p $F/stage-x/usr && ln -s / $F/stage-x/usr/root",
  },
};

/** Generations old = {greet} and cur = {greet, hello}, the latter staged by this transaction so the
 *  stage cache holds its trees. */
function base(): void {
  toSet(["greet"]);
  onlyCurrent();
  old = currentGeneration();
  toSet(["greet", "hello"]);
  cur = currentGeneration();
  imagePaths.set("old", imageOf(old));
  imagePaths.set("cur", imageOf(cur));
}

describe("each state file damaged in each way", () => {
  beforeAll(base);

  // CI runs a covering subset: every way on some target of each kind, every target in some way (the
  // n-th way of a kind on its n-th target, round robin). EXT_FAULT_FULL=1 runs every pair.
  for (const target of TARGETS) {
    for (const [way, w] of Object.entries(WAYS)) {
      if (!w.kinds.includes(target.kind)) continue;
      const ofKind = TARGETS.filter((t) => t.kind === target.kind);
      const ways = Object.entries(WAYS).filter(([, x]) => x.kinds.includes(target.kind)).map(([k]) => k);
      const pairs = Math.max(ofKind.length, ways.length);
      const covering = Array.from({ length: pairs }, (_, i) => `${ofKind[i % ofKind.length]!.name}|${ways[i % ways.length]}`);
      if (!FULL && !covering.includes(`${target.name}|${way}`)) continue;
      it(`${target.name}: ${way}`, async () => {
        // gc (one of the commands below) removes the stage cache; damaging it needs one.
        if (target.name === "staged/" && sh(`test -d ${S}/staged/v1`).status !== 0) base();
        const f = target.path();
        const violations: string[] = [];
        const harmless = w.harmless?.includes(target.kind) ?? false;
        let repacked = false;
        // The original is moved, not copied, so it comes back as the same inode (the active link is one).
        const keep = `/var/lib/faults-keep`;
        const prepareKeep = target.valid ? `printf '%s\\n' '${target.valid()}' > ${keep}` : `rm -rf ${keep} && mv ${f} ${keep}`;
        expect(sh(`${prepareKeep} && F=${f} K=${keep} && rm -rf $F && { ${w.script(target)}; }`).status).toBe(0);
        try {
          // Read-only commands side by side, then the state-changing ones.
          const reads = await Promise.all([["doctor"], ["status"], ["list"]].map(async (a) => [a, await ns.extAsync(a)] as const));
          const writes = [["rollback", "--to", String(old)], ["gc"]].map((a) => [a, ns.ext(a)] as const);
          for (const [args, r] of [...reads, ...writes]) {
            const crash = crashProblem(`ext ${args.join(" ")}`, r);
            if (crash) violations.push(crash);
            else if (args[0] === "doctor") {
              if (!harmless && !r.stdout.includes(f)) violations.push(`ext doctor does not name ${f}:\n${r.stdout}`);
            } else if (r.status !== 0 && !r.stderr.includes(f)) violations.push(`ext ${args.join(" ")} failed without naming ${f}:\n${r.stderr}`);
            if (harmless && args[0] !== "doctor" && r.status !== 0) violations.push(`ext ${args.join(" ")} failed on harmless damage:\n${r.stderr}`);
          }
          // ext repair sets the damage aside (or packs the image again) and names what it did.
          const fix = ns.ext(["repair"]);
          const crash = crashProblem("ext repair", fix);
          if (crash) violations.push(crash);
          else if (fix.status !== 0 && fix.status !== 1) violations.push(`ext repair failed (${fix.status}): ${fix.stderr}`);
          else if (!harmless && !fix.stdout.includes(f)) violations.push(`ext repair does not name ${f}:\n${fix.stdout}`);
          repacked = fix.stdout.includes(`packed the image of generation`);
          // Nothing outside ext was touched through a link.
          if (way === "a symlink" && sh("test -e /tmp/elsewhere").status !== 0) violations.push("the symlink's target was removed");
        } finally {
          // An image packed again by repair is the one its records name, and the link is to it: it
          // stays. (A full pack's are the original's bytes; an appended image's are new ones, below.)
          sh(`F=${f}; ${repacked ? `rm -rf ${keep}` : `rm -rf $F; ${target.valid ? "" : `mv ${keep} $F`}`}`);
        }
        // Put back, the state works as before: any interrupted run recovered, the current set merged.
        // (A repair that set current.json aside leaves the choice to `rollback --to`, as it says.)
        if ((JSON.parse(ok(["status", "--json"]).stdout) as { generation: number | null }).generation !== cur) ok(["rollback", "--to", String(cur)]);
        // An appended image (the current one, where mkfs.erofs appends) packed again by repair is a
        // full pack in other bytes, which its records now name: the next cases damage that file.
        if (repacked) for (const [key, id] of [["old", old], ["cur", cur]] as const) imagePaths.set(key, imageOf(id));
        const back = ns.ext(["add", "greet"]);
        if (back.status !== 0) violations.push(`ext add greet after putting the file back failed: ${back.stderr}`);
        let o = await observe(ns);
        if (o.generation !== cur) {
          ok(["rollback", "--to", String(cur)]);
          o = await observe(ns);
        }
        violations.push(...invariantViolations(o, [["greet", "hello"]], new Set(o.recordedImages)));
        tally.record(`damaged ${target.name}`, way, violations);
        expect(violations).toEqual([]);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------------
// A full disk: /var/lib (the namespace's tmpfs) shrunk to leave `free` bytes, then a transaction.

function used(): number {
  const out = sh("stat -f -c '%b %f %S' /var/lib").stdout.trim().split(" ").map(Number);
  return (out[0]! - out[1]!) * out[2]!;
}

function limitRoom(free: number | null): void {
  const size = free === null ? "4g" : String(used() + free);
  const r = sh(`mount -o remount,size=${size} /var/lib`);
  if (r.status !== 0) throw new Error(`remount: ${r.stderr}`);
}

/** Which write ran out of room: the step the transaction was in (EXT_TIMINGS' last line), or the journal
 *  when the path in the message is the journal's. */
function whereItFailed(stderr: string, timings: string): string {
  if (/no space left on the device: \S*journal\.json/.test(stderr)) return "journal";
  if (/no space left on the device: \S*\/generations\//.test(stderr)) return "commit";
  const last = timings.trim().split("\n").at(-1);
  return last ? (JSON.parse(last) as { phase: string }).phase : "before any step";
}

describe("a full disk", () => {
  const seen = new Map<string, number>();
  const seenHere = new Map<string, number>();
  const KiB = 1024;
  const MiB = 1024 * KiB;
  const cases: { what: string; prepare: () => string[]; before: string[]; after: string[]; levels: number[] }[] = [
    // A new image: stage copies the closure into tmp/ (the store is another file system), pack writes the image.
    {
      what: "add (stage, pack)", before: ["greet"], after: ["greet", "hello"],
      prepare: () => (toSet(["greet"]), onlyCurrent(), ["add", "hello"]),
      // (Stage's copy is ~3.3 MiB and the image ~2.3 MiB: the stage fails below ~3.5 MiB free, pack below ~6.)
      levels: FULL ? [0, 8 * KiB, 256 * KiB, 1 * MiB, 2 * MiB, 3 * MiB, 4 * MiB, 5 * MiB, 6 * MiB, 16 * MiB] : [0, 256 * KiB, 2 * MiB, 4 * MiB, 5 * MiB, 16 * MiB],
    },
    // An image that is reused: the first new page is the record's. Its command line (the tools.json's
    // 3 000-character path) makes it two pages of the tmpfs while the journal is one: one free page
    // lets the journal through and stops the record.
    {
      what: "apply (journal, commit)", before: ["greet", "hello"], after: ["greet"],
      prepare: () => {
        toSet(["greet"]);
        onlyCurrent();
        toSet(["greet", "hello"]);
        const long = join(dir, ...Array.from({ length: 14 }, (_, i) => String.fromCharCode(97 + i).repeat(200)));
        const file = join(long, "x".repeat(200) + ".json");
        sh(`mkdir -p ${long}`);
        writeFileSync(file, toolsJson(["greet"]));
        return ["apply", "--no-track", file];
      },
      levels: [0, 4 * KiB, 8 * KiB, 12 * KiB, 16 * KiB],
    },
  ];

  for (const c of cases) {
    it(c.what, async () => {
      for (const free of c.levels) {
        const args = c.prepare();
        const before = images();
        const timings = join(dir, `timings-${fileCount++}.jsonl`);
        limitRoom(free);
        const violations: string[] = [];
        let r: RunOutput = { status: -1, stdout: "", stderr: "" };
        try {
          r = ns.ext(args, { env: { EXT_TIMINGS: timings } });
          const crash = crashProblem(`ext ${args.join(" ")}`, r);
          if (crash) violations.push(crash);
          if (r.status !== 0) {
            if (!/no space left/i.test(r.stderr)) violations.push(`failed, but not for want of space: ${r.stderr}`);
            const at = whereItFailed(r.stderr, sh(`cat ${timings} 2>/dev/null`).stdout);
            seen.set(at, (seen.get(at) ?? 0) + 1);
            if (process.env["EXT_FAULT_VERBOSE"]) console.log(`${c.what} with ${free} bytes free: ${at}: ${r.stderr}`);
            seenHere.set(at, (seenHere.get(at) ?? 0) + 1);
          } else seenHere.set("nowhere (it fit)", (seenHere.get("nowhere (it fit)") ?? 0) + 1);
          // The disk is still full: reading state works.
          for (const next of [["status"], ["list"]]) {
            const n = ns.ext(next);
            const crash2 = crashProblem(`ext ${next.join(" ")} on the full disk`, n);
            if (crash2) violations.push(crash2);
            else if (n.status !== 0) violations.push(`ext ${next.join(" ")} on the full disk failed: ${n.stderr}`);
          }
        } finally {
          limitRoom(null);
        }
        // With room again, the next command sweeps what the failure left, if anything.
        const next = ns.ext(["add", "greet"]);
        if (next.status !== 0) violations.push(`ext add greet with room again failed: ${next.stderr}`);
        const after = r.status === 0 ? images() : [];
        violations.push(...invariantViolations(await observe(ns), [c.before, c.after], new Set([...before, ...after])));
        tally.record(`full disk during ${c.what}`, `${free} bytes free`, violations);
      }
      console.log(`${c.what}: where the disk ran out: ${[...seenHere].map(([k, v]) => `${k} ${v}`).join(", ")}`);
      seenHere.clear();
      expect(tally.failures).toEqual([]);
    });
  }

  it("each of stage, pack, commit and the journal ran out of room at some level", () => {
    expect([...seen.keys()]).toEqual(expect.arrayContaining(["stage", "pack", "commit", "journal"]));
  });
});
