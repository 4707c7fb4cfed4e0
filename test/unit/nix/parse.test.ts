import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  NixOutputError, parseAttrNames, parseBuildJson, parseDrvName, parseFlakeMetadata, parseMetaJson, parsePathInfoJson,
  parseSearchJson, storePathName,
} from "../../../src/nix/parse.js";

const recorded = (file: string): string =>
  readFileSync(fileURLToPath(new URL(`../../recorded/nix/${file}`, import.meta.url)), "utf8");

const DEP = "/nix/store/2s8d6if8n19y48an6gyfcgyfvghiz04f-recdep-1.0";
const MULTI = "/nix/store/fpkiagp3f72gsjvzlg2f1hcvdf2gwvdb-recmulti-0.1";
const GOOD = "/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-recgood-2.3";
const EXPECTED_CLOSURE = [
  { path: DEP, narSize: 128, references: [] },
  { path: MULTI, narSize: 120, references: [] },
  { path: GOOD, narSize: 552, references: [DEP] },
];

describe("parsePathInfoJson", () => {
  it.each([
    ["nix-2.8.0/path-info.json", "array of objects (Nix ≤ 2.18)"],
    ["nix-2.26.3/path-info.json", "object keyed by full path (Nix 2.19–2.32)"],
    ["nix-2.34.8/path-info.json", "bare --json on Nix ≥ 2.33: format 1, with version and storeDir in each value"],
    ["nix-2.34.8/path-info-format2.json", "--json-format 2 (Nix ≥ 2.33)"],
  ])("reads %s: %s", (file) => {
    const { entries, invalid } = parsePathInfoJson(recorded(file));
    expect(entries).toEqual(EXPECTED_CLOSURE);
    expect(invalid).toEqual([]);
  });

  it.each([
    ["nix-2.8.0/path-info-invalid.json"],
    ["nix-2.26.3/path-info-invalid.json"],
    ["nix-2.34.8/path-info-invalid.json"],
    ["nix-2.34.8/path-info-invalid-format2.json"],
  ])("reports invalid paths in %s", (file) => {
    expect(parsePathInfoJson(recorded(file))).toEqual({ entries: [], invalid: ["/nix/store/00000000000000000000000000000000-missing"] });
  });

  it("tolerates top-level metadata beside the paths (rl-2.33 describes storeDir there for format 1)", () => {
    const withMeta = { storeDir: "/nix/store", version: 1, ...JSON.parse(recorded("nix-2.26.3/path-info.json")) };
    expect(parsePathInfoJson(JSON.stringify(withMeta)).entries).toEqual(EXPECTED_CLOSURE);
  });

  it("uses the storeDir of the output to complete base names", () => {
    const text = JSON.stringify({ version: 2, storeDir: "/opt/nix/store", info: { "sxjcjr943fb6rxzk12ang0zdkwgjrwjf-x": { narSize: 1, references: ["sxjcjr943fb6rxzk12ang0zdkwgjrwjf-x"] } } });
    expect(parsePathInfoJson(text).entries).toEqual([
      { path: "/opt/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-x", narSize: 1, references: ["/opt/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-x"] },
    ]);
  });

  it.each([
    ["not json", "not JSON"],
    ["42", "neither an array nor an object"],
    ['[{"narSize": 1}]', "without 'path'"],
    ['[{"path": "/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-x", "references": []}]', "narSize"],
    ['[{"path": "/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-x", "narSize": 1}]', "references"],
  ])("refuses %j", (text, why) => {
    expect(() => parsePathInfoJson(text)).toThrow(NixOutputError);
    expect(() => parsePathInfoJson(text)).toThrow(why);
  });
});

describe("parseBuildJson", () => {
  it("reads nix 2.8's build output", () => {
    expect(parseBuildJson(recorded("nix-2.8.0/build.json"))).toEqual([
      { drvPath: "/nix/store/0vx7nswhz9pbbnfwafpxx7yk3gapdl07-recgood-2.3.drv", outputs: { out: GOOD } },
      { drvPath: "/nix/store/pjfwdzqdq1yy78ah7g7vsf6wcbj6ik5m-recmulti-0.1.drv", outputs: { man: "/nix/store/a2b8mnqwsadcr1himhz19q160jk7qri4-recmulti-0.1-man" } },
    ]);
  });

  it("reads newer entries with start/stop times and store-path installables", () => {
    const text = JSON.stringify([
      { drvPath: "/nix/store/x.drv", outputs: { out: GOOD }, startTime: 1, stopTime: 2 },
      { path: DEP },
    ]);
    expect(parseBuildJson(text)).toEqual([{ drvPath: "/nix/store/x.drv", outputs: { out: GOOD } }, { outputs: { out: DEP } }]);
  });

  it("refuses non-arrays", () => expect(() => parseBuildJson("{}")).toThrow(NixOutputError));
});

