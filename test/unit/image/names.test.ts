import { describe, expect, it } from "vitest";
import {
  extensionNameProblem, systemdArchitecture, validateArchitecture, validateExtensionName, SYSTEMD_ARCHITECTURES,
} from "../../../src/image/names.js";
import { InvalidNameError, UsageError } from "../../../src/errors.js";
import { stage } from "../../../src/image/stage.js";

describe("extension names", () => {
  it.each(["ext", "ext-tools", "my_tools.v2", "A1", "_x", "a".repeat(64)])("accepts %j", (name) => {
    expect(extensionNameProblem(name)).toBeUndefined();
    expect(() => validateExtensionName(name)).not.toThrow();
  });

  it.each([
    ["", /empty/],
    [".", /starts with '\.'/],
    ["..", /starts with '\.'/],
    [".hidden", /starts with '\.'/],
    ["-flag", /characters/],
    ["a/b", /characters/],
    ["with space", /characters/],
    ["tab\t", /characters/],
    ["ünï", /characters/],
    ["a".repeat(65), /longer than 64/],
  ])("refuses %j", (name, why) => {
    expect(extensionNameProblem(name)).toMatch(why);
    expect(() => validateExtensionName(name)).toThrow(InvalidNameError);
  });

  it("is checked by stage before anything is written", async () => {
    await expect(stage({
      closure: [], packages: [], store: { root: "/nonexistent" }, stageDir: "/nonexistent/stage",
      extensionName: "../escape", architecture: "x86-64", hostRoot: "/",
    })).rejects.toThrow(InvalidNameError);
  });
});

describe("architecture", () => {
  it.each([
    ["x64", "LE", "x86-64"], ["ia32", "LE", "x86"], ["arm64", "LE", "arm64"], ["arm64", "BE", "arm64-be"],
    ["arm", "LE", "arm"], ["riscv64", "LE", "riscv64"], ["ppc64", "LE", "ppc64-le"], ["ppc64", "BE", "ppc64"],
    ["s390x", "BE", "s390x"], ["loong64", "LE", "loongarch64"], ["mipsel", "LE", "mips-le"],
  ] as const)("maps %s (%s) to %s", (arch, order, expected) => {
    expect(systemdArchitecture(arch, order)).toBe(expected);
    expect(SYSTEMD_ARCHITECTURES).toContain(expected);
  });

  it("maps this machine's architecture", () => {
    expect(SYSTEMD_ARCHITECTURES).toContain(systemdArchitecture());
    if (process.arch === "x64") expect(systemdArchitecture()).toBe("x86-64");
  });

  it("refuses unknown architectures", () => {
    expect(() => systemdArchitecture("vax", "LE")).toThrow(UsageError);
    expect(() => validateArchitecture("x86_64")).toThrow(/not a systemd architecture/);
    expect(() => validateArchitecture("arm64")).not.toThrow();
  });
});
