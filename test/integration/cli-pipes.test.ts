import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { openNamespace, extEnv, EXT, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 19: a reader that goes away (`ext list | head -1`, `ext generations | true`) is the end of the
// output, not a crash: exit 0 like coreutils, nothing on stderr. The race is real (ext may or may not
// have written everything before the reader exits), so each pipeline runs many times.

let ns: Namespace;
const RUNS = 15;

beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
  // A few generations and packages, so list and generations print several lines (one write each).
  for (const args of [["add", "ripgrep", "greet"], ["add", "hello"], ["remove", "greet"]]) {
    const r = ns.ext(args);
    if (r.status !== 0) throw new Error(`ext ${args.join(" ")}: ${r.stderr}`);
  }
});
afterAll(() => ns?.close());

/** Runs `ext ARGS | READER` RUNS times in the namespace; returns ext's exit codes and all of stderr. */
function pipeline(args: string, reader: string, redirect = ""): { codes: number[]; stderr: string } {
  const script = `for i in $(seq ${RUNS}); do node ${EXT} ${args} ${redirect} | ${reader} >/dev/null; echo "code=\${PIPESTATUS[0]}" >&3; done 3>&1`;
  const r = ns.run(["bash", "-c", script], { env: extEnv() });
  const codes = [...r.stdout.matchAll(/^code=(\d+)$/gm)].map((m) => Number(m[1]));
  return { codes, stderr: r.stderr };
}

describe("a closed pipe ends the output", () => {
  it.each([
    ["list", "head -1"],
    ["list", "true"],
    ["generations", "head -1"],
    ["generations", "true"],
    ["list --json", "true"],
    ["status", "true"],
    ["--help", "true"],
    ["completion bash", "head -1"],
  ])("ext %s | %s: exit 0, no stack trace", (args, reader) => {
    const { codes, stderr } = pipeline(args, reader);
    expect(codes).toHaveLength(RUNS);
    expect(new Set(codes)).toEqual(new Set([0]));
    expect(stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
  });

  it("the whole output when the reader reads it all", () => {
    const r = ns.run(["bash", "-c", `node ${EXT} generations | cat`], { env: extEnv() });
    expect(r.stdout.trim().split("\n")).toHaveLength(1 + 3);
  });

  it("stderr closed: the command still ends with its own exit code", () => {
    // A usage error (2) printed to a pipe nobody reads.
    const { codes } = pipeline("serch jq", "true", "2>&1 >/dev/null");
    expect(new Set(codes)).toEqual(new Set([2]));
  });

  it("a write that fails otherwise (a full disk) is an error, exit 1", () => {
    const r = ns.run(["bash", "-c", `node ${EXT} list >/dev/full`], { env: extEnv() });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ext: could not write the output: .*ENOSPC/m);
  });
});
