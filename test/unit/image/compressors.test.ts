import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { availableCompressors, findMkfs, kernelMounts, probe, resolveCompression } from "../../../src/image/compressors.js";
import { mkfsArguments, IMAGE_UUID } from "../../../src/image/pack.js";
import { UsageError } from "../../../src/errors.js";

describe("compression", () => {
  it("knows the kernel releases whose EROFS mounts each algorithm", () => {
    expect(kernelMounts("lz4", "5.10.0")).toBe(true);
    expect(kernelMounts("lzma", "5.15.0")).toBe(false);
    expect(kernelMounts("lzma", "5.16.0")).toBe(true);
    expect(kernelMounts("deflate", "6.5.9")).toBe(false);
    expect(kernelMounts("deflate", "6.6.0-1-amd64")).toBe(true);
    expect(kernelMounts("zstd", "6.9.12")).toBe(false);
    expect(kernelMounts("zstd", "6.10.0")).toBe(true);
    expect(kernelMounts("zstd", "7.0")).toBe(true);
    expect(kernelMounts("gzip", "7.0")).toBe(false);
  });

  it("finds what mkfs.erofs can do by trying it, whatever its --help says", async () => {
    const binary = findMkfs();
    expect(binary).toBeDefined();
    const caps = await probe(binary!);
    // Every erofs-utils since 1.5 packs lz4 and lz4hc; a fake mkfs.erofs that accepts nothing offers nothing.
    expect(caps.compressors).toEqual(expect.arrayContaining(["lz4", "lz4hc"]));
    const dir = mkdtempSync(join(tmpdir(), "ext-fake-mkfs-"));
    try {
      const fake = join(dir, "mkfs.erofs");
      writeFileSync(fake, "#!/bin/sh\necho 'Available compressors are: lz4hc, lz4' >&2\nexit 1\n", { mode: 0o755 });
      expect(await probe(fake)).toEqual({ compressors: [], workers: false, incremental: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses, for this machine, an algorithm that mkfs.erofs packs but the kernel cannot mount; ext build may", async () => {
    const err = await resolveCompression("lz4", { kernelRelease: "5.3.0" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toMatch(/the running kernel \(Linux 5\.3\.0\) cannot mount EROFS images compressed with 'lz4': that needs Linux ≥ 5\.4/);
    expect(await resolveCompression("lz4", { kernelRelease: "5.3.0", forThisKernel: false })).toMatchObject({ mkfsArg: "lz4" });
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
    expect(args).toEqual(["--quiet", "-T1", `-U${IMAGE_UUID}`, "--all-root", "-x-1", "-zlz4hc,9", "/out.tmp", "/stage"]);
    expect(mkfsArguments("lz4", "/o", "/s", ["--workers=2"])).toEqual(["--quiet", "--workers=2", "-T1", `-U${IMAGE_UUID}`, "--all-root", "-x-1", "-zlz4", "/o", "/s"]);
    expect(mkfsArguments(undefined, "/o", "/s")).not.toContain(expect.stringMatching(/^-z/));
  });
});
