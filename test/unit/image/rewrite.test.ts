import { afterEach, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  containsStoreReference, indexOfStoreReference, rewriteLinkTarget, rewriteStoreReferences, StreamRewriter,
} from "../../../src/image/rewrite.js";
import { stage } from "../../../src/image/stage.js";
import { WHOLE_FILE_LIMIT } from "../../../src/image/copy.js";
import type { StageInput } from "../../../src/image/types.js";
import { hashFor, storePath, tempDirs, writeHost, writeStore } from "./helpers.js";

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

describe("rewriteStoreReferences", () => {
  it("replaces every occurrence, binary-safe, and keeps the length", () => {
    const buf = Buffer.concat([
      Buffer.from([0, 0xff, 0x7f, 0x45, 0x4c, 0x46]),
      Buffer.from("/nix/store/abc-glibc/lib/ld.so\0"),
      Buffer.from([0x00, 0x2f, 0x00]),
      Buffer.from("x:/nix/store/def-x/bin:/nix/store/ghi-y/lib\n"),
      Buffer.from("/nix/store"),
    ]);
    const before = buf.length;
    expect(rewriteStoreReferences(buf)).toBe(4);
    expect(buf.length).toBe(before);
    expect(buf.includes("/nix/store")).toBe(false);
    expect(buf.toString("latin1")).toContain("/usr/store/abc-glibc/lib/ld.so\0");
    expect(buf.toString("latin1")).toContain("x:/usr/store/def-x/bin:/usr/store/ghi-y/lib\n");
    expect(buf.subarray(0, 6)).toEqual(Buffer.from([0, 0xff, 0x7f, 0x45, 0x4c, 0x46]));
    expect(buf.subarray(-10).toString()).toBe("/usr/store");
  });

  it("handles adjacent references and near-misses", () => {
    // "/nix/store/nix/store" holds two references: the second one starts at the slash after "store".
    const buf = Buffer.from("/nix/store/nix/store /nix/stor /nix/Store nix/store x/store /ni/nix/store");
    expect(rewriteStoreReferences(buf)).toBe(3);
    expect(buf.toString()).toBe("/usr/store/usr/store /nix/stor /nix/Store nix/store x/store /ni/usr/store");
  });

  it("leaves a buffer without references untouched", () => {
    const buf = Buffer.from("#!/bin/sh\necho /usr/local/nix store\n");
    const copy = Buffer.from(buf);
    expect(rewriteStoreReferences(buf)).toBe(0);
    expect(buf).toEqual(copy);
    expect(containsStoreReference(buf)).toBe(false);
  });

  it("finds references at the very start and end", () => {
    expect(indexOfStoreReference(Buffer.from("/nix/store"))).toBe(0);
    expect(indexOfStoreReference(Buffer.from("ab/nix/store"))).toBe(2);
    expect(indexOfStoreReference(Buffer.from("x/store"))).toBe(-1);
    expect(indexOfStoreReference(Buffer.from(""))).toBe(-1);
  });

  it("rewrites symlink targets without touching the input", () => {
    const target = Buffer.from("/nix/store/abc-foo/bin/../lib/nix-store-thing:/nix/store/def");
    const { target: out, changed } = rewriteLinkTarget(target);
    expect(changed).toBe(true);
    expect(out.toString()).toBe("/usr/store/abc-foo/bin/../lib/nix-store-thing:/usr/store/def");
    expect(target.toString()).toBe("/nix/store/abc-foo/bin/../lib/nix-store-thing:/nix/store/def");
    expect(rewriteLinkTarget(Buffer.from("../lib/libc.so.6")).changed).toBe(false);
  });

  it("streams: a reference split across chunks at any position is rewritten", () => {
    const text = "aaaa/nix/store/x-y/bin/sh bbbb /nix/store/z cc";
    for (let cut = 1; cut < text.length; cut++) {
      for (const second of [cut + 1, cut + 5, text.length]) {
        const r = new StreamRewriter();
        const src = Buffer.from(text);
        const parts = [src.subarray(0, cut), src.subarray(cut, Math.min(second, src.length)), src.subarray(Math.min(second, src.length))];
        const out = Buffer.concat([...parts.map((p) => Buffer.from(r.push(p))), r.end()]);
        expect(out.toString()).toBe("aaaa/usr/store/x-y/bin/sh bbbb /usr/store/z cc");
        expect(r.replaced).toBe(2);
      }
    }
  });
});

function input(root: string, host: string, closure: StageInput["closure"], extra: Partial<StageInput> = {}): StageInput {
  return {
    closure,
    packages: [],
    store: { root },
    stageDir: join(root, "..", "stage"),
    extensionName: "test",
    architecture: "x86-64",
    hostRoot: host,
    ...extra,
  };
}

