#!/usr/bin/env node
// npm run screenshots — docs/screenshots/*.png: ext's progress display on a real terminal.
//
// Drives the real CLI (bin/ext.js, the fixture packages, offline Nix) in tmux, inside the tests'
// private mount namespace (test/helpers/namespace.ts: merges touch that namespace's /usr only), as
// test/integration/walkthrough.test.ts does; captures each screen with its colours (capture-pane -e),
// turns the cells into an SVG (our own code below: one monospace cell per character, SGR colours)
// and renders it with rsvg-convert (Debian's librsvg2-bin, in scripts/setup.sh). Needs root, like the
// integration tests, and `npm run build` first. Look at the PNGs before committing them.
//
//   add-progress.png   an `ext add` in progress: settled phases (✓) and the running one (spinner)
//   add-done.png       a finished `ext add`: every phase ✓, the result line
//   add-failed.png     a failed `ext add broken`: the failed phase ✗, the error and its hint
import { build } from "esbuild";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(REPO, "docs/screenshots");
const COLS = 100;
const ROWS = 16;
const PROMPT = "$ ";

if (process.getuid?.() !== 0) {
  console.error("screenshots: run as root (the namespace and ext add need it), like the integration tests");
  process.exit(1);
}
for (const tool of ["tmux", "rsvg-convert", "nsenter"]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
    console.error(`screenshots: ${tool} is missing (bash scripts/setup.sh installs it)`);
    process.exit(1);
  }
}

const work = mkdtempSync(join(tmpdir(), "ext-shots-"));
chmodSync(work, 0o755);

// The tests' own namespace and offline Nix settings, compiled from test/helpers/ for this one run.
const helperFile = join(work, "helpers.mjs");
await build({
  absWorkingDir: REPO,
  stdin: { contents: 'export * from "./test/helpers/namespace.ts"; export * from "./test/helpers/nix-env.ts";', resolveDir: REPO, loader: "ts" },
  bundle: true,
  platform: "node",
  format: "esm",
  outfile: helperFile,
  logLevel: "warning",
});
// (Their REPO, EXT and FIXTURES are computed from the bundle's place, so this script names its own.)
const helpers = await import(pathToFileURL(helperFile).href);
const { openNamespace, OFFLINE_NIX_CONFIG } = helpers;
const EXT = join(REPO, "bin/ext.js");
const FIXTURES = `path:${REPO}/test/fixtures`;

const socket = join(work, "tmux.sock");
const tmux = (...args) => execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8" });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The visible screen, plain (for waiting) or with its SGR sequences (for the picture). */
const screen = (colours = false) => tmux("capture-pane", "-p", ...(colours ? ["-e"] : []), "-t", "shot");
const atPrompt = () => screen().replace(/\s+$/, "").split("\n").at(-1) === PROMPT.trimEnd();

async function waitFor(what, cond, ms = 120_000) {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}; the screen:\n${screen()}`);
    await sleep(100);
  }
}

/** A fresh screen with only `line` typed on it. */
async function typeLine(line) {
  tmux("send-keys", "-t", "shot", "clear", "Enter");
  await waitFor("a clear screen", () => screen().trim() === PROMPT.trim());
  tmux("clear-history", "-t", "shot");
  tmux("send-keys", "-t", "shot", "-l", line);
  tmux("send-keys", "-t", "shot", "Enter");
  await sleep(200);
}

// ---------------------------------------------------------------------------------------------
// ANSI screen → SVG.

const PALETTE = ["#1e1e1e", "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#d7dae0",
  "#5c6370", "#ff7b86", "#b5e890", "#ffd68a", "#7cc4ff", "#de9cf0", "#7fd4de", "#ffffff"];
const FG = "#d7dae0";
const BG = "#1e1e1e";

function xterm256(n) {
  if (n < 16) return PALETTE[n];
  if (n >= 232) {
    const v = (8 + (n - 232) * 10).toString(16).padStart(2, "0");
    return `#${v}${v}${v}`;
  }
  const i = n - 16;
  const c = (x) => (x === 0 ? 0 : 55 + x * 40).toString(16).padStart(2, "0");
  return `#${c(Math.floor(i / 36))}${c(Math.floor(i / 6) % 6)}${c(i % 6)}`;
}

/** Applies one SGR sequence's parameters to the current style. */
function sgr(style, params) {
  const p = params.length === 0 ? [0] : params;
  for (let i = 0; i < p.length; i++) {
    const n = p[i];
    if (n === 0) Object.assign(style, { fg: FG, bold: false, dim: false });
    else if (n === 1) style.bold = true;
    else if (n === 2) style.dim = true;
    else if (n === 22) Object.assign(style, { bold: false, dim: false });
    else if (n >= 30 && n <= 37) style.fg = PALETTE[n - 30];
    else if (n >= 90 && n <= 97) style.fg = PALETTE[n - 90 + 8];
    else if (n === 39) style.fg = FG;
    else if (n === 38 && p[i + 1] === 5) { style.fg = xterm256(p[i + 2]); i += 2; }
    else if (n === 38 && p[i + 1] === 2) { style.fg = `#${p.slice(i + 2, i + 5).map((v) => v.toString(16).padStart(2, "0")).join("")}`; i += 4; }
  }
}

