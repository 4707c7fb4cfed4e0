import { describe, it, expect } from "vitest";
import { parseManifest, parseLock, lockPathFor } from "../../../src/manifest/read.js";
import { ManifestError } from "../../../src/errors.js";

function error(text: string, parse: (t: string) => unknown = (t) => parseManifest(t, "/home/me/tools.json", "tools.json")): ManifestError {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof ManifestError) return e;
    throw e;
  }
  throw new Error("expected a ManifestError");
}

describe("tools.json", () => {
  const good = `{
  "$schema": "https://example.org/tools.schema.json",
  "version": 1,
  "source": "github:NixOS/nixpkgs/nixos-24.11",
  "name": "tools",
  "compression": "lz4hc,12",
  "packages": {
    "ripgrep": {},
    "rg2": { "attr": "ripgrep", "source": "/srv/old-nixpkgs", "outputs": ["out", "man"], "priority": 10, "allowUnfree": true, "allowShadow": true },
    "black": { "attr": "python3Packages.black" }
  }
}
`;

  it("reads every field, in file order, with defaults filled in", () => {
    const m = parseManifest(good, "/home/me/tools.json", "tools.json");
    expect(m.source).toBe("github:NixOS/nixpkgs/nixos-24.11");
    expect(m.data.name).toBe("tools");
    expect(m.data.compression).toBe("lz4hc,12");
    expect(m.entries).toEqual([
      { name: "ripgrep", attr: "ripgrep", source: "github:NixOS/nixpkgs/nixos-24.11" },
      { name: "rg2", attr: "ripgrep", source: "path:/srv/old-nixpkgs", outputs: ["out", "man"], priority: 10, allowUnfree: true, allowShadow: true },
      { name: "black", attr: "python3Packages.black", source: "github:NixOS/nixpkgs/nixos-24.11" },
    ]);
  });

  it("defaults the source to nixpkgs", () => {
    expect(parseManifest(`{"version":1,"packages":{"jq":{}}}`, "/t.json").entries[0]!.source).toBe("nixpkgs");
  });

  it("malformed JSON: says where", () => {
    const e = error(`{\n  "version": 1,\n  "packages": {\n    "jq": {},\n  }\n}\n`);
    expect(e.message).toBe("tools.json:5:3: not valid JSON: expected a key in double quotes");
    expect(error(`{"version": 1 "packages": {}}`).message).toMatch(/^tools\.json:1:15: not valid JSON: expected ','/);
    expect(error(``).message).toMatch(/tools\.json:1:1: .*empty/);
    expect(error(`{"version": 1, "packages": {}} // note`).message).toMatch(/comments are not allowed/);
  });

  it("a duplicated key is an error, not the last one silently winning", () => {
    expect(error(`{"version": 1, "packages": {"jq": {}, "jq": {"attr": "jq"}}}`).message).toBe('tools.json:1:39: the key "jq" appears twice in the same object');
  });

  it("an unknown key: where, which, and what is allowed", () => {
    const e = error(`{\n  "version": 1,\n  "packages": {\n    "jq": { "outptus": ["out"] }\n  }\n}\n`);
    expect(e.message).toBe('tools.json:4:13: packages.jq.outptus: unknown key "outptus" (did you mean "outputs"?); expected one of: attr, source, outputs, priority, allowUnfree, allowShadow');
    expect(error(`{"version": 1, "packages": {}, "pakages": {}}`).message).toMatch(/tools\.json:1:32: pakages: unknown key "pakages" \(did you mean "packages"\?\)/);
  });

  it("a wrong type or value: the field and what was expected", () => {
    expect(error(`{"version": 1, "packages": {"jq": {"priority": "high"}}}`).message)
      .toBe('tools.json:1:48: packages.jq.priority: expected a whole number, got the string "high"');
    expect(error(`{"version": 1, "packages": {"jq": {"outputs": []}}}`).message).toMatch(/packages\.jq\.outputs: expected at least 1 item/);
    expect(error(`{"version": 1, "packages": {"jq": {"outputs": ["out", "out"]}}}`).message).toMatch(/packages\.jq\.outputs: expected each item once/);
    expect(error(`{"version": 1, "packages": {"jq": {"allowShadow": "yes"}}}`).message).toMatch(/allowShadow: expected true or false/);
    expect(error(`{"version": 1, "packages": []}`).message).toMatch(/tools\.json:1:28: packages: expected an object, got an array/);
    expect(error(`{"version": 1, "name": ".hidden", "packages": {}}`).message).toMatch(/name: expected an extension name/);
  });

  it("a bad package name or source", () => {
    expect(error(`{"version": 1, "packages": {"rip grep": {}}}`).message).toMatch(/tools\.json:1:29: packages\["rip grep"\]: invalid name "rip grep": expected an attribute path/);
    expect(error(`{"version": 1, "packages": {"jq": {"attr": "a#b"}}}`).message).toMatch(/packages\.jq\.attr: expected an attribute path/);
    expect(error(`{"version": 1, "source": "./nixpkgs", "packages": {}}`).message).toMatch(/tools\.json:1:26: source: invalid package source "\.\/nixpkgs": relative paths/);
    expect(error(`{"version": 1, "packages": {"jq": {"source": "x; rm -rf /"}}}`).message).toMatch(/packages\.jq\.source: expected a flake reference/);
  });

  it("missing keys and a wrong version", () => {
    expect(error(`{"version": 1}`).message).toBe('tools.json:1:1: (top level): missing the required key "packages"');
    expect(error(`{"packages": {}}`).message).toMatch(/missing the required key "version"/);
    expect(error(`{"version": 0, "packages": {}}`).message).toMatch(/tools\.json:1:13: version: expected 1, got 0/);
    expect(error(`{"version": "1", "packages": {}}`).message).toMatch(/version: expected a whole number, got the string "1"/);
  });

  it("a newer version says so, before complaining about keys it does not know", () => {
    const e = error(`{"version": 2, "packages": {}, "profiles": {}}`);
    expect(e.message).toBe("tools.json:1:13: written by a newer ext (format version 2; this ext reads version 1)");
    expect(e.hint).toMatch(/upgrade ext/);
  });

  it("lists further problems under the first", () => {
    const e = error(`{"version": 1, "packages": {"a": {"x": 1}, "b": {"y": 2}}}`);
    expect(e.message).toMatch(/packages\.a\.x: unknown key "x"/);
    expect(e.details).toMatch(/packages\.b\.y: unknown key "y"/);
  });
});

