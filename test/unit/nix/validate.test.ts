import { describe, expect, it } from "vitest";
import { InvalidNameError } from "../../../src/errors.js";
import { installable, isStorePath, validateAttrPath, validateFlakeRef, validateOutputName, validateStorePath } from "../../../src/nix/validate.js";

describe("validateAttrPath", () => {
  it.each([
    ["ripgrep", ["ripgrep"]],
    ["jq", ["jq"]],
    ["python3Packages.requests", ["python3Packages", "requests"]],
    ["gtk+3", ["gtk+3"]],
    ["_1password", ["_1password"]],
    ["hello-world", ["hello-world"]],
    ["nodePackages_latest.typescript-language-server", ["nodePackages_latest", "typescript-language-server"]],
  ])("accepts %j", (input, segments) => {
    expect(validateAttrPath(input)).toEqual(segments);
  });

  it.each([
    ["jq; rm -rf /", "whitespace"],
    ["jq;rm", "metacharacter"],
    ["../x", "'/'"],
    ["..", "empty part"],
    ["a#b", "'#'"],
    ["", "empty"],
    [" ripgrep", "whitespace"],
    ["rip grep", "whitespace"],
    ["rip\tgrep", "whitespace"],
    ["rip\u0000grep", "control character"],
    ["rip\u001bgrep", "control character"],
    ["'ripgrep'", "quote"],
    ['"ripgrep"', "quote"],
    ["`id`", "quote"],
    ["${builtins.abort 1}", "interpolation"],
    ["a${b}", "interpolation"],
    ["$(id)", "metacharacter"],
    ["a|b", "metacharacter"],
    ["a>b", "metacharacter"],
    ["a\\b", "metacharacter"],
    ["/nix/store/x", "'/'"],
    ["nixpkgs#ripgrep", "'#'"],
    [".ripgrep", "empty part"],
    ["ripgrep.", "empty part"],
    ["a..b", "empty part"],
    ["-rf", "must start with a letter"],
    ["--option", "must start with a letter"],
    ["1password", "must start with a letter"],
    ["a.1b", "must start with a letter"],
    ["a*b", "must start with a letter"],
    ["é", "must start with a letter"],
    ["a".repeat(201), "longer than"],
    [Array.from({ length: 9 }, () => "a").join("."), "more than 8"],
  ])("rejects %j (%s)", (input, why) => {
    let error: unknown;
    try {
      validateAttrPath(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidNameError);
    const e = error as InvalidNameError;
    expect(e.message).toContain(why);
    expect(e.hint).toBeTruthy();
    // The message names the bad input (escaped so control characters do not break the line).
    if (input.length <= 200) expect(e.message).toContain(JSON.stringify(input));
    expect(e.message).not.toMatch(/[\x00-\x08\x0b-\x1f]/);
  });

  it("says which kind of name was wrong", () => {
    expect(() => validateAttrPath("a b", "attribute path")).toThrow(/invalid attribute path/);
  });
});

describe("validateFlakeRef", () => {
  it.each([
    ["nixpkgs", "nixpkgs"],
    ["nixpkgs/nixos-24.05", "nixpkgs/nixos-24.05"],
    ["github:NixOS/nixpkgs/0123456789abcdef0123456789abcdef01234567", "github:NixOS/nixpkgs/0123456789abcdef0123456789abcdef01234567"],
    ["github:o/r/rev", "github:o/r/rev"],
    ["github:o/r?dir=sub", "github:o/r?dir=sub"],
    ["git+file:///x", "git+file:///x"],
    ["git+https://example.org/r.git?ref=main&rev=abc", "git+https://example.org/r.git?ref=main&rev=abc"],
    ["https://example.org/nixpkgs.tar.gz", "https://example.org/nixpkgs.tar.gz"],
    ["path:/abs", "path:/abs"],
    ["path:/abs/dir/", "path:/abs/dir"],
    ["path://abs//dir/./x", "path:/abs/dir/x"],
    ["/abs/path", "path:/abs/path"],
    ["/work/main/test/fixtures", "path:/work/main/test/fixtures"],
    ["/abs/flake?narHash=sha256-abc%3D", "path:/abs/flake?narHash=sha256-abc%3D"],
    ["flake:nixpkgs", "flake:nixpkgs"],
  ])("accepts %j as %j", (input, normalised) => {
    expect(validateFlakeRef(input)).toBe(normalised);
  });

  it.each([
    ["", "empty"],
    ["nixpkgs#ripgrep", "'#'"],
    ["path:/x#y", "'#'"],
    ["nix pkgs", "whitespace"],
    ["nixpkgs\n", "whitespace"],
    ["nixpkgs\u0000", "control character"],
    ["nixpkgs\u007f", "control character"],
    ["-nixpkgs", "starts with '-'"],
    ["--store=/x", "starts with '-'"],
    ["'nixpkgs'", "characters that do not belong"],
    ["nixpkgs;rm", "characters that do not belong"],
    ["$HOME/flake", "characters that do not belong"],
    ["github:o/r`id`", "characters that do not belong"],
    ["./flake", "relative"],
    ["../flake", "relative"],
    ["~/flake", "relative"],
    ["path:relative/dir", "absolute path"],
    ["path:", "nothing follows"],
    ["git+file:relative", "absolute path"],
    ["a".repeat(1001), "longer than"],
  ])("rejects %j (%s)", (input, why) => {
    expect(() => validateFlakeRef(input)).toThrow(InvalidNameError);
    expect(() => validateFlakeRef(input)).toThrow(why);
  });
});

describe("installable", () => {
  it("joins source and attribute into one argv string, optionally with an output", () => {
    expect(installable("path:/x", "ripgrep")).toBe("path:/x#ripgrep");
    expect(installable("nixpkgs", "jq", "man")).toBe("nixpkgs#jq^man");
    expect(installable("nixpkgs", "jq", "man", false)).toBe("nixpkgs#jq.man");
  });
});

describe("validateOutputName", () => {
  it.each(["out", "bin", "man", "dev", "lib"])("accepts %j", (o) => expect(() => validateOutputName(o)).not.toThrow());
  it.each(["", "a b", "out,man", "^out", "../out", "*"])("rejects %j", (o) => expect(() => validateOutputName(o)).toThrow(InvalidNameError));
});

describe("store paths", () => {
  it.each([
    ["/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-recgood-2.3", true],
    ["/nix/store/0vx7nswhz9pbbnfwafpxx7yk3gapdl07-recgood-2.3.drv", true],
    ["/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf", false],
    ["/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-recgood/bin/x", false],
    ["/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-e", false], // 'e' is not in Nix's base-32 alphabet
    ["/usr/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-recgood-2.3", false],
    ["-/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-x", false],
  ])("%j is a store path: %j", (p, ok) => {
    expect(isStorePath(p)).toBe(ok);
    if (!ok) expect(() => validateStorePath(p)).toThrow(InvalidNameError);
  });
});
