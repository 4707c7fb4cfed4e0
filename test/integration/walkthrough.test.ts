import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, EXT, FIXTURES, type Namespace } from "../helpers/namespace.js";
import { OFFLINE_NIX_CONFIG } from "../helpers/nix-env.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 19: the first hour as a person sees it. A real terminal (tmux) runs a shell in a private mount
// namespace (merges touch that namespace's /usr only); the test types what the README says — typos,
// add, list, generations, rollback, export and apply, completion with TAB, a read-only command as
// another user — and reads the screen back with capture-pane. The progress display is the terminal one (redrawn in
// place, ✓/✗), so what is asserted is what stays on the screen, not a log.

const PROMPT = "walk$ ";
// tmux is installed by scripts/setup.sh here and is in .ci/host-packages.txt for the host-matrix
// trees: the walk-through runs on every host, and a missing tmux fails here loudly.
let ns: Namespace;
let work: string;
let socket: string;

function tmux(...args: string[]): string {
  return execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8" });
}

/** Everything the pane shows, scrollback included, without trailing blank lines. */
function screen(): string {
  return tmux("capture-pane", "-p", "-J", "-S", "-2000").replace(/\s+$/, "");
}

/** The screen's trailing spaces are trimmed: an empty prompt line is "walk$". */
const isPrompt = (l: string) => l === PROMPT.trimEnd() || l.startsWith(PROMPT);

function prompts(text: string): number {
  return text.split("\n").filter(isPrompt).length;
}

