import { describeCounters, describeOutcome, formatElapsed, settledCounts, type PhaseState } from "./progress.js";
import type { Renderer, RendererOptions } from "./progress-plain.js";

// On a terminal: the running phase is one line, redrawn in place (spinner, counters, elapsed time);
// when the phase ends it is settled into a permanent line (✓ or ✗ with its duration). Messages are
// printed above the live line. The line never wraps: a wrapped line cannot be redrawn with \r.

const CLEAR_LINE = "\r\x1b[2K";
const SPINNER_UNICODE = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const SPINNER_ASCII = ["-", "\\", "|", "/"];
const FRAME_MS = 100;

interface Piece {
  text: string;
  style?: string;
}

export class TtyRenderer implements Renderer {
  private live: PhaseState | undefined;
  private drawn = false;
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastDraw = 0;

  constructor(
    private readonly opts: RendererOptions & { unicode: boolean; columns: () => number; onTick?: () => void },
  ) {}

  phaseStarted(p: PhaseState): void {
    this.live = p;
    this.draw();
    if (!this.timer) {
      this.timer = setInterval(() => {
        this.frame++;
        this.opts.onTick?.();
        this.draw();
      }, FRAME_MS);
      // Never keep the process alive just to animate.
      this.timer.unref();
    }
  }

  phaseEnded(p: PhaseState, ok: boolean): void {
    this.clear();
    const mark = ok ? { text: this.opts.unicode ? "✓" : "ok", style: "32" } : { text: this.opts.unicode ? "✗" : "!!", style: "31" };
    const outcome = ok ? describeOutcome(p) : describeCounters(settledCounts(p), { failed: true });
    this.write([
      mark,
      { text: " " },
      { text: p.name, style: "1" },
      ...(p.detail ? [{ text: ` ${p.detail}` }] : []),
      ...(outcome ? [{ text: ` · ${outcome}` }] : []),
      { text: `  ${formatElapsed(this.opts.now() - p.startedAt)}`, style: "2" },
    ]);
    this.opts.out.write("\n");
    if (this.live === p) this.live = undefined;
  }

  changed(): void {
    // Nix can print hundreds of lines a second; redraw at most every 50 ms in between frames.
    if (this.opts.now() - this.lastDraw >= 50) this.draw();
  }

  line(kind: "info" | "warn" | "debug", text: string): void {
    this.clear();
    if (kind === "warn") this.opts.out.write(`${this.paint("33", "warning:")} ${text}\n`);
    else if (kind === "debug") this.opts.out.write(`${this.paint("2", text)}\n`);
    else this.opts.out.write(`${text}\n`);
    this.draw();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private draw(): void {
    const p = this.live;
    if (!p) return;
    const spinner = this.opts.unicode ? SPINNER_UNICODE : SPINNER_ASCII;
    const counters = describeCounters(p);
    const status = [counters, p.current].filter((s): s is string => !!s).join(" · ");
    this.opts.out.write(CLEAR_LINE);
    this.write([
      { text: spinner[this.frame % spinner.length] ?? "", style: "36" },
      { text: " " },
      { text: p.name, style: "1" },
      ...(p.detail ? [{ text: ` ${p.detail}` }] : []),
      ...(status ? [{ text: ` · ${status}` }] : []),
      { text: `  ${formatElapsed(this.opts.now() - p.startedAt)}`, style: "2" },
    ]);
    this.drawn = true;
    this.lastDraw = this.opts.now();
  }

  private clear(): void {
    if (!this.drawn) return;
    this.opts.out.write(CLEAR_LINE);
    this.drawn = false;
  }

  /** Writes pieces cut to the terminal width (the elapsed time is kept: it is what moves). */
  private write(pieces: Piece[]): void {
    const width = Math.max(20, this.opts.columns() - 1);
    const last = pieces[pieces.length - 1];
    const reserved = last ? [...last.text].length : 0;
    let room = width - reserved;
    let out = "";
    for (const piece of pieces.slice(0, -1)) {
      if (room <= 0) break;
      const chars = [...piece.text];
      const text = chars.length > room ? chars.slice(0, Math.max(0, room - 1)).join("") + "…" : piece.text;
      room -= [...text].length;
      out += piece.style ? this.paint(piece.style, text) : text;
    }
    if (last) out += last.style ? this.paint(last.style, last.text) : last.text;
    this.opts.out.write(out);
  }

  private paint(code: string, s: string): string {
    return this.opts.color ? `\x1b[${code}m${s}\x1b[0m` : s;
  }
}
