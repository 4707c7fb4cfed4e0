import { afterEach, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync, gunzipSync, gzipSync } from "node:zlib";
import { ContainerRelocator } from "../../../src/image/containers.js";
import { OpaqueInspector, opaqueWarning, sniffContainer } from "../../../src/image/opaque.js";
import { stage } from "../../../src/image/stage.js";
import { hashFor, storePath, tempDirs, writeHost, writeStore } from "./helpers.js";

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** A minimal zip with the given entries (method 0 = stored, 8 = deflated). */
function zip(entries: { name: string; data: string; method: 0 | 8 }[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const raw = Buffer.from(e.data);
    const body = e.method === 8 ? deflateRawSync(raw) : raw;
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(e.method, 10);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(raw.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    central.push(cd, name);
    offset += 30 + name.length + body.length;
  }
  const cdBuf = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdBuf.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cdBuf, eocd]);
}

describe("opaque content", () => {
  it("recognises container formats by magic number", () => {
    expect(sniffContainer(gzipSync("x"))).toBe("gzip");
    expect(sniffContainer(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]))).toBe("xz");
    expect(sniffContainer(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe("zstd");
    expect(sniffContainer(Buffer.from("BZh91AY&SY...."))).toBe("bzip2");
    expect(sniffContainer(Buffer.from("BZh is just text"))).toBeUndefined();
    expect(sniffContainer(Buffer.from("PK\x03\x04rest"))).toBe("zip");
    expect(sniffContainer(Buffer.from([0x04, 0x22, 0x4d, 0x18, 0]))).toBe("lz4");
    expect(sniffContainer(Buffer.from("\x7fELF"))).toBeUndefined();
    expect(sniffContainer(Buffer.alloc(0))).toBeUndefined();
  });

  it("relocates inside zip entries, stored and deflated, and fixes their CRC-32", async () => {
    const relocator = new ContainerRelocator();
    expect(await relocator.relocate("zip", zip([{ name: "a.txt", data: "nothing here", method: 8 }]))).toEqual({ outcome: "clean" });
    const dir = dirs.make("zip");
    writeFileSync(join(dir, "s.txt"), "a /nix/store/abc b");
    writeFileSync(join(dir, "keep.txt"), "untouched ".repeat(20));
    writeFileSync(join(dir, "x.conf"), "path=/nix/store/abc-jdk\n".repeat(20));
    // Real zip: s.txt stored (-0), the others deflated; -X: no extra fields that carry times.
    execFileSync("sh", ["-c", "cd \"$1\" && zip -qX0 a.zip s.txt && zip -qX9 a.zip keep.txt x.conf", "sh", dir]);
    const result = await relocator.relocate("zip", readFileSync(join(dir, "a.zip")));
    expect(result).toMatchObject({ outcome: "relocated", detail: "entries s.txt, x.conf" });
    writeFileSync(join(dir, "b.zip"), (result as { content: Buffer }).content);
    // unzip -t checks every CRC-32; -p prints the content.
    execFileSync("unzip", ["-tq", join(dir, "b.zip")]);
    expect(execFileSync("unzip", ["-p", join(dir, "b.zip"), "s.txt"]).toString()).toBe("a /usr/store/abc b");
    expect(execFileSync("unzip", ["-p", join(dir, "b.zip"), "x.conf"]).toString()).toBe("path=/usr/store/abc-jdk\n".repeat(20));
    expect(execFileSync("unzip", ["-p", join(dir, "b.zip"), "keep.txt"]).toString()).toBe("untouched ".repeat(20));
    expect(await relocator.relocate("zip", Buffer.from("PK\x03\x04 truncated"))).toMatchObject({ outcome: "kept", confirmed: false });
  });

  it("leaves a signed jar byte-identical", async () => {
    const signed = zip([
      { name: "META-INF/MANIFEST.MF", data: "Manifest-Version: 1.0\n", method: 8 },
      { name: "META-INF/SIGNER.SF", data: "Signature-Version: 1.0\n", method: 8 },
      { name: "conf", data: "home=/nix/store/abc-jre", method: 0 },
    ]);
    expect(await new ContainerRelocator().relocate("zip", signed)).toMatchObject({
      outcome: "kept", confirmed: true, detail: expect.stringContaining("signed archive (META-INF/SIGNER.SF)"),
    });
  });

  it("relocates xz, zstd, bzip2 and gzip content with the real tools, keeping what the header says", async () => {
    const base = dirs.make("tools");
    const relocator = new ContainerRelocator();
    const cases = [
      ["xz", "xz --check=crc32"], ["zstd", "zstd -q --no-check"], ["bzip2", "bzip2 -4"], ["gzip", "gzip -n -9"], ["lz4", "lz4 -q"],
    ] as const;
    for (const [kind, command] of cases) {
      const withRef = join(base, `with.${kind}`);
      const without = join(base, `without.${kind}`);
      execFileSync("sh", ["-c", `printf 'a /nix/store/x b' | ${command} -c > "$1"; printf 'clean' | ${command} -c > "$2"`, "sh", withRef, without]);
      expect(sniffContainer(readFileSync(withRef))).toBe(kind);
      expect(await relocator.relocate(kind, readFileSync(without))).toEqual({ outcome: "clean" });
      const result = await relocator.relocate(kind, readFileSync(withRef));
      expect(result.outcome).toBe("relocated");
      const out = join(base, `out.${kind}`);
      writeFileSync(out, (result as { content: Buffer }).content);
      expect(execFileSync(kind, ["-dc", out]).toString()).toBe("a /usr/store/x b");
      // Compressing again gives the same bytes: images stay reproducible.
      expect((await relocator.relocate(kind, readFileSync(withRef))) as { content: Buffer }).toEqual(result);
    }
    expect(execFileSync("xz", ["--robot", "--list", join(base, "out.xz")]).toString()).toMatch(/\tCRC32\t/);
    expect(readFileSync(join(base, "out.bzip2")).subarray(0, 4).toString()).toBe("BZh4");
    expect(readFileSync(join(base, "out.gzip"))[8]).toBe(2);
  });

  it("leaves a file that only looks compressed byte-identical", async () => {
    const relocator = new ContainerRelocator();
    const fake = Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.from(" /nix/store/x")]);
    expect(await relocator.relocate("xz", fake)).toMatchObject({ outcome: "kept", confirmed: false, detail: expect.stringContaining("xz cannot decompress it") });
  });

  it("searches big files it does not relocate with xz, zstd and bzip2", async () => {
    const base = dirs.make("tools");
    const inspector = new OpaqueInspector();
    for (const [tool, kind] of [["xz", "xz"], ["zstd", "zstd"], ["bzip2", "bzip2"]] as const) {
      const withRef = join(base, `with.${tool}`);
      const without = join(base, `without.${tool}`);
      execFileSync("sh", ["-c", `printf 'a /nix/store/x b' | ${tool} -c > "$1"; printf 'clean' | ${tool} -c > "$2"`, "sh", withRef, without]);
      expect(await inspector.inspect(kind, withRef)).toEqual({ confirmed: true });
      expect(await inspector.inspect(kind, without)).toBeUndefined();
    }
  });

  it("relocates big gzip files (above the whole-file limit)", async () => {
    const base = dirs.make("biggz");
    const root = join(base, "store");
    // Random bytes do not compress: the .gz stays above the whole-file limit.
    const payload = Buffer.concat([randomBytes(17 * 1024 * 1024), Buffer.from(" /nix/store/late-reference ")]);
    const closure = writeStore(root, { big: { "share/big.gz": gzipSync(payload, { level: 1 }) } });
    const stageDir = join(base, "stage");
    const report = await stage({
      closure, packages: [], store: { root }, stageDir, extensionName: "t", architecture: "x86-64",
      hostRoot: writeHost(join(base, "host"), { dirs: ["usr"] }),
    });
    const path = `usr/store/${hashFor("big")}-big/share/big.gz`;
    expect(report.opaqueReferences).toEqual([]);
    expect(report.relocatedContainers).toEqual([{ path, kind: "gzip" }]);
    const plain = gunzipSync(readFileSync(join(stageDir, path)));
    expect(plain.length).toBe(payload.length);
    expect(plain.subarray(-27).toString()).toBe(" /usr/store/late-reference ");
  });

  it("relocates the closure's compressed files that refer to the store, and reports those it leaves", async () => {
    const base = dirs.make("opaque");
    const root = join(base, "store");
    const closure = writeStore(root, {
      doc: {
        "share/man/man1/ref.1.gz": gzipSync(`.TH REF\nsee ${storePath("other")}/share/doc\n`),
        "share/man/man1/clean.1.gz": gzipSync(".TH CLEAN\nnothing\n"),
        "share/broken.gz": Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3]),
        "lib/app.jar": zip([{ name: "conf.properties", data: "home=/nix/store/zzz-jre", method: 8 }]),
        "lib/signed.jar": zip([{ name: "META-INF/A.RSA", data: "sig", method: 0 }, { name: "x", data: "/nix/store/zzz-jre", method: 0 }]),
        "share/plain.txt": "/nix/store/ is rewritten, not opaque",
      },
    });
    const stageDir = join(base, "stage");
    const report = await stage({
      closure, packages: [], store: { root }, stageDir, extensionName: "t", architecture: "x86-64",
      hostRoot: writeHost(join(base, "host"), { dirs: ["usr"] }),
    });
    const prefix = `usr/store/${hashFor("doc")}-doc`;
    expect(report.opaqueReferences).toEqual([
      { path: `${prefix}/lib/signed.jar`, kind: "zip", confirmed: true, detail: expect.stringContaining("signed archive") },
      { path: `${prefix}/share/broken.gz`, kind: "gzip", confirmed: false, detail: expect.stringContaining("could not be decompressed") },
    ]);
    expect(report.relocatedContainers).toEqual([
      { path: `${prefix}/lib/app.jar`, kind: "zip", detail: "entries conf.properties" },
      { path: `${prefix}/share/man/man1/ref.1.gz`, kind: "gzip" },
    ]);
    expect(gunzipSync(readFileSync(join(stageDir, prefix, "share/man/man1/ref.1.gz"))).toString()).toBe(`.TH REF\nsee ${storePath("other").replace("/nix/", "/usr/")}/share/doc\n`);
    // What is left is left byte for byte, and what has nothing to relocate too.
    for (const kept of ["lib/signed.jar", "share/broken.gz", "share/man/man1/clean.1.gz"]) {
      expect(readFileSync(join(stageDir, prefix, kept))).toEqual(readFileSync(join(root, storePath("doc"), kept)));
    }
    expect(opaqueWarning(report.opaqueReferences[0]!)).toMatch(/refers to \/nix\/store and could not be relocated \(signed archive .*\); the file was left byte-identical/);
  });
});
