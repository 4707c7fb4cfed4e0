import { describe, it, expect } from "vitest";
import { compareVersions, versionOf, VERSION_PATTERN } from "../../../src/fleet/versions.js";
import { formatSums, parseSums } from "../../../src/fleet/sums.js";
import { ShapeError } from "../../../src/base/state-file.js";

describe("versions, ordered as systemd-sysupdate orders them", () => {
  it.each([
    ["1", "2"], ["2", "10"], ["1.9", "1.10"], ["2026.12.01", "2026.12.02"], ["2026.9.30", "2026.10.1"],
    ["2~rc1", "2"], ["1.0", "1.0.1"], ["42", "0100"],
  ])("%s < %s", (a, b) => {
    expect(compareVersions(a, b)).toBeLessThan(0);
    expect(compareVersions(b, a)).toBeGreaterThan(0);
  });

  it("equal versions, leading zeros included", () => {
    expect(compareVersions("1.2", "1.2")).toBe(0);
    expect(compareVersions("007", "7")).toBe(0);
  });

  it("NAME_VERSION.raw names only", () => {
    expect(versionOf("ext_42.raw", "ext")).toBe("42");
    expect(versionOf("ext_2026.12.01.raw", "ext")).toBe("2026.12.01");
    expect(versionOf("other_42.raw", "ext")).toBeUndefined();
    expect(versionOf("ext_.raw", "ext")).toBeUndefined();
    expect(versionOf("ext_../x.raw", "ext")).toBeUndefined();
    expect(VERSION_PATTERN.test("-1")).toBe(false);
  });
});

describe("SHA256SUMS", () => {
  const a = "a".repeat(64);
  const b = "b".repeat(64);
  it("is written sorted, as sha256sum writes it, and read back", () => {
    const text = formatSums([{ sha256: b, file: "ext_2.raw" }, { sha256: a, file: "ext_1.raw" }]);
    expect(text).toBe(`${a}  ext_1.raw\n${b}  ext_2.raw\n`);
    expect(parseSums(text)).toEqual([{ sha256: a, file: "ext_1.raw" }, { sha256: b, file: "ext_2.raw" }]);
    expect(parseSums(`${a} *ext_1.raw\n`)).toEqual([{ sha256: a, file: "ext_1.raw" }]);
  });

  it.each([
    [`${a}  ../etc/passwd\n`], [`${a}  dir/ext_1.raw\n`], [`${a.slice(1)}  ext_1.raw\n`], ["garbage\n"], [`${a.toUpperCase()}  ext_1.raw\n`],
  ])("refuses %j", (text) => {
    expect(() => parseSums(text)).toThrow(ShapeError);
  });
});
