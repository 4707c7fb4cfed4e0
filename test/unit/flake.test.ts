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

describe("flake.nix builds what npm run build needs", () => {
  it("every script the build runs is in the package's source fileset", async () => {
    const { readFileSync } = await import("node:fs");
    const build = (JSON.parse(readFileSync(`${REPO}package.json`, "utf8")) as { scripts: { build: string } }).scripts.build;
    const scripts = [...build.matchAll(/\bscripts\/[\w.-]+/g)].map((m) => m[0]);
    expect(scripts).toContain("scripts/man-page.mjs");
    const flake = readFileSync(`${REPO}flake.nix`, "utf8");
    for (const s of scripts) expect(flake, s).toContain(`./${s}\n`);
    // ext.1 is installed where man finds it.
    expect(flake).toMatch(/install -Dm644 dist\/ext\.1 "\$out\/share\/man\/man1\/ext\.1"/);
  });
});