describe("parseFlakeMetadata", () => {
  it.each(["nix-2.8.0", "nix-2.26.3", "nix-2.34.8"])("locks a path: flake to its store copy, by narHash (%s)", (v) => {
    // The directory may change after locking (Nix ≥ 2.26 then refuses it); the store copy cannot.
    expect(parseFlakeMetadata(recorded(`${v}/flake-metadata-path.json`), "/tmp/ext-rec/flake")).toEqual({
      original: "/tmp/ext-rec/flake",
      locked: "path:/nix/store/552j2sn9k4yg77cl3wp9kpghhq36n103-source?narHash=sha256-4N4DU1kKbCC2QT4Xz%2ByG1%2FqzVNwjVmSoZhJ%2FaO4Hr8U%3D",
      narHash: "sha256-4N4DU1kKbCC2QT4Xz+yG1/qzVNwjVmSoZhJ/aO4Hr8U=",
      lastModified: 1700000000,
    });
  });

  it("locks a git flake by rev", () => {
    const locked = parseFlakeMetadata(recorded("nix-2.8.0/flake-metadata-git.json"), "git+file:///tmp/ext-rec/flake");
    expect(locked.rev).toBe("345f8d9e96244c3efdae338a59089e52ac72e8c9");
    expect(locked.locked).toBe("git+file:///tmp/ext-rec/flake?ref=master&rev=345f8d9e96244c3efdae338a59089e52ac72e8c9");
    expect(locked.narHash).toMatch(/^sha256-/);
  });

  it("prefers lockedUrl and top-level revision where a version prints them", () => {
    const text = JSON.stringify({
      lockedUrl: "github:o/r/abc", url: "github:o/r/abc", revision: "abc",
      locked: { type: "github", owner: "o", repo: "r", narHash: "sha256-x", lastModified: 5 },
    });
    expect(parseFlakeMetadata(text, "github:o/r")).toEqual({ original: "github:o/r", locked: "github:o/r/abc", rev: "abc", narHash: "sha256-x", lastModified: 5 });
  });

  it("refuses output without a locked URL", () => expect(() => parseFlakeMetadata("{}", "x")).toThrow(NixOutputError));
});

describe("parseSearchJson", () => {
  it("reads flake search output (Nix ≥ 2.4) and strips the packages.<system> prefix", () => {
    const results = parseSearchJson(recorded("nix-2.8.0/search.json"));
    expect(results.map((r) => r.attr)).toEqual(["recbroken", "recdep", "recgood", "recmulti", "recneeds"]);
    expect(results.find((r) => r.attr === "recgood")).toEqual({ attr: "recgood", pname: "recgood", version: "2.3", description: "a package that works" });
  });

  it("strips legacyPackages too and keeps nested paths", () => {
    const text = JSON.stringify({ "legacyPackages.aarch64-linux.python3Packages.requests": { pname: "python3.11-requests", version: "2.31.0", description: "HTTP" } });
    expect(parseSearchJson(text)).toEqual([{ attr: "python3Packages.requests", pname: "python3.11-requests", version: "2.31.0", description: "HTTP" }]);
  });

  it("reads the pre-flake (Nix 2.3) shape", () => {
    const text = JSON.stringify({ "nixpkgs.hello": { pkgName: "hello", version: "2.10", description: "GNU Hello" } });
    expect(parseSearchJson(text)).toEqual([{ attr: "hello", pname: "hello", version: "2.10", description: "GNU Hello" }]);
  });

  it("reads an empty result", () => expect(parseSearchJson("{}")).toEqual([]));
});

describe("parseMetaJson", () => {
  it("reads the metadata function's output", () => {
    const text = JSON.stringify({
      description: "a good one", drvPath: "/nix/store/x.drv", homepage: "https://example.org", isDerivation: true, isSet: false,
      licenses: ["MIT", "Unlicense"], name: "good-2.3", outputName: "out", outputs: ["out", "man"], outputsToInstall: ["out", "man"],
      pname: "good", version: "2.3",
    });
    expect(parseMetaJson(text)).toEqual({
      isDerivation: true, isSet: false, name: "good-2.3", pname: "good", version: "2.3", drvPath: "/nix/store/x.drv",
      outputName: "out", outputs: ["out", "man"], outputsToInstall: ["out", "man"], description: "a good one",
      homepage: "https://example.org", license: "MIT, Unlicense",
    });
  });

  it("leaves out what a bare builtins.derivation lacks", () => {
    const text = JSON.stringify({ description: null, drvPath: "/nix/store/x.drv", homepage: null, isDerivation: true, isSet: false, licenses: [], name: "multi-0.1", outputName: "out", outputs: ["out", "man"], outputsToInstall: null, pname: null, version: null });
    expect(parseMetaJson(text)).toEqual({ isDerivation: true, isSet: false, name: "multi-0.1", drvPath: "/nix/store/x.drv", outputName: "out", outputs: ["out", "man"] });
  });
});

describe("parseAttrNames", () => {
  it("reads a recorded attribute list", () => {
    expect(parseAttrNames(recorded("nix-2.8.0/attr-names.json"))).toEqual(["recbroken", "recdep", "recgood", "recmulti", "recneeds"]);
  });
});

describe("parseDrvName (builtins.parseDrvName)", () => {
  it.each([
    ["ripgrep-14.1.0", "ripgrep", "14.1.0"],
    ["hello-2.12.1", "hello", "2.12.1"],
    ["python3.11-requests-2.31.0", "python3.11-requests", "2.31.0"],
    ["nix-2.8.0", "nix", "2.8.0"],
    ["source", "source", ""],
    ["util-linux-minimal-2.39-bin", "util-linux-minimal", "2.39-bin"],
    ["foo-", "foo-", ""],
  ])("%j → %j %j", (name, pname, version) => {
    expect(parseDrvName(name)).toEqual({ pname, version });
  });

  it("takes the name part of a store path", () => {
    expect(storePathName(GOOD)).toBe("recgood-2.3");
    expect(storePathName("/nix/store/a2b8mnqwsadcr1himhz19q160jk7qri4-recmulti-0.1-man")).toBe("recmulti-0.1-man");
  });
});
