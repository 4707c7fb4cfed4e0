import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXT, extEnv } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";
import { helpText, parseHelp } from "../helpers/help.js";

// Issue 19: every option is typed, and a bad value is a usage error (exit 2) naming the option and
// what it takes, before any command runs — never an internal error (exit 70) or a value a command
// did not expect. Nothing here reaches a command, so no namespace is needed (root is an empty dir).

let root: string;

beforeAll(() => {
  ensureBuilt();
  root = mkdtempSync(join(tmpdir(), "ext-opt-"));
  chmodSync(root, 0o755); // nobody must reach it
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** As nobody (65534) unless told: a command that gets past parsing stops at "needs root" and changes nothing. */
function ext(args: string[], user = 65534) {
  const argv = ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--clear-groups", process.execPath, EXT, "--root", root, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { env: extEnv(), encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function usage(args: string[], message: RegExp) {
  const r = ext(args);
  expect(r.status, `ext ${args.join(" ")}\n${r.stderr}`).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toMatch(/^hint: .*see 'ext /m);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

/** Every command's options as its --help shows them: name and type tag. */
async function optionsOfEveryCommand(): Promise<{ command: string; usage: string; option: string; type: string | undefined }[]> {
  const top = parseHelp(await helpText(["--help"]));
  const rows: { command: string; usage: string; option: string; type: string | undefined }[] = [];
  for (const c of top.commands) {
    const text = await helpText([c.name, "--help"]);
    const usageLine = text.split("\n")[0] ?? "";
    for (const line of text.split("\n")) {
      const m = /^\s+(?:-\w, )?--([\w-]+)\b/.exec(line);
      if (m) rows.push({ command: c.name, usage: usageLine, option: m[1] ?? "", type: /\[(string|number|boolean)\]/.exec(line)?.[1] });
    }
  }
  return rows;
}

describe("typed options", () => {
  it("every option of every command has a type", async () => {
    const rows = await optionsOfEveryCommand();
    expect(rows.length).toBeGreaterThan(20);
    expect(rows.filter((r) => r.type === undefined).map((r) => `${r.command} --${r.option}`)).toEqual([]);
  });

  it("every numeric option refuses a word, a fraction, a missing value and a repeat (found from --help)", async () => {
    const numeric = (await optionsOfEveryCommand()).filter((r) => r.type === "number");
    expect(numeric.map((r) => `${r.command} --${r.option}`).sort()).toEqual(["add --priority", "gc --keep", "rollback --to", "search --limit", "setup --boot-tries"]);
    for (const { command, usage: line, option } of numeric) {
      // Required positionals get a value, so the option is the only thing wrong.
      const positionals = [...line.matchAll(/<[^>]+>/g)].map(() => "x");
      const base = [command, ...positionals];
      usage([...base, `--${option}`, "abc"], new RegExp(`^ext: --${option} takes a whole number .*'abc' is not one`, "m"));
      usage([...base, `--${option}`, "1.5"], new RegExp(`--${option} takes a whole number .*'1.5' is not one`));
      usage([...base, `--${option}`, "1e3"], new RegExp(`--${option} takes a whole number`));
      usage([...base, `--${option}`], new RegExp(`--${option} takes a whole number .*none was given`));
      usage([...base, `--${option}`, "2", `--${option}`, "3"], new RegExp(`--${option} is given more than once`));
    }
  });

  it.each([
    [["add", "--priority", "abc", "jq"], /--priority takes a whole number from -1000000 to 1000000; 'abc' is not one/],
    [["add", "--priority", "2000000", "jq"], /--priority takes a whole number from -1000000 to 1000000; '2000000'/],
    [["add", "--priority", "jq"], /--priority takes a whole number .*'jq' is not one/],
    [["search", "x", "--limit", "-1"], /--limit takes a whole number ≥ 0 \(0 shows every match\); '-1'/],
    [["rollback", "--to", "0"], /--to takes a whole number ≥ 1/],
    [["gc", "--keep", "-1"], /--keep takes a whole number ≥ 0/],
    [["setup", "--boot-tries", "101"], /--boot-tries takes a whole number from 1 to 100/],
  ])("ext %j: the range and what was given", (args, message) => {
    usage(args, message);
  });

  it("string options take one value", () => {
    usage(["list", "--root", "/", "--root", "/tmp"], /--root is given more than once/);
    usage(["list", "--name"], /--name needs a value/);
    usage(["list", "--store", "a", "--store", "b"], /--store is given more than once/);
    usage(["build", "hello", "-o", "a.raw", "-o", "b.raw"], /--output is given more than once/);
  });

  it("enumerated values: completion shells and boot steps", () => {
    const shell = ext(["completion", "tcsh"]);
    expect(shell.status).toBe(2);
    expect(shell.stderr).toMatch(/Given: "tcsh", Choices: "bash", "zsh", "fish"/);
    expect(ext(["boot", "reboot"]).status).toBe(2);
  });

  it("good values still pass: a negative priority, a limit of 0, an empty kernel command line", () => {
    // Each fails later for its own reason (needs root, no state), not as a usage error.
    expect(ext(["boot", "select", "--cmdline", "", "--boot-id", "b1"], 0).status).toBe(0);
    for (const args of [["add", "--priority", "-5", "jq"], ["search", "x", "--limit", "0"], ["rollback", "--to", "3"]]) {
      const r = ext(args);
      expect(r.status, r.stderr).not.toBe(2);
      expect(r.stderr).not.toMatch(/takes a whole number|internal error/);
    }
  });
});
