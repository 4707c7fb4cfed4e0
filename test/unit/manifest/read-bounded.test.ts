import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { readManifest, readLock, MANIFEST_MAX_BYTES, MANIFEST_MAX_DEPTH } from "../../../src/manifest/read.js";
import { ManifestError } from "../../../src/errors.js";

// tools.json is input from anywhere: only a regular file is read, with a size and a depth limit (issue 14).

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ext-bounded-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function refused(read: () => Promise<unknown>): Promise<ManifestError> {
  const e = await read().then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(ManifestError);
  return e as ManifestError;
}

describe("bounded tools.json", () => {
  it("a named pipe is refused at once, not read (which would wait for a writer forever)", async () => {
    const fifo = join(dir, "fifo.json");
    execFileSync("mkfifo", [fifo]);
    const started = Date.now();
    const e = await refused(() => readManifest(fifo, "fifo.json"));
    expect(e.message).toBe("fifo.json is a named pipe, not a regular file");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("a device is refused", async () => {
    expect((await refused(() => readManifest("/dev/zero", "/dev/zero"))).message).toMatch(/is a device, not a regular file/);
  });

  it(`nested 10,000 levels: a clear error at the level past ${MANIFEST_MAX_DEPTH}, no stack overflow`, async () => {
    const file = join(dir, "deep.json");
    await writeFile(file, `{"version": 1, "packages": {"a": ${"[".repeat(10_000)}${"]".repeat(10_000)}}}`);
    const e = await refused(() => readManifest(file, "deep.json"));
    expect(e.message).toMatch(new RegExp(`^deep.json:1:\\d+: nested more than ${MANIFEST_MAX_DEPTH} levels deep$`));
  });

  it("brackets inside strings do not count as nesting", async () => {
    const file = join(dir, "strings.json");
    await writeFile(file, JSON.stringify({ version: 1, packages: { jq: { attr: "[".repeat(200) + "\\\"{" } } }));
    const e = await refused(() => readManifest(file, "strings.json"));
    expect(e.message).not.toMatch(/nested/);
  });

  it("a file larger than the limit is refused without being parsed", async () => {
    const file = join(dir, "big.json");
    await writeFile(file, " ".repeat(MANIFEST_MAX_BYTES + 1));
    expect((await refused(() => readManifest(file, "big.json"))).message).toMatch(/more than a tools.json can be/);
  });

  it("the lock beside it: a named pipe is refused too", async () => {
    execFileSync("mkfifo", [join(dir, "p.lock.json")]);
    expect((await refused(() => readLock(join(dir, "p.json"), "p.lock.json"))).message).toMatch(/named pipe/);
  });

  it("a directory is still named as one", async () => {
    expect((await refused(() => readManifest(dir, "somewhere"))).message).toBe("somewhere is a directory, not a tools.json file");
  });
});
