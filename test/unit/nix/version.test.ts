import { describe, expect, it } from "vitest";
import { atLeast, featuresOf, parseNixVersion } from "../../../src/nix/version.js";
import { globalArgs, physicalPath } from "../../../src/nix/command.js";
import { nixSystem } from "../../../src/nix/system.js";
import { chooseOutputs } from "../../../src/nix/build.js";
import { literalRegex, rankSearchResults } from "../../../src/nix/search.js";
import { META_EXPR } from "../../../src/nix/meta.js";

describe("parseNixVersion / featuresOf", () => {
  it.each([
    ["nix (Nix) 2.8.0\n", 2, 8, 0, "nix", false],
    ["nix (Nix) 2.18.1", 2, 18, 1, "nix", false],
    ["nix (Nix) 2.33.1", 2, 33, 1, "nix", true],
    ["nix (Nix) 2.34.0pre20260101_abcdef", 2, 34, 0, "nix", true],
    ["nix (Determinate Nix 3.8.5) 2.30.2", 2, 30, 2, "determinate", false],
    ["nix (Lix, like Nix) 2.93.0", 2, 93, 0, "lix", false],
    ["nix (Nix) 3.0", 3, 0, 0, "nix", true],
  ])("%j", (text, major, minor, patch, flavour, jsonFormat) => {
    const v = parseNixVersion(text);
    expect(v).toMatchObject({ major, minor, patch, flavour });
    expect(featuresOf(v).pathInfoJsonFormat).toBe(jsonFormat);
  });

  it("refuses output without a version", () => expect(() => parseNixVersion("nix")).toThrow());
  it("compares versions", () => {
    const v = parseNixVersion("nix (Nix) 2.19.0");
    expect(atLeast(v, 2, 19)).toBe(true);
    expect(atLeast(v, 2, 20)).toBe(false);
    expect(atLeast(v, 1, 99)).toBe(true);
  });
});

describe("global flags and store location", () => {
  it("always enables flakes as two argv elements; names a chroot store and where its files are (a relocated Nix would read /usr/store)", () => {
    expect(globalArgs({ root: "/" })).toEqual(["--extra-experimental-features", "nix-command flakes"]);
    expect(globalArgs({ root: "/tmp/chroot" })).toEqual(["--extra-experimental-features", "nix-command flakes", "--store", "/tmp/chroot?real=/tmp/chroot/nix/store"]);
  });

  it("physicalPath maps logical store paths into a chroot store", () => {
    const p = "/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-recgood-2.3";
    expect(physicalPath({ root: "/" }, p)).toBe(p);
    expect(physicalPath({ root: "/tmp/chroot" }, p)).toBe(`/tmp/chroot${p}`);
    expect(physicalPath({ root: "/tmp/chroot/" }, `${p}/bin/x`)).toBe(`/tmp/chroot${p}/bin/x`);
    expect(() => physicalPath({ root: "/tmp/chroot" }, "/etc/passwd")).toThrow();
    expect(() => physicalPath({ root: "/tmp/chroot" }, `${p}/../../../etc`)).toThrow();
  });
});

describe("nixSystem", () => {
  it.each([
    ["x64", "linux", "x86_64-linux"],
    ["arm64", "linux", "aarch64-linux"],
    ["arm64", "darwin", "aarch64-darwin"],
    ["riscv64", "linux", "riscv64-linux"],
  ])("%s/%s → %s", (arch, platform, system) => expect(nixSystem(arch, platform)).toBe(system));
  it("defaults to this host", () => expect(nixSystem()).toMatch(/^[a-z0-9_]+-[a-z]+$/));
});

describe("chooseOutputs", () => {
  it("builds what was asked for", () => {
    expect(chooseOutputs({ outputs: ["out", "man"], outputName: "out" }, ["man", "man"])).toEqual(["man"]);
  });
  it("else meta.outputsToInstall (what nix profile installs), else the default output", () => {
    expect(chooseOutputs({ outputs: ["bin", "dev", "man", "out"], outputName: "bin", outputsToInstall: ["bin", "man"] })).toEqual(["bin", "man"]);
    expect(chooseOutputs({ outputs: ["out"], outputName: "out", outputsToInstall: ["out", "man"] })).toEqual(["out"]);
    expect(chooseOutputs({ outputs: ["out", "man"], outputName: "out" })).toEqual(["out"]);
    expect(chooseOutputs({ outputs: ["out", "man"], outputName: "out" }, [])).toEqual(["out"]);
  });
});

describe("search helpers", () => {
  it.each([
    ["ripgrep", "ripgrep"],
    ["c++", "c\\+\\+"],
    ["a.b", "a\\.b"],
    ["(x)|[y]{2}^$*?\\", "\\(x\\)\\|\\[y\\]\\{2\\}\\^\\$\\*\\?\\\\"],
    ["-rf", "-rf"],
  ])("literalRegex(%j) = %j", (q, re) => {
    expect(literalRegex(q)).toBe(re);
    // And it matches the query literally.
    expect(new RegExp(literalRegex(q)).test(`xx${q}yy`)).toBe(true);
  });

  it("ranks exact names first", () => {
    const r = (attr: string, description = "") => ({ attr, pname: attr.split(".").pop() ?? attr, version: "1", description });
    const ranked = rankSearchResults([r("ripgrep-all"), r("ugrep", "like ripgrep"), r("ripgrep"), r("python3Packages.ripgrepy")], "ripgrep");
    expect(ranked.map((x) => x.attr)).toEqual(["ripgrep", "ripgrep-all", "python3Packages.ripgrepy", "ugrep"]);
  });
});

describe("META_EXPR", () => {
  it("is constant Nix text with no interpolation of any input", () => {
    expect(META_EXPR).not.toContain("${");
    expect(META_EXPR.startsWith("drv:")).toBe(true);
  });
});
