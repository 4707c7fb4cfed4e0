import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, buildFixture as build, extEnv, relocated, EXT, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 15: what relocation does to real files. The `archives` fixture's compressed files and archives
// are made by the real tools and name their own store path inside; `ext add` stages and packs them,
// and each is read back from the merged /usr (with /nix hidden), decompressed by the real tool and
// compared with the original's content relocated. `pycache` is a module byte-compiled against the
// store's mtime of 1, imported by the host's python3 from the read-only /usr.

let ns: Namespace;
let work: string;
const out: Record<string, string> = {};

/** Runs a shell line in the namespace with /nix hidden; its stdout as bytes (through base64: the
 *  namespace helper reads text). */
function inImage(line: string): Buffer {
  const r = ns.run(["bash", "-c", `set -o pipefail; (${line}) | base64 -w0`], { hideNix: true });
  if (r.status !== 0) throw new Error(`${line}: exit ${r.status}\n${r.stderr}`);
  return Buffer.from(r.stdout, "base64");
}

/** The same line on the host (the store as Nix made it), bytes. */
function onHost(line: string): Buffer {
  return execFileSync("sh", ["-c", line], { maxBuffer: 64 * 1024 * 1024 });
}

const storeText = (b: Buffer) => Buffer.from(b.toString("latin1").replaceAll("/nix/store/", "/usr/store/"), "latin1");

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "ext-reloc-"));
  out.archives = build("archives");
  out.pycache = build("pycache");
  ns = openNamespace();
  const r = ns.ext(["add", "archives", "pycache"]);
  if (r.status !== 0) throw new Error(`ext add failed (${r.status}):\n${r.stderr}`);
  out.addStderr = r.stderr;
}, 600_000);

