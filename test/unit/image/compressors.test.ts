import { describe, expect, it } from "vitest";
import { availableCompressors, parseCompressors, resolveCompression } from "../../../src/image/compressors.js";
import { mkfsArguments, IMAGE_UUID } from "../../../src/image/pack.js";
import { UsageError } from "../../../src/errors.js";

describe("compression", () => {
  it("reads the algorithm list of erofs-utils 1.5", () => {
    const help = " --quiet               quiet execution (do not write anything to standard output.)\n\nAvailable compressors are: lz4hc, lz4\n";
    expect(parseCompressors(help)).toEqual(["lz4hc", "lz4"]);
  });

  it("reads the one-per-line list of newer erofs-utils", () => {
    const help = [
      " -z C[,#][:...]        set a primary compressor C with optional level #",
      "    Available compressors are:",
      "        lz4",
      "        lz4hc[,<0-12>]",
      "        lzma[,<0-109>]",
      "        deflate[,<0-9>]",
      "        zstd[,<0-22>]",
      " -C#                   specify the size of compress physical cluster in bytes",
      "    (lzma is mentioned again here)",
    ].join("\n");
    expect(parseCompressors(help)).toEqual(["lz4hc", "lz4", "lzma", "deflate", "zstd"]);
    expect(parseCompressors("no list here")).toEqual([]);
  });

  it("knows what this machine's mkfs.erofs supports", async () => {
    const list = await availableCompressors();
    expect(list).toContain("lz4");
    expect(list).toContain("lz4hc");
  });

  it("turns choices into mkfs.erofs arguments", async () => {
    expect(await resolveCompression("none")).toMatchObject({ mkfsArg: undefined });
    expect(await resolveCompression("lz4")).toMatchObject({ mkfsArg: "lz4" });
    expect(await resolveCompression("lz4hc")).toMatchObject({ mkfsArg: "lz4hc" });
    expect(await resolveCompression("lz4hc,12")).toMatchObject({ mkfsArg: "lz4hc,12", level: 12 });
    expect(await resolveCompression("LZ4HC,level=4")).toMatchObject({ mkfsArg: "lz4hc,level=4", level: 4 });
  });

  it("refuses what this machine cannot do, listing what it can", async () => {
    const supported = await availableCompressors();
    const missing = ["zstd", "lzma", "deflate"].find((a) => !supported.includes(a));
    if (missing !== undefined) {
      const err = await resolveCompression(missing).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).hint).toContain("lz4hc");
    }
    await expect(resolveCompression("gzip")).rejects.toThrow(UsageError);
    await expect(resolveCompression("lz4,3")).rejects.toThrow(/no compression level/);
    await expect(resolveCompression("lz4hc;rm -rf")).rejects.toThrow(UsageError);
    await expect(resolveCompression("lz4hc,-d9")).rejects.toThrow(UsageError);
  });

  it("makes images a function of the tree: fixed time, UUID, owner, no xattrs", () => {
    const args = mkfsArguments("lz4hc,9", "/out.tmp", "/stage");
    expect(args).toEqual(["--quiet", "-T0", `-U${IMAGE_UUID}`, "--all-root", "-x-1", "-zlz4hc,9", "/out.tmp", "/stage"]);
    expect(mkfsArguments(undefined, "/o", "/s")).not.toContain(expect.stringMatching(/^-z/));
  });
});
