import { describe, it, expect } from "vitest";
import { appendImagesFromEnvironment } from "../../../src/cli/seams.js";

// Appending to the previous image is on by default (docs/design.md); only EXT_APPEND_IMAGES=0 turns
// it off, for tests that need full packs. Any other value must not silently turn it off.
describe("EXT_APPEND_IMAGES", () => {
  it("unset: on", () => expect(appendImagesFromEnvironment({})).toBe(true));
  it("0: off", () => expect(appendImagesFromEnvironment({ EXT_APPEND_IMAGES: "0" })).toBe(false));
  it("1 (the old opt-in), empty, anything else: on", () => {
    for (const v of ["1", "", "yes", "false"]) expect(appendImagesFromEnvironment({ EXT_APPEND_IMAGES: v })).toBe(true);
  });
});
