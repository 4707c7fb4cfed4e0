import { describe, expect, it } from "vitest";
import { editDistance, suggest } from "../../../src/nix/suggest.js";

describe("editDistance (optimal string alignment)", () => {
  it.each([
    ["", "", 0],
    ["a", "", 1],
    ["ripgrep", "ripgrep", 0],
    ["ripgrp", "ripgrep", 1],
    ["rpigrep", "ripgrep", 1], // transposition counts once
    ["kitten", "sitting", 3],
    ["ca", "abc", 3], // OSA, not unrestricted Damerau
    ["jq", "yq", 1],
  ])("%j ↔ %j = %d", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });

  it("stops early past the limit, without under-reporting", () => {
    expect(editDistance("abcdefgh", "zzzzzzzz", 2)).toBe(3);
    expect(editDistance("ripgrep", "ripgrep-all", 2)).toBe(3);
    expect(editDistance("abdc", "abcd", 1)).toBe(1);
  });
});

describe("suggest", () => {
  const pkgs = ["ripgrep", "ripgrep-all", "ripsecrets", "grep", "gnugrep", "jq", "yq", "jql", "hello", "hello-wayland", "python3", "python311", "fd", "fzf"];

  it.each([
    ["ripgrp", ["ripgrep"]],
    ["rigprep", ["ripgrep"]], // not 'grep', three edits away when one suffices
    ["ripgre", ["ripgrep", "ripgrep-all"]], // a longer name starting with the input is a fair guess
    ["jk", ["jq"]],
    ["helo", ["hello"]],
    ["Hello", ["hello"]],
    ["python", ["python3", "python311"]],
    ["pyton3", ["python3"]],
    ["xyzzy", []],
  ])("%j → %j", (name, expected) => {
    expect(suggest(name, pkgs)).toEqual(expected);
  });

  it("returns at most three, best first", () => {
    expect(suggest("fz", ["fzf", "fd", "fx", "fzy", "fz-x"])).toEqual(["fd", "fx", "fzf"]);
  });

  it("does not suggest the name itself, and tolerates duplicates", () => {
    expect(suggest("jq", ["jq", "jq", "jql", "jql"])).toEqual(["jql"]);
  });

  it("handles a nixpkgs-sized candidate list quickly", () => {
    const many = Array.from({ length: 100_000 }, (_, i) => `pkg${i.toString(36)}name`);
    many.push("ripgrep");
    const start = performance.now();
    expect(suggest("ripgrp", many)).toEqual(["ripgrep"]);
    expect(performance.now() - start).toBeLessThan(2000);
  });
});
