import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXT, extEnv, openNamespace, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 6, progress: a long `ext add` under a pseudo-terminal (script(1)) shows each phase updated in
// place with its elapsed time; without a terminal, plain lines; --quiet, --verbose, --json, NO_COLOR.
// The package is built for real each run: a derivation with a fresh nonce that takes two seconds.

let ns: Namespace;
let source: string;
let dir: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "ext-slow-"));
  const nonce = `${process.pid}-${Date.now()}`;
  // `exit 0` last: see test/fixtures/mk.nix (NixOS/nix#2176, builders killed when the shell exec'd its last command).
  const pkg = (name: string, seconds: number) => `
    ${name} = derivation {
      name = "${name}-1.0";
      inherit system;
      builder = "/bin/sh";
      args = [ "-c" "echo ${name}: compiling; sleep ${seconds}; echo ${name}: linking; mkdir -p $out/bin; printf '#!/bin/sh\\\\necho ${name}\\\\n' > $out/bin/${name}; chmod +x $out/bin/${name}; exit 0" ];
      PATH = "/usr/bin:/bin";
      nonce = "${nonce}";
    };`;
  writeFileSync(join(dir, "flake.nix"), `{
  outputs = { self }: let system = "x86_64-linux"; in {
    packages.\${system} = {${pkg("slowpoke", 2)}${pkg("quickpoke", 0)}${pkg("colorpoke", 1)}
    };
  };
}
`);
  source = `path:${dir}`;
  ns = openNamespace();
});
afterAll(() => {
  ns?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs ext under script(1): a pseudo-terminal on stdout and stderr. Returns what the terminal got. */
function underTerminal(args: string[], env: Record<string, string>): { status: number; output: string } {
  const command = ["node", EXT, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  const r = ns.run(["script", "--quiet", "--flush", "--return", "--command", command, "/dev/null"], { env });
  return { status: r.status, output: r.stdout };
}

/** What a terminal shows after \r, "erase line" and colors are applied: the settled lines. */
function screen(text: string): string[] {
  const lines: string[] = [];
  let line = "";
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  for (let i = 0; i < plain.length; i++) {
    if (plain.startsWith("\x1b[2K", i)) {
      line = "";
      i += 3;
    } else if (plain[i] === "\r") {
      if (plain[i + 1] !== "\n") line = "";
    } else if (plain[i] === "\n") {
      lines.push(line);
      line = "";
    } else line += plain[i];
  }
  if (line) lines.push(line);
  return lines;
}

/** Every state the live line went through (each redraw starts with \r ESC[2K). */
function redraws(text: string): string[] {
  return text.replace(/\x1b\[[0-9;]*m/g, "").split("\r\x1b[2K").map((s) => s.split(/\r?\n/)[0] ?? "").filter(Boolean);
}

describe("on a terminal", () => {
  it("each phase updated in place with elapsed time, counts and bytes; settled with ✓ and its duration", () => {
    const env = { ...extEnv({ LANG: "C.UTF-8", TERM: "xterm-256color" }) };
    delete env["NO_COLOR"];
    const { status, output } = underTerminal(["--source", source, "add", "slowpoke"], env);
    expect(status, output).toBe(0);

    // Redrawn in place, many times while Nix builds (the spinner and the clock move).
    const live = redraws(output).filter((l) => /building slowpoke/.test(l) && !l.startsWith("✓"));
    expect(live.length).toBeGreaterThan(10);
    expect(new Set(live.map((l) => /(\d+\.\d)s$/.exec(l)?.[1])).size).toBeGreaterThan(5);
    expect(live.some((l) => /1 built · (building slowpoke-1\.0|slowpoke> slowpoke: compiling)/.test(l))).toBe(true);
    expect(new Set(live.map((l) => l[0])).size).toBeGreaterThan(1); // the spinner turns

    const settled = screen(output).filter((l) => l.startsWith("✓"));
    const phase = (name: string) => settled.find((l) => l.startsWith(`✓ ${name}`));
    expect(phase("evaluating slowpoke")).toMatch(/ \d+\.\ds$/);
    expect(phase("building slowpoke")).toMatch(/^✓ building slowpoke · 1 built +([2-9]|\d\d)\.\ds$/);
    expect(phase("staging")).toMatch(/ \d+\.\ds$/);
    expect(phase("packing")).toMatch(/· [\d.]+ (B|KiB|MiB) written +\d+\.\ds$/);
    expect(phase("activating")).toMatch(/ \d+\.\ds$/);
    // In this order, and the result after them.
    const order = ["evaluating", "building", "staging", "packing", "activating"].map((p) => settled.findIndex((l) => l.startsWith(`✓ ${p}`)));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(screen(output).at(-1)).toMatch(/^image [0-9a-f]{12} /);
    expect(output).toMatch(/generation 1 is active/);
    // Colors on a color terminal.
    expect(output).toMatch(/\x1b\[1mbuilding\x1b\[0m/);
  });

  it("NO_COLOR: still in place, no colors", () => {
    const { status, output } = underTerminal(["--source", source, "add", "colorpoke"], extEnv({ LANG: "C.UTF-8", NO_COLOR: "1" }));
    expect(status, output).toBe(0);
    expect(output).toContain("\r\x1b[2K");
    expect(output).not.toMatch(/\x1b\[[0-9;]*m/);
    expect(screen(output)).toContain(screen(output).find((l) => /^✓ building colorpoke · 1 built/.test(l)));
  });

  it("TERM=dumb: plain lines even on a terminal", () => {
    const { status, output } = underTerminal(["--source", source, "remove", "colorpoke"], extEnv({ TERM: "dumb" }));
    expect(status, output).toBe(0);
    expect(output).not.toContain("\x1b[2K");
    // The image of generation 1 is reused: no staging or packing, straight to activating.
    expect(output).toMatch(/^\[\d+\.\ds\] activating/m);
  });
});

describe("not a terminal", () => {
  it("plain lines with the time since start; the result alone on stdout", () => {
    const r = ns.ext(["--source", source, "add", "quickpoke"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/[\r\x1b]/);
    const lines = r.stderr.split("\n").filter(Boolean);
    for (const p of ["evaluating quickpoke", "building quickpoke", "closure", "staging", "packing", "verifying", "activating"]) {
      expect(lines.some((l) => new RegExp(`^\\[\\d+\\.\\ds\\] ${p}`).test(l)), `${p} in\n${r.stderr}`).toBe(true);
    }
    expect(r.stderr).toMatch(/^\[\d+\.\ds\] packing: [\d.]+ \w+ written \(\d+\.\ds\)$/m);
    expect(r.stdout).toMatch(/^generation \d+ is active/);
    expect(r.stdout).not.toMatch(/^\[/m);
  });

  it("--quiet: nothing but warnings and errors, the result lines included (issue 19)", () => {
    const r = ns.ext(["--source", source, "remove", "quickpoke", "--quiet"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("");
  });

  it("--json: the document alone on stdout, no progress anywhere", () => {
    const r = ns.ext(["--source", source, "add", "quickpoke", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: "done" });
    expect(r.stderr).toBe("");
  });

  it("--verbose: the underlying commands, their exit codes, Nix's output", () => {
    const r = ns.ext(["--source", source, "remove", "quickpoke", "--verbose"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^\$ systemd-sysext refresh/m);
    expect(r.stderr).toMatch(/^  exit 0 after \d+\.\ds$/m);
    // A set no generation had yet, so an image is packed.
    const add = ns.ext(["--source", source, "add", "colorpoke", "quickpoke", "-v"]);
    expect(add.status, add.stderr).toBe(0);
    expect(add.stderr).toMatch(/^\$ nix --extra-experimental-features 'nix-command flakes' eval --json/m);
    expect(add.stderr).toMatch(/--apply 'drv:…'/); // the Nix expression is cut short
    expect(add.stderr).toMatch(/^\$ nix .* build --no-link --json/m);
    expect(add.stderr).toMatch(/^\$ mkfs\.erofs /m);
  });
});
