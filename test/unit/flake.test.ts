import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";

// flake.nix packages ext for Nix users; offline there is no nixpkgs to build it with, so CI proves
// at least that it (and the fixture flakes) parse.
const REPO = new URL("../..", import.meta.url).pathname;

describe("flakes parse", () => {
  for (const file of ["flake.nix", "test/fixtures/flake.nix", "test/fixtures/packages.nix", "test/fixtures/mk.nix", "test/fixtures/platforms.nix"]) {
    it(file, () => {
      const out = execFileSync("nix-instantiate", ["--parse", `${REPO}${file}`], { encoding: "utf8" });
      expect(out.length).toBeGreaterThan(0);
    });
  }
});
