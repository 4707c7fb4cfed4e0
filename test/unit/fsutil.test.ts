import { describe, it, expect } from "vitest";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { isTempNameOf, tempName, writeFileAtomic } from "../../src/fsutil.js";

describe("atomic writes leave nothing behind", () => {
  it("a write that fails after the temp file was made removes it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ext-fsutil-"));
    try {
      // Data the write cannot take stands in for a full disk: the failure comes after open.
      await expect(writeFileAtomic(join(dir, "current.json"), { not: "data" } as unknown as string)).rejects.toThrow();
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("temp names are recognised, for their own file only", () => {
    const t = tempName("/var/lib/extensions/ext.raw").split("/").pop()!;
    expect(isTempNameOf(t, "ext.raw")).toBe(true);
    expect(isTempNameOf(t)).toBe(true);
    expect(isTempNameOf(t, "other.raw")).toBe(false);
    expect(isTempNameOf("ext.raw")).toBe(false);
    expect(isTempNameOf(".ext.raw.tmp")).toBe(false);
  });
});
