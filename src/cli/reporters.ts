import { statSync } from "node:fs";
import { printable } from "../nix/errors.js";
import type { Reporter } from "../base/reporter.js";
import type { CommandObserver } from "../exec.js";
import { applyNixLine, classifyCommand, commandActivity, displayCommand, formatElapsed, newPhase, type PhaseState } from "./progress.js";
import { PlainRenderer, type Renderer } from "./progress-plain.js";
import { TtyRenderer } from "./progress-tty.js";
import { output, type TextOut } from "./streams.js";

// Progress goes to stderr so stdout stays the command's result (and only JSON with --json).
// The reporter keeps the state of the running phase; it is fed by the transaction (phase/info/warn),
// by Nix's stderr (nixLog) and by every external command ext starts (the exec.ts observer), and a
// renderer draws it: in place on a terminal, plain lines otherwise.

export interface ReporterOptions {
  /** Warnings and errors only. */
  quiet: boolean;
  /** Also the underlying commands and Nix's own output. */
  verbose: boolean;
  color: boolean;
  stream?: TextOut;
  /** "auto": redraw in place when the stream is a terminal (and TERM is not "dumb"), plain lines otherwise. */
  mode?: "auto" | "tty" | "plain";
  /** Spinner and marks in Unicode; default: from the locale. */
  unicode?: boolean;
  now?: () => number;
}

export interface CliReporter extends Reporter, CommandObserver {
  /** One line of Nix's stderr: counted for progress, shown with --verbose. */
  nixLog(line: string): void;
  end(ok: boolean): void;
}

export function isTerminal(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && env["TERM"] !== "dumb";
}

function unicodeLocale(env: NodeJS.ProcessEnv = process.env): boolean {
  return /utf-?8/i.test(env["LC_ALL"] || env["LC_CTYPE"] || env["LANG"] || "");
}

export function createReporter(opts: ReporterOptions): CliReporter {
  const out = opts.stream ?? output().stderr;
  const now = opts.now ?? Date.now;
  const tty = opts.mode === "tty" || (opts.mode !== "plain" && isTerminal(out));
  const renderer: Renderer = tty && !opts.quiet
    ? new TtyRenderer({
      out,
      color: opts.color,
      now,
      unicode: opts.unicode ?? unicodeLocale(),
      columns: () => (out.columns && out.columns > 0 ? out.columns : 80),
      // Each frame samples the image being written (sampleImage is defined below, before any frame).
      onTick: () => sampleImage(),
    })
    : new PlainRenderer({ out, color: opts.color, now, phases: !opts.quiet });

  let current: PhaseState | undefined;
  /** The transaction's "building" starts with evaluation; it becomes "building" when `nix build` runs. */
  let awaitingBuild = false;
  /** The image mkfs.erofs is writing, sampled for the bytes written so far. */
  let watched: string | undefined;
  /** Commands running now (several nix evals run at once), newest last. */
  const running: { command: string; activity: string }[] = [];

  const sampleImage = () => {
    if (!current || watched === undefined) return;
    try {
      current.bytes = statSync(watched).size;
    } catch {
      /* not created yet, or already renamed */
    }
  };

  const finishPhase = (ok: boolean) => {
    if (!current) return;
    renderer.phaseEnded(current, ok);
    current = undefined;
  };
  const startPhase = (name: string, detail: string | undefined) => {
    finishPhase(true);
    current = newPhase(name, detail, now());
    renderer.phaseStarted(current);
  };
  const debug = (message: string) => {
    if (opts.verbose) renderer.line("debug", message);
  };

  return {
    phase(name, detail) {
      awaitingBuild = name === "building";
      startPhase(awaitingBuild ? "evaluating" : name, detail);
    },
    info(message) {
      if (!opts.quiet) renderer.line("info", message);
    },
    warn(message) {
      renderer.line("warn", message);
    },
    debug,
    progress(done, total, unit) {
      if (!current) return;
      current.done = done;
      current.unit = unit;
      if (total === undefined) delete current.total;
      else current.total = total;
      renderer.changed(current);
    },
    nixLog(line) {
      // Builders' output is anyone's text: no escape sequences reach the terminal or a log file.
      debug(printable(line));
      if (current && applyNixLine(current, line)) renderer.changed(current);
    },
    commandStarted(event) {
      debug(`$ ${displayCommand(event.file, event.args)}`);
      const kind = classifyCommand(event.file, event.args);
      if (kind.kind === "nix-build" && awaitingBuild && current) {
        awaitingBuild = false;
        startPhase("building", current.detail);
      }
      if (kind.kind === "mkfs") watched = kind.image;
      if (!current) return;
      const activity = commandActivity(event.file, event.args);
      running.push({ command: event.command, activity });
      current.current = activity;
      renderer.changed(current);
    },
    commandFinished(event) {
      debug(`  exit ${event.exitCode} after ${formatElapsed(event.durationMs)}`);
      const at = running.findIndex((r) => r.command === event.command);
      const activity = at >= 0 ? running.splice(at, 1)[0]?.activity : undefined;
      if (classifyCommand(event.file, event.args).kind === "mkfs") {
        sampleImage();
        watched = undefined;
      }
      if (!current) return;
      // Show another command that is still running, or nothing.
      const still = running.at(-1)?.activity;
      if (still === undefined) delete current.current;
      else if (current.current === activity) current.current = still;
      renderer.changed(current);
    },
    settle(ok) {
      awaitingBuild = false;
      finishPhase(ok);
    },
    end(ok) {
      finishPhase(ok);
      renderer.close();
    },
  };
}