describe("stage: relocation of the closure", () => {
  it("copies files, symlinks and directories, rewriting contents and link targets", async () => {
    const base = dirs.make("rw");
    const root = join(base, "store");
    const host = writeHost(join(base, "host"), { dirs: ["usr/bin", "usr/lib"] });
    const glibc = storePath("glibc");
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(64), Buffer.from(`${glibc}/lib/ld-linux-x86-64.so.2\0${glibc}/lib\0`)]);
    const plain = Buffer.from([0, 1, 2, 3, 0xfe, 0xff, 0x2f, 0x6e, 0x69, 0x78]);
    const closure = writeStore(root, {
      glibc: { "lib/libc.so.6": "libc", "lib/ld-linux-x86-64.so.2": { exec: "ld" }, "share/empty/.keep": "" },
      hello: {
        "bin/hello": { exec: elf },
        "bin/hi": { link: "hello" },
        "lib/libc.so.6": { link: `${glibc}/lib/libc.so.6` },
        "share/data.bin": plain,
        "share/script": { exec: `#!${storePath("bash")}/bin/sh\nexec ${glibc}/lib/ld-linux-x86-64.so.2 "$@"\n` },
        "share/suid": { mode: 0o4755, data: "setuid" },
        "share/writable": { mode: 0o644, data: "w" },
        "share/dangling": { link: "/nix/store/missing-thing" },
      },
    });
    const stageDir = join(base, "stage");
    const report = await stage(input(root, host, closure, { stageDir }));
    const hello = join(stageDir, "usr/store", `${hashFor("hello")}-hello`);

    const staged = readFileSync(join(hello, "bin/hello"));
    expect(staged.length).toBe(elf.length);
    expect(staged.toString("latin1")).toContain(`/usr/store/${hashFor("glibc")}-glibc/lib/ld-linux-x86-64.so.2\0`);
    expect(staged.includes("/nix/store")).toBe(false);
    expect(readFileSync(join(hello, "share/data.bin"))).toEqual(plain);
    expect(readFileSync(join(hello, "share/script"), "utf8")).toBe(
      `#!/usr/store/${hashFor("bash")}-bash/bin/sh\nexec /usr/store/${hashFor("glibc")}-glibc/lib/ld-linux-x86-64.so.2 "$@"\n`,
    );
    expect(readlinkSync(join(hello, "bin/hi"))).toBe("hello");
    expect(readlinkSync(join(hello, "lib/libc.so.6"))).toBe(`/usr/store/${hashFor("glibc")}-glibc/lib/libc.so.6`);
    expect(readlinkSync(join(hello, "share/dangling"))).toBe("/usr/store/missing-thing");
    expect(lstatSync(join(stageDir, "usr/store", `${hashFor("glibc")}-glibc/share/empty/.keep`)).size).toBe(0);

    // Fixed modes: executables 0555, others 0444, no setuid, directories 0755.
    expect(statSync(join(hello, "bin/hello")).mode & 0o7777).toBe(0o555);
    expect(statSync(join(hello, "share/data.bin")).mode & 0o7777).toBe(0o444);
    expect(statSync(join(hello, "share/suid")).mode & 0o7777).toBe(0o555);
    expect(statSync(join(hello, "share/writable")).mode & 0o7777).toBe(0o444);
    expect(statSync(join(hello, "share")).mode & 0o7777).toBe(0o755);

    expect(report.files).toBe(8);
    expect(report.rewritten).toBe(2);
    expect(report.symlinks).toBe(3);
    expect(report.rewrittenLinks).toBe(2);
    expect(report.bytes).toBeGreaterThan(elf.length);
    expect(report.releaseFile).toBe("usr/lib/extension-release.d/extension-release.test");
  });

  it("streams big files and rewrites a reference across the read-chunk boundary", async () => {
    const base = dirs.make("big");
    const root = join(base, "store");
    const host = writeHost(join(base, "host"), { dirs: ["usr"] });
    const big = Buffer.alloc(WHOLE_FILE_LIMIT + 3 * 1024 * 1024, 0x61);
    // Straddles the 1 MiB chunk boundary, and one more at the end of the file.
    Buffer.from("/nix/store/q").copy(big, 1024 * 1024 - 4);
    Buffer.from("/nix/store").copy(big, big.length - 10);
    const closure = writeStore(root, { big: { "lib/big.so": { exec: big } } });
    const stageDir = join(base, "stage");
    const report = await stage(input(root, host, closure, { stageDir }));
    const out = readFileSync(join(stageDir, "usr/store", `${hashFor("big")}-big`, "lib/big.so"));
    expect(out.length).toBe(big.length);
    expect(out.subarray(1024 * 1024 - 4, 1024 * 1024 + 8).toString()).toBe("/usr/store/q");
    expect(out.subarray(-10).toString()).toBe("/usr/store");
    expect(out.includes("/nix/store")).toBe(false);
    expect(report.rewritten).toBe(1);
  });

  it("keeps non-UTF-8 file names exactly", async () => {
    const base = dirs.make("names");
    const root = join(base, "store");
    const host = writeHost(join(base, "host"), { dirs: ["usr"] });
    const closure = writeStore(root, { odd: { "share/plain": "x" } });
    const dir = Buffer.from(join(root, storePath("odd"), "share"));
    const name = Buffer.from([0x66, 0xe9, 0x65]); // "fée" in Latin-1, invalid UTF-8
    writeFileSync(Buffer.concat([dir, Buffer.from("/"), name]), "/nix/store/abc");
    const stageDir = join(base, "stage");
    await stage(input(root, host, closure, { stageDir }));
    const staged = Buffer.concat([Buffer.from(join(stageDir, "usr/store", `${hashFor("odd")}-odd`, "share")), Buffer.from("/"), name]);
    expect(readFileSync(staged).toString()).toBe("/usr/store/abc");
  });

  it("produces the same tree for the same inputs (copy and link reuse alike)", async () => {
    const base = dirs.make("det");
    const root = join(base, "store");
    const host = writeHost(join(base, "host"), { dirs: ["usr"] });
    const closure = writeStore(root, {
      a: { "bin/a": { exec: "#!/nix/store/x/bin/sh\n" }, "share/doc": "plain", "share/l": { link: "doc" } },
      b: { "lib/b": "b" },
    });
    const trees: string[] = [];
    for (const reuse of ["copy", "link"] as const) {
      const stageDir = join(base, `stage-${reuse}`);
      await stage(input(root, host, [...closure].reverse(), { stageDir }), { reuse });
      trees.push(describeTree(stageDir));
    }
    expect(trees[0]).toBe(trees[1]);
    expect(trees[0]).toContain("bin/a 555 #!/usr/store/x/bin/sh");
  });

  it("refuses a closure path that is missing from the store, and a non-store path", async () => {
    const base = dirs.make("missing");
    const root = join(base, "store");
    mkdirSync(join(root, "nix/store"), { recursive: true });
    const host = writeHost(join(base, "host"), { dirs: ["usr"] });
    await expect(stage(input(root, host, [{ path: storePath("gone"), narSize: 0, references: [] }], { stageDir: join(base, "s1") })))
      .rejects.toMatchObject({ code: "unsafe-image", message: expect.stringContaining("missing") });
    await expect(stage(input(root, host, [{ path: "/nix/store/not-a-hash", narSize: 0, references: [] }], { stageDir: join(base, "s2") })))
      .rejects.toMatchObject({ code: "unsafe-image" });
  });

  it("fixes modes whatever the umask", async () => {
    const base = dirs.make("umask");
    const root = join(base, "store");
    const host = writeHost(join(base, "host"), { dirs: ["usr"] });
    const closure = writeStore(root, { a: { "bin/x": { exec: "#!/nix/store/q/bin/sh\n" }, "bin/y": { exec: "plain" }, "share/z": { mode: 0o600, data: "z" } } });
    const stageDir = join(base, "stage");
    const old = process.umask(0o077);
    try {
      await stage(input(root, host, closure, { stageDir }));
    } finally {
      process.umask(old);
    }
    const a = join(stageDir, "usr/store", `${hashFor("a")}-a`);
    expect(statSync(join(a, "bin/x")).mode & 0o7777).toBe(0o555);
    expect(statSync(join(a, "bin/y")).mode & 0o7777).toBe(0o555);
    expect(statSync(join(a, "share/z")).mode & 0o7777).toBe(0o444);
    expect(statSync(join(a, "share")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(stageDir, "usr/lib/extension-release.d")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(stageDir, "usr/lib/extension-release.d/extension-release.test")).mode & 0o7777).toBe(0o644);
  });

  it("refuses special files instead of skipping them", async () => {
    const base = dirs.make("fifo");
    const root = join(base, "store");
    const host = writeHost(join(base, "host"), { dirs: ["usr"] });
    const closure = writeStore(root, { a: { "share/before": "x", "share/zafter": "y" } });
    execFileSync("mkfifo", [join(root, storePath("a"), "share/pipe")]);
    await expect(stage(input(root, host, closure, { stageDir: join(base, "stage") })))
      .rejects.toMatchObject({ code: "unsafe-image", message: expect.stringContaining("fifo") });
  });

  it("refuses a stage directory that is not empty", async () => {
    const base = dirs.make("dirty");
    const root = join(base, "store");
    const host = writeHost(join(base, "host"), { dirs: ["usr"] });
    const closure = writeStore(root, { a: { f: "x" } });
    const stageDir = join(base, "stage");
    mkdirSync(join(stageDir, "etc"), { recursive: true });
    await expect(stage(input(root, host, closure, { stageDir }))).rejects.toMatchObject({ code: "unsafe-image" });
  });
});

/** Path, mode and (short) content or link target of every entry, sorted. */
function describeTree(root: string): string {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(full);
      if (st.isDirectory()) {
        out.push(`${r}/ ${(st.mode & 0o7777).toString(8)}`);
        walk(full, r);
      } else if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(full)}`);
      else out.push(`${r} ${(st.mode & 0o7777).toString(8)} ${readFileSync(full, "utf8").trim()}`);
    }
  };
  walk(root, "");
  return out.map((l) => l.replace(/^usr\/store\/[a-z0-9]{32}-/, "")).join("\n");
}
