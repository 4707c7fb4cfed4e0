import { formatBytes } from "./output.js";

// What the progress display knows about the phase that is running: counters fed by Nix's stderr
// and by the commands ext starts (src/exec.ts observer). Renderers (progress-tty.ts, progress-plain.ts)
// only turn this into text.

export interface PhaseState {
  /** As displayed: "evaluating", "building", "staging", "packing", "activating"… */
  name: string;
  detail?: string;
  startedAt: number;
  /** Derivations Nix started building, and how many it announced (newer Nix only). */
  built: number;
  buildTotal?: number;
  /** Store paths Nix fetched from a substituter, how many it announced, and their download size. */
  fetched: number;
  fetchTotal?: number;
  downloadBytes?: number;
  /** What is running right now: a derivation being built, a command. */
  current?: string;
  /** Bytes written so far by the step (the image mkfs.erofs is writing). */
  bytes?: number;
  /** Generic progress reported through Reporter.progress(). */
  done?: number;
  total?: number;
  unit?: string;
}

export function newPhase(name: string, detail: string | undefined, now: number): PhaseState {
  return { name, ...(detail ? { detail } : {}), startedAt: now, built: 0, fetched: 0 };
}

const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

function parseSize(value: string, unit: string): number {
  return Math.round(Number(value) * (SIZE_UNITS[unit] ?? 1));
}

/** A derivation or store path's name without the hash: `/nix/store/<hash>-jq-1.6.drv` → `jq-1.6`. */
export function storeName(path: string): string {
  return (path.split("/").pop() ?? path).replace(/^[0-9a-z]{32}-/, "").replace(/\.drv$/, "");
}

/**
 * Updates the phase from one line of Nix's stderr (without a terminal Nix prints plain lines):
 *   building '/nix/store/…-jq-1.6.drv'...
 *   copying path '/nix/store/…-oniguruma-6.9.8' from 'https://cache.nixos.org'...
 *   these 3 derivations will be built:            (this derivation will be built:)
 *   these 5 paths will be fetched (1.20 MiB download, 4.50 MiB unpacked):
 *   downloading 'https://…'...  /  unpacking 'github:…'...
 * Returns true when the line changed something worth redrawing.
 */
export function applyNixLine(phase: PhaseState, line: string): boolean {
  let m = /^building '([^']+)'/.exec(line);
  if (m) {
    phase.built++;
    phase.current = `building ${storeName(m[1] ?? "")}`;
    return true;
  }
  m = /^copying path '([^']+)' from '/.exec(line);
  if (m) {
    phase.fetched++;
    phase.current = `fetching ${storeName(m[1] ?? "")}`;
    return true;
  }
  m = /^(?:these (\d+)|this) derivations? will be built/.exec(line);
  if (m) {
    phase.buildTotal = (phase.buildTotal ?? 0) + Number(m[1] ?? 1);
    return true;
  }
  m = /^(?:these (\d+)|this) paths? will be fetched(?: \(([\d.]+) (B|KiB|MiB|GiB|TiB) download)?/.exec(line);
  if (m) {
    phase.fetchTotal = (phase.fetchTotal ?? 0) + Number(m[1] ?? 1);
    if (m[2] !== undefined && m[3] !== undefined) phase.downloadBytes = (phase.downloadBytes ?? 0) + parseSize(m[2], m[3]);
    return true;
  }
  // --print-build-logs: `<drv name>> <builder output>`; its last line says what the build is doing.
  m = /^([\w.+-]+)> (.*\S.*)$/.exec(line);
  if (m) {
    phase.current = `${m[1]}> ${(m[2] ?? "").trim()}`;
    return true;
  }
  m = /^(?:downloading|unpacking) '([^']+)'/.exec(line);
  if (m) {
    phase.current = `fetching ${m[1]}`;
    return true;
  }
  return false;
}

/** What kind of work an external command is, for the display. */
export type CommandKind =
  | { kind: "nix-eval" }
  | { kind: "nix-build" }
  | { kind: "nix-other"; sub: string }
  | { kind: "mkfs"; image: string }
  | { kind: "other"; name: string };

/** Nix's global flags that take a value, skipped when looking for the subcommand. */
const NIX_FLAGS_WITH_VALUE = new Set(["--extra-experimental-features", "--experimental-features", "--store", "--option", "--log-format"]);

