import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXT, extEnv } from "../helpers/namespace.js";
import { expectValid } from "../unit/cli/schemas.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 6, errors: a user error is a message and a hint, with the documented exit code; --verbose adds
// the cause chain; never a stack trace. These need no mount namespace: nothing here changes /usr.

let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "ext-err-"));
  chmodSync(work, 0o755); // another user must reach the roots made in here
  ensureBuilt();
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function ext(args: string[], opts: { env?: Record<string, string>; user?: number } = {}) {
  const argv = opts.user === undefined ? [process.execPath, EXT, ...args] : ["setpriv", `--reuid=${opts.user}`, `--regid=${opts.user}`, "--clear-groups", process.execPath, EXT, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { env: { ...extEnv(), ...opts.env }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const STACK = /\n\s+at .+:\d+:\d+/;

function userError(r: { status: number; stdout: string; stderr: string }, status: number, message: RegExp, hint: RegExp) {
  expect(r.status, r.stderr).toBe(status);
  expect(r.stderr).toMatch(/^ext: /m);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toMatch(new RegExp(`^hint: .*${hint.source}`, "m"));
  expect(r.stderr).not.toMatch(STACK);
  expect(r.stderr).not.toMatch(/internal error/);
}

describe("user errors: message, hint, exit code, no stack", () => {
  it("usage (2): misspelled command with a guess, unknown option, missing argument", () => {
    userError(ext(["serch", "jq"]), 2, /unknown command 'serch'/, /did you mean 'ext search'/);
    userError(ext(["list", "--bogus"]), 2, /unknown option --bogus for 'ext list'/, /ext list --help/);
    userError(ext(["show"]), 2, /'ext show' is missing its argument/, /ext show --help/);
    userError(ext(["search", "x", "--limit", "-1"]), 2, /--limit takes a whole number/, /./);
  });

  it("unknown package (6): close names", () => {
    userError(ext(["show", "jqq", "--no-build"]), 6, /unknown package 'jqq'/, /did you mean 'jq'/);
  });

  it("a missing tool (3) says how to install it", () => {
    userError(ext(["show", "jq"], { env: { PATH: "/nonexistent" } }), 3, /'nix' was not found/, /install Nix/);
  });

  it("needs root (4): changing the active set as another user", () => {
    const root = mkdtempSync(join(work, "root-"));
    userError(ext(["--root", root, "add", "jq"], { user: 65534 }), 4, /needs root|permission denied/, /sudo/);
  });

  it("a file only root may read (4), not a crash", () => {
    const root = mkdtempSync(join(work, "root-"));
    chmodSync(root, 0o755);
    mkdirSync(join(root, "var/lib/ext/generations"), { recursive: true, mode: 0o755 });
    writeFileSync(join(root, "var/lib/ext/current.json"), JSON.stringify({ generation: 1 }));
    writeFileSync(join(root, "var/lib/ext/generations/1.json"), "{}", { mode: 0o600 });
    userError(ext(["--root", root, "list"], { user: 65534 }), 4, /permission denied: .*generations\/1\.json/, /root/);
  });

  it("damaged state (1): the cause only with --verbose", () => {
    const root = mkdtempSync(join(work, "root-"));
    mkdirSync(join(root, "var/lib/ext"), { recursive: true });
    writeFileSync(join(root, "var/lib/ext/current.json"), "{ not json");
    const plain = ext(["--root", root, "status"]);
    userError(plain, 1, /current\.json is not valid JSON/, /restore it|remove it/);
    expect(plain.stderr).not.toMatch(/caused by/);
    const verbose = ext(["--root", root, "status", "--verbose"]);
    userError(verbose, 1, /not valid JSON/, /./);
    expect(verbose.stderr).toMatch(/^caused by: .*JSON/m);
  });

  it("a build failure (6) names the package and shows its log", () => {
    const r = ext(["build", "broken", "-o", join(mkdtempSync(join(work, "root-")), "ext.raw")]);
    userError(r, 6, /package 'broken' failed to build/, /nix log \/nix\/store\//);
    expect(r.stderr).toMatch(/broken\.c:42: error/);
  });

  it("the same failures as one JSON error document on stdout", () => {
    for (const [args, status] of [[["serch"], 2], [["show", "jqq", "--no-build"], 6]] as const) {
      const r = ext([...args, "--json"]);
      expect(r.status).toBe(status);
      expectValid("error", JSON.parse(r.stdout));
    }
  });
});
