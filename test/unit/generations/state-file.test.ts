import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { layout, type Layout } from "../../../src/base/layout.js";
import { readCurrent, readGeneration } from "../../../src/generations/store.js";
import { readJournal } from "../../../src/base/journal.js";
import { StateError } from "../../../src/errors.js";

// Every state file goes through one validating reader: damage is a StateError naming the file and
// what is wrong, with a hint (issue 14).

let root: string;
let l: Layout;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "ext-state-file-"));
  l = layout(root);
  await mkdir(l.generationsDir, { recursive: true });
});
afterAll(() => rm(root, { recursive: true, force: true }));

const record = {
  recordVersion: 1, id: 1, createdAt: "2026-01-01T00:00:00Z", command: "ext add jq", extensionName: "ext",
  source: { original: "nixpkgs" },
  packages: [{ name: "jq", attr: "jq", source: "nixpkgs", pname: "jq", version: "1.6", outPaths: { out: "/nix/store/00000000000000000000000000000000-jq" } }],
  closure: { paths: ["/nix/store/00000000000000000000000000000000-jq"], narSize: 10 }, links: ["usr/bin/jq"],
  image: { sha256: "a".repeat(64), size: 4096, compression: "lz4" }, imageKey: "k", parent: null,
};
const journal = {
  txid: "t", pid: 1, command: "ext add jq", startedAt: "", phase: "pack", extensionName: "ext",
  previousGeneration: null, previousImage: null, temp: [],
};

async function expectDamaged(read: () => Promise<unknown>, file: string, what: RegExp) {
  const e = await read().then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(StateError);
  expect((e as StateError).message).toContain(file);
  expect((e as StateError).message).toMatch(what);
  expect((e as StateError).hint).toBeTruthy();
}

describe("generation records", () => {
  const cases: [string, unknown, RegExp][] = [
    ["{}", {}, /'recordVersion' is missing/],
    ["a list", [], /is a list, not an object/],
    ["packages not a list", { ...record, packages: "jq" }, /'packages' is string "jq", not a list/],
    ["a package without outPaths", { ...record, packages: [{ ...record.packages[0], outPaths: undefined }] }, /'packages\[0\]\.outPaths' is missing/],
    ["an image named by a path", { ...record, image: { ...record.image, sha256: "../../etc/passwd" } }, /'image\.sha256' .* not a sha256/],
    ["a closure path that is not a store path", { ...record, closure: { ...record.closure, paths: ["/etc/../root"] } }, /'closure\.paths\[0\]' is "\/etc\/..\/root", not a store path/],
    ["a negative size", { ...record, image: { ...record.image, size: -1 } }, /'image\.size'/],
    ["another generation's id", { ...record, id: 7 }, /says it is generation 7/],
    ["an append count that is not a count", { ...record, image: { ...record.image, appended: "2" } }, /'image\.appended'/],
  ];
  for (const [what, value, message] of cases) {
    it(`refuses ${what}`, async () => {
      await writeFile(join(l.generationsDir, "1.json"), JSON.stringify(value));
      await expectDamaged(() => readGeneration(l, 1), join(l.generationsDir, "1.json"), message);
    });
  }
  it("reads a sound record", async () => {
    await writeFile(join(l.generationsDir, "1.json"), JSON.stringify(record));
    expect(await readGeneration(l, 1)).toMatchObject({ id: 1, packages: [{ name: "jq" }] });
  });
  it("keeps an appended image's count, and gives none to an image packed in full", async () => {
    await writeFile(join(l.generationsDir, "1.json"), JSON.stringify({ ...record, image: { ...record.image, appended: 3 } }));
    expect((await readGeneration(l, 1)).image).toEqual({ ...record.image, appended: 3 });
    await writeFile(join(l.generationsDir, "1.json"), JSON.stringify(record));
    expect((await readGeneration(l, 1)).image).not.toHaveProperty("appended");
  });
  it("refuses a directory where the record belongs", async () => {
    await mkdir(join(l.generationsDir, "2.json"));
    await expectDamaged(() => readGeneration(l, 2), join(l.generationsDir, "2.json"), /is a directory, not a file/);
  });
});

describe("the current pointer and the journal", () => {
  const current: [string, unknown, RegExp][] = [
    ["{}", {}, /'generation' is missing/],
    ["a string generation", { generation: "2" }, /'generation' is string "2", not a generation number/],
    ["generation 0", { generation: 0 }, /not a generation number/],
  ];
  for (const [what, value, message] of current) {
    it(`current.json: refuses ${what}`, async () => {
      await writeFile(l.currentFile, JSON.stringify(value));
      await expectDamaged(() => readCurrent(l), l.currentFile, message);
    });
  }
  it("current.json: an empty file", async () => {
    await writeFile(l.currentFile, "");
    await expectDamaged(() => readCurrent(l), l.currentFile, /is empty/);
  });

  const journals: [string, unknown, RegExp][] = [
    ["{}", {}, /'extensionName' is missing/],
    ["a phase that is no step's name", { ...journal, phase: "../explode" }, /'phase' is not a step name/],
    ["an image named by a path", { ...journal, previousImage: "../x" }, /'previousImage' .* not a sha256/],
    ["an extension name with a slash", { ...journal, extensionName: "../../etc/x" }, /not a valid extension name/],
    ["temp not a list of strings", { ...journal, temp: [1] }, /'temp\[0\]' is number 1, not a string/],
  ];
  for (const [what, value, message] of journals) {
    it(`journal.json: refuses ${what}`, async () => {
      await writeFile(l.journalFile, JSON.stringify(value));
      await expectDamaged(() => readJournal(l), l.journalFile, message);
    });
  }
});
