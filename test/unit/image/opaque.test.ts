import { afterEach, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync, gzipSync } from "node:zlib";
import { inspectZip, OpaqueInspector, sniffContainer } from "../../../src/image/opaque.js";
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

  it("searches inside zip entries, stored and deflated", () => {
    expect(inspectZip(zip([{ name: "a.txt", data: "nothing here", method: 8 }]))).toBeUndefined();
    const deflated = inspectZip(zip([{ name: "META-INF/x", data: "path=/nix/store/abc-jdk", method: 8 }]));
    expect(deflated).toMatchObject({ confirmed: true, detail: expect.stringContaining("META-INF/x") });
    const stored = inspectZip(zip([{ name: "s.txt", data: "/nix/store/abc", method: 0 }]));
    expect(stored).toMatchObject({ confirmed: true, detail: expect.stringContaining("CRC-32") });
    expect(inspectZip(Buffer.from("PK\x03\x04 truncated"))).toMatchObject({ confirmed: false });
  });

  it("decompresses with xz, zstd and bzip2", async () => {
    const base = dirs.make("tools");
    const inspector = new OpaqueInspector();
    for (const [tool, kind] of [["xz", "xz"], ["zstd", "zstd"], ["bzip2", "bzip2"]] as const) {
      const withRef = join(base, `with.${tool}`);
      const without = join(base, `without.${tool}`);
      execFileSync("sh", ["-c", `printf 'a /nix/store/x b' | ${tool} -c > "$1"; printf 'clean' | ${tool} -c > "$2"`, "sh", withRef, without]);
      expect(sniffContainer(readFileSync(withRef))).toBe(kind);
      expect(await inspector.inspect(kind, withRef)).toEqual({ confirmed: true });
      expect(await inspector.inspect(kind, without)).toBeUndefined();
    }
  });

  it("searches big gzip files (streamed, not held in memory)", async () => {
    const base = dirs.make("biggz");
    const root = join(base, "store");
    // Random bytes do not compress: the .gz stays above the whole-file limit.
    const payload = Buffer.concat([randomBytes(17 * 1024 * 1024), Buffer.from(" /nix/store/late-reference ")]);
    const closure = writeStore(root, { big: { "share/big.gz": gzipSync(payload, { level: 1 }) } });
    const report = await stage({
      closure, packages: [], store: { root }, stageDir: join(base, "stage"), extensionName: "t", architecture: "x86-64",
      hostRoot: writeHost(join(base, "host"), { dirs: ["usr"] }),
    });
    expect(report.opaqueReferences).toEqual([{ path: `usr/store/${hashFor("big")}-big/share/big.gz`, kind: "gzip", confirmed: true }]);
  });

  it("reports files of the closure whose compressed content refers to the store", async () => {
    const base = dirs.make("opaque");
    const root = join(base, "store");
    const closure = writeStore(root, {
      doc: {
        "share/man/man1/ref.1.gz": gzipSync(`.TH REF\nsee ${storePath("other")}/share/doc\n`),
        "share/man/man1/clean.1.gz": gzipSync(".TH CLEAN\nnothing\n"),
        "share/broken.gz": Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3]),
        "lib/app.jar": zip([{ name: "conf.properties", data: "home=/nix/store/zzz-jre", method: 8 }]),
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
      { path: `${prefix}/lib/app.jar`, kind: "zip", confirmed: true, detail: expect.stringContaining("conf.properties") },
      { path: `${prefix}/share/broken.gz`, kind: "gzip", confirmed: false, detail: expect.stringContaining("could not be decompressed") },
      { path: `${prefix}/share/man/man1/ref.1.gz`, kind: "gzip", confirmed: true },
    ]);
    // The gzip bytes themselves are copied unchanged.
    expect(readFileSync(join(stageDir, prefix, "share/man/man1/ref.1.gz"))).toEqual(readFileSync(join(root, storePath("doc"), "share/man/man1/ref.1.gz")));
  });
});
