import { describeOutcome, formatElapsed, type PhaseState } from "./progress.js";
import type { TextOut } from "./streams.js";

// Not a terminal (a log file, CI, a pipe): one line when a phase starts, one when it achieved
// something worth saying, each stamped with the time since ext started. Nothing is redrawn.

export interface RendererOptions {
  out: TextOut;
  color: boolean;
  now: () => number;
}

/** How the reporter's events become text. */
export interface Renderer {
  phaseStarted(p: PhaseState): void;
  phaseEnded(p: PhaseState, ok: boolean): void;
  /** Counters or the current activity of the running phase changed. */
  changed(p: PhaseState): void;
  line(kind: "info" | "warn" | "debug", text: string): void;
  close(): void;
}

export class PlainRenderer implements Renderer {
  private readonly started: number;

  constructor(private readonly opts: RendererOptions & { phases: boolean }) {
    this.started = opts.now();
  }

  phaseStarted(p: PhaseState): void {
    if (!this.opts.phases) return;
    this.opts.out.write(`${this.stamp()} ${this.paint("1", p.name)}${p.detail ? ` ${p.detail}` : ""}\n`);
  }

  phaseEnded(p: PhaseState, ok: boolean): void {
    if (!this.opts.phases) return;
    const outcome = ok ? describeOutcome(p) : "failed";
    if (outcome) this.opts.out.write(`${this.stamp()} ${p.name}: ${outcome} (${formatElapsed(this.opts.now() - p.startedAt)})\n`);
  }

  changed(): void {}

  line(kind: "info" | "warn" | "debug", text: string): void {
    if (kind === "warn") this.opts.out.write(`${this.paint("33", "warning:")} ${text}\n`);
    else if (kind === "debug") this.opts.out.write(`${this.paint("2", text)}\n`);
    else this.opts.out.write(`${text}\n`);
  }

  close(): void {}

  private stamp(): string {
    return this.paint("2", `[${formatElapsed(this.opts.now() - this.started)}]`);
  }

  private paint(code: string, s: string): string {
    return this.opts.color ? `\x1b[${code}m${s}\x1b[0m` : s;
  }
}
