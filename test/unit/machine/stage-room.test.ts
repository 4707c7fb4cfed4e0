import { describe, expect, it } from "vitest";
import { roomToKeep } from "../../../src/machine/steps/pack.js";

const GiB = 1024 ** 3;

describe("whether a transaction keeps its staged trees (the stage cache)", () => {
  it("keeps them with at least 1 GiB free, or 5 % of a file system larger than 20 GiB", () => {
    expect(roomToKeep(2 * GiB, 10 * GiB)).toBe(true);
    expect(roomToKeep(1 * GiB, 10 * GiB)).toBe(true);
    expect(roomToKeep(6 * GiB, 100 * GiB)).toBe(true);
  });
  it("gives the space back below that", () => {
    expect(roomToKeep(0.9 * GiB, 10 * GiB)).toBe(false);
    expect(roomToKeep(4 * GiB, 100 * GiB)).toBe(false);
    expect(roomToKeep(0, 0)).toBe(false);
  });
});
