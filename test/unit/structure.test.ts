import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

// The folders of src/ are floors (docs/design.md, "Floors"): a module imports from its own folder
// and from floors below it, never above. base/ and the files at the top of src/ are the ground
// floor, which imports no folder; cli/ is the top floor, which nothing imports.
const FLOORS = ["base", "nix", "store", "image", "generations", "pipeline", "sysext", "boot", "machine", "manifest", "repair", "fleet", "elevate", "doctor", "cli"];

const SRC = resolve(import.meta.dirname, "../../src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []);
}

/** base and the top-level files are floor 0; a folder not in the list is an error of its own. */
function floorOf(file: string): { folder: string; floor: number } {
  const rel = relative(SRC, file);
  const folder = rel.includes("/") ? rel.split("/")[0]! : "base";
  return { folder, floor: FLOORS.indexOf(folder) };
}

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:from\s+|import\(\s*)["'](\.{1,2}\/[^"']+)["']/g)].map((m) => resolve(dirname(file), m[1]!));
}

describe("the floors of src/", () => {
  const files = sources(SRC);

  it("every folder of src/ has a floor", () => {
    const unknown = [...new Set(files.map((f) => floorOf(f)))].filter((f) => f.floor < 0).map((f) => f.folder);
    expect(unknown).toEqual([]);
  });

  it("no module imports from a floor above its own (nor from a sibling above it)", () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = floorOf(file);
      for (const target of imports(file)) {
        const to = floorOf(target);
        if (to.folder !== from.folder && to.floor > from.floor) upward.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
