import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { EXT, REPO } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Start-up cost (issue 13): the command list (src/cli/commands/index.ts) is read on every run, but a
// descriptor import()s its command's module only when that command runs. Which files of the bundle
// `ext list` loads is recorded by a module resolve hook: the entry, the chunks it imports statically,
// and list's own chunk — no other command's code, and the list itself not split into a chunk of its
// own (a runtime import of it from a command module once did that: one more file on every start).

let work: string;
beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "ext-lazy-"));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function loadedBy(args: string[]): string[] {
  const log = join(work, `loaded-${args.at(-1) ?? "none"}.txt`);
  const hooks = join(work, "hooks.mjs");
  writeFileSync(hooks, `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.includes("/dist/bundle/")) appendFileSync(process.env.EXT_LOAD_LOG, r.url.split("/").pop() + "\\n");
  return r;
}
`);
  const register = `import { register } from "node:module"; register(${JSON.stringify(pathToFileURL(hooks).href)});`;
  const r = spawnSync(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(register)}`, EXT, ...args], {
    encoding: "utf8",
    env: { ...process.env, EXT_LOAD_LOG: log },
  });
  expect(r.status, r.stderr).toBe(0);
  return [...new Set(readFileSync(log, "utf8").split("\n").filter(Boolean))].sort();
}

/** A bundle file and every file it imports statically (`from "./x.js"`), transitively. */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(join(REPO, "dist/bundle", file), "utf8");
  for (const m of text.matchAll(/\bfrom "\.\/([\w-]+\.js)"/g)) staticClosure(m[1] ?? "", seen);
  return seen;
}

describe("a command loads its own code only", () => {
  it("ext list: the entry, its static chunks, list's chunk", () => {
    const root = mkdtempSync(join(work, "root-"));
    const loaded = loadedBy(["--root", root, "list"]);
    const main = readFileSync(join(REPO, "dist/bundle/main.js"), "utf8");
    const listChunk = readdirSync(join(REPO, "dist/bundle")).filter((f) => /^list-[\w]+\.js$/.test(f));
    expect(listChunk).toHaveLength(1);
    expect(loaded).toEqual([...new Set([...staticClosure("main.js"), ...staticClosure(listChunk[0]!)])].sort());
    // The descriptors are in the entry itself.
    expect(main).toMatch(/name: "add",/);
    expect(loaded.filter((f) => /^(add|build|show|search|apply|doctor|completion)-/.test(f))).toEqual([]);
    // Nor inlined into what every start loads (a descriptor that imported its module statically).
    for (const file of staticClosure("main.js")) {
      expect(readFileSync(join(REPO, "dist/bundle", file), "utf8"), file).not.toMatch(/function format(Add|Build|Show|Doctor|Search|Apply|Upgrade)\(/);
    }
    expect(basename(EXT)).toBe("ext.js");
  });
});
