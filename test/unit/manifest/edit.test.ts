import { describe, it, expect } from "vitest";
import { editPackages, setProperty } from "../../../src/manifest/edit.js";
import { parseManifest } from "../../../src/manifest/read.js";

// ext add/remove edit the tracked tools.json: only the entry changes, the rest keeps its bytes.

const valid = (t: string) => parseManifest(t, "/t.json");

describe("adding a package", () => {
  const sorted = `{
    "version": 1,
    "source": "nixpkgs",
    "packages": {
        "jq": {},
        "ripgrep": { "outputs": ["out"] }
    }
}
`;

  it("goes where alphabetical order says, in the file's indentation; neighbours keep their text", () => {
    const out = editPackages(sorted, { set: { hello: {} } });
    expect(out).toBe(`{
    "version": 1,
    "source": "nixpkgs",
    "packages": {
        "hello": {},
        "jq": {},
        "ripgrep": { "outputs": ["out"] }
    }
}
`);
    expect(editPackages(sorted, { set: { zsh: { priority: 3 } } })).toContain(`"ripgrep": { "outputs": ["out"] },\n        "zsh": { "priority": 3 }\n    }`);
    valid(out);
  });

  it("goes at the end of a file that is not in alphabetical order", () => {
    const unsorted = `{"version": 1, "packages": {"rg": {}, "jq": {}}}`;
    expect(editPackages(unsorted, { set: { bat: {} } })).toBe(`{"version": 1, "packages": {"rg": {}, "jq": {}, "bat": {}}}`);
  });

  it("keeps tabs, CRLF and a one-line file as they are", () => {
    const tabs = `{\r\n\t"version": 1,\r\n\t"packages": {\r\n\t\t"jq": {}\r\n\t}\r\n}\r\n`;
    expect(editPackages(tabs, { set: { rg: { attr: "ripgrep" } } })).toBe(`{\r\n\t"version": 1,\r\n\t"packages": {\r\n\t\t"jq": {},\r\n\t\t"rg": { "attr": "ripgrep" }\r\n\t}\r\n}\r\n`);
    const compact = `{"version":1,"packages":{}}`;
    expect(editPackages(compact, { set: { jq: {} } })).toBe(`{"version":1,"packages":{"jq":{}}}`);
  });

  it("into an empty object in an expanded file", () => {
    const empty = `{\n  "version": 1,\n  "packages": {}\n}\n`;
    // "packages": {} on its own line: the new entry gets its own line, indented one level deeper.
    expect(editPackages(empty, { set: { jq: {} } })).toBe(`{\n  "version": 1,\n  "packages": {\n    "jq": {}\n  }\n}\n`);
  });

  it("in the style of expanded neighbours", () => {
    const expanded = `{\n  "version": 1,\n  "packages": {\n    "a": {\n      "priority": 1\n    }\n  }\n}\n`;
    const out = editPackages(expanded, { set: { b: { attr: "x", priority: 2 } } });
    expect(out).toBe(`{\n  "version": 1,\n  "packages": {\n    "a": {\n      "priority": 1\n    },\n    "b": {\n      "attr": "x",\n      "priority": 2\n    }\n  }\n}\n`);
    valid(out);
  });
});

describe("changing and removing", () => {
  const text = `{
  "version": 1,
  "packages": {
    "a": {},
    "b": { "attr": "bee",   "priority": 1 },
    "c": {}
  }
}
`;

  it("removes the first, a middle, the last and the only entry", () => {
    expect(editPackages(text, { remove: ["a"] })).toBe(text.replace(`    "a": {},\n`, ""));
    expect(editPackages(text, { remove: ["b"] })).toBe(text.replace(`    "b": { "attr": "bee",   "priority": 1 },\n`, ""));
    expect(editPackages(text, { remove: ["c"] })).toBe(text.replace(`,\n    "c": {}`, ""));
    const none = editPackages(text, { remove: ["a", "b", "c"] });
    expect(none).toBe(`{\n  "version": 1,\n  "packages": {}\n}\n`);
    valid(none);
  });

  it("changes one field of an entry and leaves the others' spacing alone", () => {
    expect(editPackages(text, { set: { b: { attr: "bee", priority: 5 } } })).toBe(text.replace(`"priority": 1`, `"priority": 5`));
    expect(editPackages(text, { set: { b: { attr: "bee" } } })).toBe(text.replace(`"attr": "bee",   "priority": 1`, `"attr": "bee"`));
    expect(editPackages(text, { set: { a: { allowShadow: true } } })).toBe(text.replace(`"a": {}`, `"a": { "allowShadow": true }`));
  });

  it("a missing name is no change; a top-level key can be set", () => {
    expect(editPackages(text, { remove: ["zzz"] })).toBe(text);
    expect(setProperty(text, [], "name", "tools")).toBe(text.replace(`  }\n}\n`, `  },\n  "name": "tools"\n}\n`));
  });
});