afterAll(() => {
  ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("compressed files and archives", () => {
  // [file, command that prints its content]: the real tools, reading from stdin.
  const streams = [
    ["long.txt.gz", "gzip -dc"], ["note.txt.gz", "gzip -dc"], ["long.txt.xz", "xz -dc"], ["blob.xz", "xz -dc"],
    ["blob.zst", "zstd -dc"], ["long.txt.bz2", "bzip2 -dc"],
  ] as const;

  it("the fixture exercises literal store bytes inside checksummed streams", () => {
    // Where the byte rewrite used to corrupt: the compressed file itself holds /nix/store.
    for (const f of ["blob.xz", "blob.zst", "mixed.zip"]) {
      expect(readFileSync(`${out.archives}/share/archives/${f}`).includes("/nix/store/"), f).toBe(true);
    }
  });

  it("no warning about them: every one was relocated", () => {
    expect(out.addStderr).not.toMatch(/share\/archives\/\S+: /);
  });

  it.each(streams)("%s decompresses from /usr/store to the original's content, relocated", (file, cmd) => {
    const src = `${out.archives}/share/archives/${file}`;
    const original = onHost(`${cmd} < '${src}'`);
    expect(original.includes("/nix/store/")).toBe(true);
    const inside = inImage(`${cmd} < '${relocated(src)}'`);
    expect(inside).toEqual(storeText(original));
    expect(inside.includes("/nix/store/")).toBe(false);
  });

  it("keeps the xz check type and bzip2's block size", () => {
    const dir = `${relocated(out.archives!)}/share/archives`;
    expect(inImage(`xz --robot --list '${dir}/long.txt.xz'`).toString()).toMatch(/\tCRC32\t/);
    expect(inImage(`head -c 4 '${dir}/long.txt.bz2'`).toString()).toBe("BZh9");
  });

  it("zip: stored and deflated entries relocated, every CRC-32 right (unzip -t)", () => {
    const zip = `${relocated(out.archives!)}/share/archives/mixed.zip`;
    inImage(`unzip -tq '${zip}'`);
    for (const entry of ["stored.txt", "deflated.txt"]) {
      const original = onHost(`unzip -p '${out.archives}/share/archives/mixed.zip' ${entry}`);
      expect(inImage(`unzip -p '${zip}' ${entry}`)).toEqual(storeText(original));
    }
  });

  it("jar: the JDK's jar extracts it (CRC-checked) to the relocated content", () => {
    const jar = `${relocated(out.archives!)}/share/archives/app.jar`;
    const x = join(work, "jar");
    const line = `mkdir -p '${x}' && cd '${x}' && jar xf '${jar}' && cat conf/app.properties`;
    expect(inImage(line).toString()).toBe(`home=${relocated(out.archives!)}\n`);
    inImage(`unzip -tq '${jar}'`);
  });
});

describe("the store's times", () => {
  it("files, directories and links in the image have mtime 1, as in /nix/store", () => {
    const base = relocated(out.pycache!);
    const times = inImage(`stat -c '%Y %n' '${base}' '${base}/lib/pycache/extpyc.py' '${base}/lib/pycache/__pycache__' /usr/store`).toString();
    for (const line of times.trim().split("\n")) expect(line).toMatch(/^1 /);
  });

  it("a .pyc compiled in the store is valid in the image: imported, not recompiled (read-only /usr)", () => {
    const dir = `${relocated(out.pycache!)}/lib/pycache`;
    const r = ns.run(["/usr/bin/python3", "-v", "-c", `import sys; sys.path.insert(0, '${dir}'); import extpyc; print(extpyc.WHERE)`], { hideNix: true });
    expect(r.status).toBe(0);
    // The value comes from the byte-code, whose constants were relocated like any other bytes.
    expect(r.stdout.trim()).toBe(relocated(out.pycache!));
    expect(r.stderr).toContain(`# ${dir}/__pycache__/extpyc.cpython-`);
    expect(r.stderr).toMatch(/extpyc\.cpython-\d+\.pyc matches .*extpyc\.py/);
    expect(r.stderr).not.toMatch(/bytecode is stale|could not create/);
  });
});

describe("a command that finds its library from the path it was started by (CPython's venv)", () => {
  // Debian's CPython as a store path; the host's python3 and standard library hidden: the image's
  // wrapper shadows /usr/bin/python3 (--allow-shadow), an empty tmpfs covers /usr/lib/python3.X.
  let version: string;
  let python: string;
  const hidden = (line: string) => {
    const r = ns.run(["unshare", "-m", "sh", "-c", `mount -t tmpfs tmpfs /nix && mount -t tmpfs tmpfs /usr/lib/${version} && ${line}`]);
    return r;
  };

  beforeAll(() => {
    version = execFileSync("readlink", ["/usr/bin/python3"], { encoding: "utf8" }).trim();
    python = build("python3");
    const r = ns.ext(["add", "--allow-shadow", "python3"]);
    if (r.status !== 0) throw new Error(`ext add python3 failed (${r.status}):\n${r.stderr}`);
  }, 600_000);

  it("/usr/bin/python3 is a wrapper that runs the store's python by its /usr/store path", () => {
    const text = ns.read("/usr/bin/python3");
    expect(text).toBe(`#!/bin/sh\n# ext: started by its own path, to find its library beside it (docs/design.md)\nexec '${relocated(python)}/bin/${version}' "$@"\n`);
    const r = hidden(`/usr/bin/python3 -c 'import sys, os; print(sys.executable); print(sys.prefix); print(os.__file__)'`);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual([`${relocated(python)}/bin/${version}`, relocated(python), `${relocated(python)}/lib/${version}/os.py`]);
  });

  it("python3 -m venv from /usr/bin makes a venv that uses the relocated standard library", () => {
    const venv = join(work, "venv");
    const r = hidden(`/usr/bin/python3 -m venv --without-pip '${venv}' && cat '${venv}/pyvenv.cfg' && '${venv}/bin/python' -c 'import sys, os, json; print(json.dumps([sys.prefix, sys.base_prefix, os.__file__]))'`);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`home = ${relocated(python)}/bin\n`);
    expect(JSON.parse(r.stdout.trim().split("\n").at(-1)!)).toEqual([venv, relocated(python), `${relocated(python)}/lib/${version}/os.py`]);
  });

  it("a second transaction takes the wrapper in /usr for ext's own, not a host file to shadow", () => {
    const r = ns.ext(["add", "greet"]);
    expect(r.stderr).not.toMatch(/shadow/);
    expect(r.status).toBe(0);
    expect(ns.read("/usr/bin/python3")).toContain(`exec '${relocated(python)}/bin/${version}'`);
  });
});

describe("reproducible", () => {
  it("two builds of the same packages give the same image bytes", () => {
    const sha = (n: string) => {
      const file = join(work, `${n}.raw`);
      execFileSync("node", [EXT, "build", "archives", "pycache", "--name", n, "-o", file], { env: extEnv(), stdio: "pipe" });
      return createHash("sha256").update(readFileSync(file)).digest("hex");
    };
    expect(sha("a")).toBe(sha("a"));
  });
});
