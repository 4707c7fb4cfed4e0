import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, FIXTURES, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// allowUnfree, end to end: nixpkgs refuses a package with an unfree license unless the user allows
// it. The fixture `unfree-tool` refuses the way nixpkgs does (test/fixtures/packages.nix), since there
// is no nixpkgs offline. The permission is per package: it must not reach a package the user did not
// give it to. Real CLI, real Nix, real merges, in a private mount namespace.

let ns: Namespace;
let dir: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "ext-unfree-"));
  chmodSync(dir, 0o755);
  ns = openNamespace();
});
afterAll(() => {
  ns?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ok(args: string[]) {
  const r = ns.ext(args);
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

const generations = () => (JSON.parse(ok(["generations", "--json"]).stdout) as { id: number }[]).map((g) => g.id);

function toolsJson(name: string, packages: Record<string, { allowUnfree?: boolean }>): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ version: 1, source: FIXTURES, packages }, null, 2) + "\n");
  return file;
}

describe("allowUnfree", () => {
  it("an unfree package is refused with a message that says how to allow it, and nothing changes", () => {
    const r = ns.ext(["add", "unfree-tool"]);
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/package 'unfree-tool' from \S+ has an unfree license/);
    expect(r.stderr).toMatch(/to allow it: --allow-unfree \(ext add, ext build\), or "allowUnfree": true for 'unfree-tool' in tools.json/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(generations()).toEqual([]);
  });

  it("ext add --allow-unfree installs it; it runs from /usr/bin with /nix hidden", () => {
    ok(["add", "--allow-unfree", "unfree-tool"]);
    expect(ns.run(["/usr/bin/unfree-tool"], { hideNix: true }).stdout.trim()).toBe("unfree-tool 1.0");
    const st = JSON.parse(ok(["status", "--json"]).stdout) as { generation: number };
    const record = JSON.parse(ns.read(`/var/lib/ext/generations/${st.generation}.json`)!) as { packages: { name: string; allowUnfree?: boolean }[] };
    expect(record.packages.find((p) => p.name === "unfree-tool")?.allowUnfree).toBe(true);
  });

  it("ext build --allow-unfree makes an image without installing anything", () => {
    expect(ns.ext(["build", "unfree-tool", "-o", "/var/lib/u.raw"]).status).toBe(6);
    const before = generations();
    ok(["build", "--allow-unfree", "unfree-tool", "-o", "/var/lib/u.raw"]);
    expect(ns.run(["test", "-s", "/var/lib/u.raw"]).status).toBe(0);
    expect(generations()).toEqual(before);
  });

  it("tools.json: allowUnfree on the package that needs it; given to another package it does not count", () => {
    const wrong = toolsJson("wrong.json", { "unfree-tool": {}, hello: { allowUnfree: true } });
    const before = generations();
    const refused = ns.ext(["apply", wrong]);
    expect(refused.status).toBe(6);
    expect(refused.stderr).toMatch(/'unfree-tool' .* has an unfree license/);
    expect(generations()).toEqual(before);

    const right = toolsJson("right.json", { "unfree-tool": { allowUnfree: true }, hello: {} });
    ok(["apply", right]);
    expect(ns.run(["/usr/bin/unfree-tool"], { hideNix: true }).stdout.trim()).toBe("unfree-tool 1.0");
    expect(ns.run(["/usr/bin/hello"], { hideNix: true }).stdout.trim()).toBe("Hello, world!");
    expect(ok(["apply", right]).stdout).toMatch(/nothing to do/);
  });
});