describe("tools.lock.json", () => {
  const lock = {
    version: 1,
    system: "x86_64-linux",
    sources: { nixpkgs: { locked: "github:NixOS/nixpkgs/0123456789abcdef0123456789abcdef01234567?narHash=sha256-x", rev: "0123456789abcdef0123456789abcdef01234567", narHash: "sha256-x" } },
    packages: {
      jq: { attr: "jq", source: "nixpkgs", resolvedFrom: "github:NixOS/nixpkgs/0123456789abcdef0123456789abcdef01234567?narHash=sha256-x", pname: "jq", version: "1.6", outPaths: { out: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-jq-1.6" } },
    },
  };
  const parse = (t: string) => parseLock(t, "/x/tools.lock.json", "tools.lock.json");

  it("lies beside tools.json", () => {
    expect(lockPathFor("/home/me/tools.json")).toBe("/home/me/tools.lock.json");
    expect(lockPathFor("/home/me/work.json")).toBe("/home/me/work.lock.json");
    expect(lockPathFor("/home/me/tools")).toBe("/home/me/tools.lock.json");
  });

  it("reads a valid lock", () => {
    expect(parse(JSON.stringify(lock)).data).toEqual(lock);
  });

  it("rejects a bad store path, a missing field, a newer version", () => {
    const bad = structuredClone(lock) as { packages: { jq: { outPaths: Record<string, string> } } };
    bad.packages.jq.outPaths.out = "/usr/bin/jq";
    expect(error(JSON.stringify(bad, null, 2), parse).message).toMatch(/tools\.lock\.json:\d+:\d+: packages\.jq\.outPaths\.out: expected a store path/);
    const missing = structuredClone(lock) as { packages: { jq: Partial<{ version: string }> } };
    delete missing.packages.jq.version;
    expect(error(JSON.stringify(missing), parse).message).toMatch(/packages\.jq: missing the required key "version"/);
    expect(error(JSON.stringify({ ...lock, version: 3 }), parse).message).toMatch(/written by a newer ext \(lock format version 3/);
  });
});