/** The screen as rows of cells {ch, fg, bold, dim}. */
function cells(ansi) {
  const style = { fg: FG, bold: false, dim: false };
  return ansi.replace(/\n$/, "").split("\n").map((line) => {
    const row = [];
    for (let i = 0; i < line.length; ) {
      const m = /^\x1b\[([0-9;]*)m/.exec(line.slice(i));
      if (m) {
        sgr(style, m[1] === "" ? [] : m[1].split(";").map(Number));
        i += m[0].length;
        continue;
      }
      const ch = String.fromCodePoint(line.codePointAt(i));
      row.push({ ch, ...style });
      i += ch.length;
    }
    return row;
  });
}

const escapeXml = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function svg(ansi, title) {
  const rows = cells(ansi);
  while (rows.length > 0 && rows.at(-1).every((c) => c.ch === " ")) rows.pop();
  const cw = 9.6, lh = 20, pad = 16, bar = 28;
  const width = Math.ceil(COLS * cw + 2 * pad);
  const height = Math.ceil(bar + rows.length * lh + 2 * pad);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" rx="8" fill="${BG}"/>`,
    `<rect width="100%" height="${bar}" rx="8" fill="#2c2f36"/><rect y="${bar - 8}" width="100%" height="8" fill="#2c2f36"/>`,
    ...["#ff5f56", "#ffbd2e", "#27c93f"].map((c, i) => `<circle cx="${pad + i * 20}" cy="${bar / 2}" r="6" fill="${c}"/>`),
    `<text x="${width / 2}" y="${bar / 2 + 5}" fill="#9da5b4" font-family="DejaVu Sans" font-size="13" text-anchor="middle">${escapeXml(title)}</text>`,
    `<g font-family="DejaVu Sans Mono, DejaVu Sans" font-size="16" xml:space="preserve">`,
  ];
  rows.forEach((row, y) => {
    // One text element per run of same-styled ASCII; every other character in its own cell, so a
    // glyph from a fallback font (the braille spinner) cannot shift the rest of the line.
    let col = 0;
    while (col < row.length) {
      const c = row[col];
      let end = col + 1;
      const ascii = c.ch < "\x7f";
      while (ascii && end < row.length && row[end].ch < "\x7f" && row[end].fg === c.fg && row[end].bold === c.bold && row[end].dim === c.dim) end++;
      const textRun = row.slice(col, end).map((x) => x.ch).join("");
      if (textRun.trim() !== "") {
        const attrs = [`x="${(pad + col * cw).toFixed(1)}"`, `y="${bar + pad + y * lh + 15}"`, `fill="${c.fg}"`];
        if (c.bold) attrs.push('font-weight="bold"');
        if (c.dim) attrs.push('opacity="0.6"');
        out.push(`<text ${attrs.join(" ")}>${escapeXml(textRun)}</text>`);
      }
      col = end;
    }
  });
  out.push("</g>", "</svg>");
  return out.join("\n");
}

function shoot(name, title) {
  const file = join(OUT, `${name}.png`);
  const svgFile = join(work, `${name}.svg`);
  writeFileSync(svgFile, svg(screen(true), title));
  execFileSync("rsvg-convert", ["--format", "png", "--output", file, svgFile]);
  console.log(`screenshots: wrote ${file}`);
}

// ---------------------------------------------------------------------------------------------

const ns = openNamespace();
try {
  const bin = join(work, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "ext"), `#!/bin/sh\nexec node ${EXT} "$@"\n`);
  chmodSync(join(bin, "ext"), 0o755);
  const rc = join(work, "bashrc");
  const env = { PATH: `${bin}:${process.env.PATH}`, NIX_CONFIG: OFFLINE_NIX_CONFIG, EXT_SOURCE: FIXTURES, LANG: "C.UTF-8", TERM: "xterm-256color" };
  const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`).join("\n");
  writeFileSync(rc, `${exports}\nunset NO_COLOR\nPS1='${PROMPT}'\nPROMPT_COMMAND=\nunset HISTFILE\n`);
  const start = spawnSync("nsenter", [`--target=${ns.pid}`, "--mount", "--",
    "tmux", "-S", socket, "-f", "/dev/null", "new-session", "-d", "-s", "shot", "-x", String(COLS), "-y", String(ROWS),
    "bash", "--noprofile", "--rcfile", rc, "-i"], { encoding: "utf8", env: { ...process.env, TERM: "xterm-256color" } });
  if (start.status !== 0) throw new Error(`tmux did not start: ${start.stderr}`);
  tmux("set-option", "-t", "shot", "default-terminal", "xterm-256color");
  await waitFor("the first prompt", atPrompt, 20_000);
  mkdirSync(OUT, { recursive: true });

  // Builds the fixtures once, so the pictures below show ext's phases and not a first Nix build.
  await typeLine(`ext build ripgrep jq hello -o ${join(work, "warm.raw")}`);
  await waitFor("the warm-up", atPrompt, 600_000);

  await typeLine("ext add ripgrep jq");
  await waitFor("the add to finish", atPrompt);
  shoot("add-done", "ext add: every phase settled, then the result");

  await typeLine("ext add broken");
  await waitFor("the failed add", atPrompt);
  shoot("add-failed", "ext add: a build that fails is marked ✗");

  // In progress: the transaction held at the start of its pack step by the tests' seam
  // (EXT_TEST_PAUSE_AT, set before the screen is cleared), so the picture shows settled phases and
  // the running one (staging, which the pack step's start would settle); then it is interrupted.
  tmux("send-keys", "-t", "shot", "export EXT_TEST_PAUSE_AT=pack", "Enter");
  await typeLine("ext add hello");
  await waitFor("the running phase", () => /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] staging/m.test(screen()), 120_000);
  await sleep(2500);
  shoot("add-progress", "ext add: in progress");
  tmux("send-keys", "-t", "shot", "C-c");
  await waitFor("the interrupted add", atPrompt, 60_000);
} finally {
  try { tmux("kill-server"); } catch { /* already gone */ }
  ns.close();
  rmSync(work, { recursive: true, force: true });
}
