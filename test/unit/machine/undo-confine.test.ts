import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { mkdtemp, mkdir, rm, symlink, writeFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { removeTemp } from "../../../src/machine/undo.js";
import { layout } from "../../../src/base/layout.js";
import type { Journal } from "../../../src/base/journal.js";

// Recovery removes the journal's temporary paths: only those inside ext's own tmp/ (issue 14).

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "ext-confine-"));
  await mkdir(join(root, "var/lib/ext/tmp"), { recursive: true });
  await mkdir(join(root, "victim/sub"), { recursive: true });
  await writeFile(join(root, "victim/sub/file"), "not ext's");
});
afterEach(() => rm(root, { recursive: true, force: true }));

const journal = (temp: string[]): Journal => ({
  txid: "t", pid: 1, command: "ext add x", startedAt: "", phase: "stage", extensionName: "ext",
  previousGeneration: null, previousImage: null, temp,
});

const exists = (p: string) => stat(p).then(() => true, () => false);

describe("removeTemp keeps to tmp/", () => {
  const l = () => layout(root);
  const cases: [string, () => string, RegExp][] = [
    ["a directory elsewhere", () => join(root, "victim"), /outside/],
    ["a path climbing out with ..", () => join(l().tmpDir, "..", "..", "..", "..", "victim"), /outside/],
    ["a raw '..' segment", () => `${l().tmpDir}/../../../../victim`, /plain absolute path/],
    ["a relative path", () => "victim", /plain absolute path/],
    ["the state directory itself", () => l().stateDir, /outside/],
    ["tmp/ itself", () => l().tmpDir, /outside/],
  ];
  for (const [what, path, reason] of cases) {
    it(`ignores ${what}, with a warning`, async () => {
      const warnings = await removeTemp(l(), journal([path()]));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(reason);
      expect(await exists(join(root, "victim/sub/file"))).toBe(true);
      expect(await exists(l().tmpDir)).toBe(true);
    });
  }

  it("ignores a path whose parent is a symlink out of tmp/", async () => {
    await symlink(join(root, "victim"), join(l().tmpDir, "out"));
    const warnings = await removeTemp(l(), journal([join(l().tmpDir, "out/sub")]));
    expect(warnings[0]).toMatch(/resolves outside/);
    expect(await exists(join(root, "victim/sub/file"))).toBe(true);
  });

  it("removes a symlink in tmp/ itself, not what it points to", async () => {
    await symlink(join(root, "victim"), join(l().tmpDir, "link"));
    expect(await removeTemp(l(), journal([join(l().tmpDir, "link")]))).toEqual([]);
    expect(await exists(join(l().tmpDir, "link"))).toBe(false);
    expect(await exists(join(root, "victim/sub/file"))).toBe(true);
  });

  it("removes ext's own temporary files and says nothing of ones already gone", async () => {
    await mkdir(join(l().tmpDir, "stage-1/usr"), { recursive: true });
    await writeFile(join(l().tmpDir, "pack-1.raw"), "x");
    const warnings = await removeTemp(l(), journal([join(l().tmpDir, "stage-1"), join(l().tmpDir, "pack-1.raw"), join(l().tmpDir, "gone")]));
    expect(warnings).toEqual([]);
    expect(await exists(join(l().tmpDir, "stage-1"))).toBe(false);
    expect(await exists(join(l().tmpDir, "pack-1.raw"))).toBe(false);
  });
});
