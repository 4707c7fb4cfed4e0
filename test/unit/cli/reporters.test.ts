import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createReporter, isTerminal, type ReporterOptions } from "../../../src/cli/reporters.js";

// A stream that records what was written, and a clock the test moves.
function fakeStream(tty: boolean, columns = 100) {
  const chunks: string[] = [];
  return {
    isTTY: tty,
    columns,
    chunks,
    text: () => chunks.join(""),
    write(chunk: string) {
      chunks.push(chunk);
      return true;
    },
  };
}

function setup(opts: Partial<ReporterOptions> & { tty: boolean }) {
  const stream = fakeStream(opts.tty);
  let t = 1000;
  const clock = { advance: (ms: number) => (t += ms) };
  const reporter = createReporter({ quiet: false, verbose: false, color: false, unicode: true, ...opts, stream: stream as never, now: () => t });
  return { stream, reporter, clock };
}

const ev = (file: string, args: string[]) => ({ file, args, command: [file, ...args].join(" ") });
const done = (e: ReturnType<typeof ev>, exitCode = 0) => ({ ...e, exitCode, durationMs: 100 });

/** What a terminal would show: apply \r and "erase line" like a terminal does. */
function screen(text: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (text.startsWith("\x1b[2K", i)) {
      line = "";
      i += 3;
    } else if (c === "\r") line = "";
    else if (c === "\n") {
      lines.push(line);
      line = "";
    } else line += c;
  }
  if (line) lines.push(line);
  return lines;
}

