import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { checkMerged as checkStep } from "../../../src/machine/steps/check.js";
import { layout } from "../../../src/base/layout.js";
import type { GenerationRecord } from "../../../src/generations/record.js";
import type { TxEnv } from "../../../src/machine/types.js";

// The post-merge check under a --root: what /usr shows after leaving a generation.

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "ext-check-"));
  await mkdir(join(root, "usr/bin"), { recursive: true });
});
afterEach(() => rm(root, { recursive: true, force: true }));

const record = (id: number, links: string[], image: boolean): GenerationRecord => ({
  recordVersion: 1, id, createdAt: "", command: "", extensionName: "ext", source: { original: "x" }, packages: [],
  closure: { paths: [], narSize: 0 }, image: image ? { sha256: "0".repeat(64), size: 1, compression: "lz4" } : null,
  imageKey: null, links, parent: null,
});

const env = () => ({ layout: layout(root), extensionName: "ext", reporter: { phase() {} } }) as unknown as TxEnv;

describe("check after leaving a generation", () => {
  it("the host's own file, visible again after a package that shadowed it is gone, is not a leftover", async () => {
    await writeFile(join(root, "usr/bin/vim"), "host's vim");
    await expect(checkStep(env(), record(2, [], false), record(1, ["usr/bin/vim"], true))).resolves.toBeUndefined();
  });

  it("a link of ours that is still there is a leftover", async () => {
    await symlink("/usr/store/abc-vim/bin/vim", join(root, "usr/bin/vim"));
    await mkdir(join(root, "usr/store/abc-vim/bin"), { recursive: true });
    await writeFile(join(root, "usr/store/abc-vim/bin/vim"), "");
    await expect(checkStep(env(), record(2, [], false), record(1, ["usr/bin/vim"], true))).rejects.toMatchObject({
      details: expect.stringMatching(/still present: \/usr\/bin\/vim/),
    });
  });
});