async function waitFor(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}; the screen:\n${screen()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Types a command line, presses Enter, waits for the next prompt; returns what the command printed. */
async function type(line: string): Promise<string> {
  const before = prompts(screen());
  tmux("send-keys", "-t", "walk", "-l", line);
  tmux("send-keys", "-t", "walk", "Enter");
  await waitFor(`'${line}' to finish`, () => {
    const s = screen();
    return prompts(s) > before && (s.split("\n").at(-1) ?? "") === PROMPT.trimEnd();
  });
  const lines = screen().split("\n");
  const at = lines.findLastIndex((l) => l === `${PROMPT}${line}`);
  return lines.slice(at + 1, -1).join("\n");
}

beforeAll(async () => {
  ensureBuilt();
  ns = openNamespace();
  work = mkdtempSync(join(tmpdir(), "ext-walk-"));
  chmodSync(work, 0o755);
  socket = join(work, "tmux.sock");
  // `ext` on PATH, as after scripts/install.sh, with the offline fixture source.
  const bin = join(work, "bin");
  execFileSync("mkdir", ["-p", bin]);
  writeFileSync(join(bin, "ext"), `#!/bin/sh\nexec node ${EXT} "$@"\n`);
  chmodSync(join(bin, "ext"), 0o755);
  // The shell's whole setup in its rc file (the environment of a tmux session is not the shell's:
  // login files may reset PATH).
  const rc = join(work, "bashrc");
  const env: Record<string, string> = {
    PATH: `${bin}:${process.env["PATH"]}`,
    NIX_CONFIG: OFFLINE_NIX_CONFIG,
    EXT_SOURCE: FIXTURES,
    LANG: "C.UTF-8",
  };
  const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`).join("\n");
  writeFileSync(rc, `${exports}\nPS1='${PROMPT}'\nPROMPT_COMMAND=\nunset HISTFILE\n`);
  // The tmux server starts inside the namespace (nsenter), so the shell and every ext it runs do;
  // clients reach it through the socket.
  const start = spawnSync("nsenter", [
    `--target=${ns.pid}`, "--mount", "--",
    "tmux", "-S", socket, "-f", "/dev/null", "new-session", "-d", "-s", "walk", "-x", "160", "-y", "50",
    "bash", "--noprofile", "--rcfile", rc, "-i",
  ], { encoding: "utf8" });
  if (start.status !== 0) throw new Error(`tmux did not start: ${start.stderr}`);
  await waitFor("the first prompt", () => (screen().split("\n").at(-1) ?? "") === PROMPT.trimEnd(), 20_000);
}, 120_000);

afterAll(() => {
  try {
    if (socket) tmux("kill-server");
  } catch {
    /* already gone */
  }
  ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the first hour, in a terminal", () => {
  it("a typo in a command: the command meant, never one that does not exist", async () => {
    const out = await type("ext install ripgrep");
    expect(out).toMatch(/^ext: unknown command 'install'$/m);
    expect(out).toMatch(/^hint: did you mean 'ext add'\?/m);
  });

  it("a typo in a package: close names, no 'rolling back', nothing installed", async () => {
    const out = await type("ext add ripgrp");
    expect(out).toMatch(/^ext: unknown package 'ripgrp' in /m);
    expect(out).toMatch(/^hint: did you mean 'ripgrep'\?/m);
    expect(out).not.toMatch(/rolling back|✓ building/);
    expect(await type("ext list")).toMatch(/nothing installed/);
  });

  it("add: each phase settled with ✓, then the result", async () => {
    const out = await type("ext add ripgrep greet");
    for (const phase of ["evaluating", "building", "closure", "staging", "packing", "verifying", "activating"]) {
      expect(out, phase).toMatch(new RegExp(`^✓ ${phase}\\b.*\\d\\.\\ds$`, "m"));
    }
    expect(out).toMatch(/^warning: .*greet\/cut\.gz: its gzip content could not be searched/m);
    expect(out).toMatch(/^generation 1 is active \(\+greet 1\.0, \+ripgrep 13\.0\.0\)$/m);
    // The spinner's frames were redrawn in place: no line is left half-drawn.
    expect(out).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
    expect(await type("rg --version | head -1")).toMatch(/^ripgrep 13\.0\.0/m);
  });

  it("a failed build is shown as failed (✗), and changes nothing", async () => {
    const out = await type("ext add broken");
    expect(out).toMatch(/^✗ building broken · 1 build started\b/m);
    expect(out).not.toMatch(/✓ building broken|rolling back/);
    expect(out).toMatch(/^ext: package 'broken' failed to build/m);
  });

  it("list, add another, generations, rollback", async () => {
    expect(await type("ext list")).toMatch(/^greet\s+1\.0\s[\s\S]*^ripgrep\s+13\.0\.0\s/m);
    expect(await type("ext add hello")).toMatch(/^generation 2 is active \(\+hello 2\.10\)$/m);
    const gens = await type("ext generations");
    expect(gens).toMatch(/^\s+1\s+\S+ \S+\s+greet ripgrep\s/m);
    expect(gens).toMatch(/^\*\s+2\s+\S+ \S+\s+greet hello ripgrep\s.*\+hello 2\.10$/m);
    expect(await type("ext rollback")).toMatch(/^generation 1 is active \(-hello\)$/m);
    expect(await type("ext generations")).toMatch(/^\*\s+1\s/m);
    expect(await type("command -v hello || echo gone")).toMatch(/^gone$/m);
  });

  it("export the set to a tools.json and apply it: nothing to do", async () => {
    const file = join(work, "tools.json");
    expect(await type(`ext export ${file}`)).toMatch(new RegExp(`^wrote ${file} \\(2 packages\\)`, "m"));
    expect(await type(`ext apply ${file}`)).toMatch(/^nothing to do: the system already matches$/m);
    expect(await type(`ext untrack`)).toMatch(/no longer tracking/);
  });

  it("a mistyped option names the one meant", async () => {
    const out = await type("ext add --allow-unfre hello");
    expect(out).toMatch(/^ext: unknown option --allow-unfre for 'ext add'$/m);
    expect(out).toMatch(/^hint: did you mean --allow-unfree\?/m);
  });

  it("a closed pipe is the end of the output, not a stack trace", async () => {
    const out = await type("ext generations | head -1; echo status=${PIPESTATUS[0]}");
    expect(out).toMatch(/^\s+ID\s+DATE/m);
    expect(out).toMatch(/^status=0$/m);
    expect(out).not.toMatch(/EPIPE|at .*:\d+:\d+/);
  });

  it("completion with TAB: commands, and installed names for remove", async () => {
    await type("source <(ext completion bash)");
    tmux("send-keys", "-t", "walk", "-l", "ext generat");
    tmux("send-keys", "-t", "walk", "Tab");
    await waitFor("the completed command", () => (screen().split("\n").at(-1) ?? "") === `${PROMPT}ext generations`, 20_000);
    tmux("send-keys", "-t", "walk", "C-u");
    tmux("send-keys", "-t", "walk", "-l", "ext remove rip");
    tmux("send-keys", "-t", "walk", "Tab");
    await waitFor("the completed package", () => (screen().split("\n").at(-1) ?? "") === `${PROMPT}ext remove ripgrep`, 20_000);
    tmux("send-keys", "-t", "walk", "C-u");
  });

  it("a read-only command as another user needs no root", async () => {
    const out = await type("setpriv --reuid=65534 --regid=65534 --clear-groups env PATH=$PATH ext list");
    expect(out).toMatch(/^ripgrep\s+13\.0\.0/m);
    expect(await type("setpriv --reuid=65534 --regid=65534 --clear-groups env PATH=$PATH ext add jq")).toMatch(/needs root/);
  });
});