describe("terminal renderer", () => {
  it("evaluating → building (when nix build starts) → packing with bytes, each settled with its time", () => {
    const { stream, reporter, clock } = setup({ tty: true });
    reporter.phase("building", "ripgrep, jq");
    const evalCmd = ev("nix", ["eval", "--json", "path:/x#jq"]);
    reporter.commandStarted(evalCmd);
    clock.advance(300);
    reporter.commandFinished(done(evalCmd));
    const build = ev("nix", ["build", "--no-link", "path:/x#jq"]);
    reporter.commandStarted(build);
    reporter.nixLog("building '/nix/store/gfkcmicq5ipp8dkq5i0x2kaqpy8sxkr3-jq-1.6.drv'...");
    clock.advance(1200);
    reporter.commandFinished(done(build));
    reporter.phase("staging", "4 store paths");
    clock.advance(100);
    const dir = mkdtempSync(join(tmpdir(), "ext-rep-"));
    const image = join(dir, "pack.raw");
    writeFileSync(image, Buffer.alloc(2048));
    reporter.phase("packing", "lz4hc");
    const mkfs = ev("mkfs.erofs", ["-zlz4hc", image, join(dir, "stage")]);
    reporter.commandStarted(mkfs);
    clock.advance(500);
    reporter.commandFinished(done(mkfs));
    reporter.phase("activating", "generation 1");
    clock.advance(50);
    reporter.end(true);
    rmSync(dir, { recursive: true, force: true });

    // Redrawn in place: every live line starts by erasing the line.
    expect(stream.text()).toContain("\r\x1b[2K");
    expect(screen(stream.text())).toEqual([
      "✓ evaluating ripgrep, jq  0.3s",
      "✓ building ripgrep, jq · 1 built  1.2s",
      "✓ staging 4 store paths  0.1s",
      "✓ packing lz4hc · 2.0 KiB written  0.5s",
      "✓ activating generation 1  0.1s",
    ]);
  });

  it("shows counters and the running command in the live line, and ✗ when the command fails", () => {
    const { stream, reporter, clock } = setup({ tty: true });
    reporter.phase("building", "jq");
    reporter.commandStarted(ev("nix", ["build", "x"]));
    reporter.nixLog("copying path '/nix/store/329d4criy83kacz2my04x285154880d0-oniguruma-6.9.8' from 'https://cache.nixos.org'...");
    clock.advance(2500);
    reporter.nixLog("building '/nix/store/gfkcmicq5ipp8dkq5i0x2kaqpy8sxkr3-jq-1.6.drv'...");
    const live = screen(stream.text()).at(-1);
    expect(live).toMatch(/^\S building jq · 1 built, 1 fetched · building jq-1\.6  2\.5s$/);
    reporter.end(false);
    // The build Nix started did not finish: not "1 built" (issue 19).
    expect(screen(stream.text()).at(-1)).toBe("✗ building jq · 1 build started, 1 fetched  2.5s");
  });

  it("prints messages above the live line and never wraps it", () => {
    const stream = fakeStream(true, 30);
    const reporter = createReporter({ quiet: false, verbose: false, color: false, unicode: false, stream: stream as never, now: () => 0 });
    reporter.phase("staging", "a very long detail that does not fit in thirty columns");
    reporter.warn("something odd");
    reporter.info("fyi");
    const shown = screen(stream.text());
    expect(shown.slice(0, 2)).toEqual(["warning: something odd", "fyi"]);
    for (const line of shown) expect([...line].length).toBeLessThan(30);
    expect(shown.at(-1)).toMatch(/…  0\.0s$/);
    reporter.end(true);
  });

  it("paints with color, and without when color is off (NO_COLOR)", () => {
    const painted = setup({ tty: true, color: true });
    painted.reporter.phase("staging");
    painted.reporter.end(true);
    expect(painted.stream.text()).toMatch(/\x1b\[1mstaging\x1b\[0m/);
    const plain = setup({ tty: true, color: false });
    plain.reporter.phase("staging");
    plain.reporter.warn("w");
    plain.reporter.end(true);
    // Only cursor control, no SGR (color) sequences.
    expect(plain.stream.text()).not.toMatch(/\x1b\[[0-9;]*m/);
  });
});

describe("plain renderer (not a terminal)", () => {
  it("one line per phase with the time since start, a line for what it achieved, nothing redrawn", () => {
    const { stream, reporter, clock } = setup({ tty: false });
    reporter.phase("building", "jq");
    clock.advance(400);
    reporter.commandStarted(ev("nix", ["build", "x"]));
    reporter.nixLog("building '/nix/store/gfkcmicq5ipp8dkq5i0x2kaqpy8sxkr3-jq-1.6.drv'...");
    clock.advance(600);
    reporter.phase("staging", "4 store paths");
    reporter.end(true);
    expect(stream.text()).not.toMatch(/[\r\x1b]/);
    expect(stream.text().split("\n").filter(Boolean)).toEqual([
      "[0.0s] evaluating jq",
      "[0.4s] building jq",
      "[1.0s] building: 1 built (0.6s)",
      "[1.0s] staging 4 store paths",
    ]);
  });

  it("--quiet: warnings only; --verbose: the commands, their exit codes and Nix's output", () => {
    const quiet = setup({ tty: true, quiet: true });
    quiet.reporter.phase("building", "jq");
    quiet.reporter.info("info");
    quiet.reporter.warn("careful");
    quiet.reporter.commandStarted(ev("nix", ["build", "x"]));
    quiet.reporter.end(true);
    expect(quiet.stream.text()).toBe("warning: careful\n");

    const verbose = setup({ tty: false, verbose: true });
    const cmd = ev("systemd-sysext", ["refresh"]);
    verbose.reporter.commandStarted(cmd);
    verbose.reporter.nixLog("jq> compiling");
    verbose.reporter.commandFinished({ ...cmd, exitCode: 1, durationMs: 1234 });
    verbose.reporter.end(false);
    expect(verbose.stream.text()).toBe("$ systemd-sysext refresh\njq> compiling\n  exit 1 after 1.2s\n");
  });
});

describe("isTerminal", () => {
  it("needs a TTY and a terminal that is not dumb", () => {
    expect(isTerminal({ isTTY: true }, { TERM: "xterm-256color" })).toBe(true);
    expect(isTerminal({ isTTY: true }, { TERM: "dumb" })).toBe(false);
    expect(isTerminal({ isTTY: false }, {})).toBe(false);
    expect(isTerminal({}, {})).toBe(false);
  });
});