export function classifyCommand(file: string, args: readonly string[]): CommandKind {
  const name = file.split("/").pop() ?? file;
  if (name === "nix") {
    let sub = "";
    for (let i = 0; i < args.length; i++) {
      const a = args[i] ?? "";
      if (a === "--option") i += 2;
      else if (NIX_FLAGS_WITH_VALUE.has(a)) i += 1;
      else if (!a.startsWith("-")) {
        sub = a;
        break;
      }
    }
    if (sub === "eval") return { kind: "nix-eval" };
    if (sub === "build") return { kind: "nix-build" };
    return { kind: "nix-other", sub };
  }
  // mkfs.erofs [options] IMAGE DIRECTORY: the image is the one before last.
  if (name === "mkfs.erofs" && args.length >= 2) return { kind: "mkfs", image: args[args.length - 2] ?? "" };
  return { kind: "other", name };
}

/** Short text for what a command is doing, shown while it runs. */
export function commandActivity(file: string, args: readonly string[]): string {
  const c = classifyCommand(file, args);
  switch (c.kind) {
    case "nix-eval": return "nix eval";
    case "nix-build": return "nix build";
    case "nix-other": return `nix ${c.sub || args.find((a) => a.startsWith("--") && !NIX_FLAGS_WITH_VALUE.has(a)) || ""}`.trim();
    case "mkfs": return "mkfs.erofs";
    case "other": return [c.name, ...args.filter((a) => !a.startsWith("-")).slice(0, 1)].join(" ");
  }
}

/** The counters of a phase as words: "2/3 built, 1 fetched (1.2 MiB)", "12.3 MiB written".
 *  `failed`: the phase failed. Nix announces a build when it starts, so in a failed phase at least one
 *  counted build did not finish: they are "started", not "built". */
export function describeCounters(p: PhaseState, opts: { failed?: boolean } = {}): string {
  const parts: string[] = [];
  if (p.built > 0 || p.buildTotal !== undefined) {
    const verb = opts.failed ? (p.built === 1 ? "build started" : "builds started") : "built";
    parts.push(`${p.built}${p.buildTotal !== undefined ? `/${Math.max(p.buildTotal, p.built)}` : ""} ${verb}`);
  }
  if (p.fetched > 0 || p.fetchTotal !== undefined) {
    const size = p.downloadBytes !== undefined ? ` (${formatBytes(p.downloadBytes)})` : "";
    parts.push(`${p.fetched}${p.fetchTotal !== undefined ? `/${Math.max(p.fetchTotal, p.fetched)}` : ""} fetched${size}`);
  }
  if (p.bytes !== undefined) parts.push(`${formatBytes(p.bytes)} written`);
  if (p.done !== undefined && p.unit !== undefined) {
    const amount = p.unit === "bytes"
      ? `${formatBytes(p.done)}${p.total !== undefined ? ` of ${formatBytes(p.total)}` : ""}`
      : `${p.done}${p.total !== undefined ? `/${p.total}` : ""} ${p.unit}`;
    parts.push(amount);
  }
  return parts.join(", ");
}

/** Settled, "1/1 built" says no more than "1 built" (Nix ≥ 2.26 announces its plan without a
 *  terminal; 2.8 does not): the totals stay only where work was left undone. */
export function settledCounts(p: PhaseState): PhaseState {
  const settled: PhaseState = { ...p };
  if (settled.buildTotal !== undefined && settled.built >= settled.buildTotal) delete settled.buildTotal;
  if (settled.fetchTotal !== undefined && settled.fetched >= settled.fetchTotal) delete settled.fetchTotal;
  return settled;
}

/** What a finished phase achieved, for its settled line; empty when there is nothing to add. */
export function describeOutcome(p: PhaseState): string {
  const counters = describeCounters(settledCounts(p));
  if (counters !== "") return counters;
  // A build phase in which Nix did nothing: everything was already in the store.
  if (p.name === "building") return "already in the Nix store";
  return "";
}

/** 0.4s, 12.3s, 2m05s. */
export function formatElapsed(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s - m * 60)).padStart(2, "0")}s`;
}

/** A command line for --verbose: long or multi-line arguments (Nix expressions) are cut short. */
export function displayCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) => {
    const firstLine = a.split("\n")[0] ?? "";
    const cut = a.includes("\n") || a.length > 200 ? `${firstLine.slice(0, 60)}…` : a;
    return /^[\w@%+=:,./#-]+$/.test(cut) ? cut : `'${cut.replace(/'/g, `'\\''`)}'`;
  }).join(" ");
}
