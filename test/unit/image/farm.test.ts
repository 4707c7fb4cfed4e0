import { afterEach, describe, expect, it } from "vitest";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { wrapperScript, wrapperTarget } from "../../../src/image/wrapper.js";
import { join } from "node:path";
import { stage } from "../../../src/image/stage.js";
import { CollisionError, UnsafeImageError } from "../../../src/errors.js";
import type { FarmPackage, StageInput } from "../../../src/image/types.js";
import type { ClosureEntry } from "../../../src/nix/types.js";
import { hashFor, storePath, tempDirs, writeHost, writeStore } from "./helpers.js";

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const DEBIAN_HOST = { dirs: ["usr/bin", "usr/sbin", "usr/lib", "usr/share/man/man1"], links: { "usr/lib64": "lib" } };
const MERGED_HOST = { dirs: ["usr/bin", "usr/lib"], links: { "usr/sbin": "bin", bin: "usr/bin", "usr/lib64": "lib" } };

function setup(host: Parameters<typeof writeHost>[1], paths: Parameters<typeof writeStore>[1]) {
  const base = dirs.make("farm");
  const root = join(base, "store");
  const closure = writeStore(root, paths);
  const hostRoot = writeHost(join(base, "host"), host);
  const stageDir = join(base, "stage");
  const run = (packages: FarmPackage[], extra: Partial<StageInput> = {}, cl: ClosureEntry[] = closure) =>
    stage({ closure: cl, packages, store: { root }, stageDir, extensionName: "tools", architecture: "x86-64", hostRoot, ...extra });
  return { base, root, hostRoot, stageDir, closure, run };
}

const pkg = (name: string, priority?: number, allowShadow?: boolean): FarmPackage => ({
  name,
  outPaths: [storePath(name)],
  ...(priority !== undefined ? { priority } : {}),
  ...(allowShadow ? { allowShadow } : {}),
});

describe("symlink farm", () => {
  it("links commands, man pages, completions, desktop files and icons to /usr/store", async () => {
    const t = setup(DEBIAN_HOST, {
      tool: {
        "bin/tool": { exec: "#!/bin/sh\n" },
        "bin/helpers/inner": { exec: "x" },
        "sbin/toold": { exec: "#!/bin/sh\n" },
        "share/man/man1/tool.1.gz": "man",
        "share/man/de/man1/tool.1.gz": "man de",
        "share/bash-completion/completions/tool": "complete",
        "share/zsh/site-functions/_tool": "#compdef tool",
        "share/fish/vendor_completions.d/tool.fish": "complete -c tool",
        "share/applications/tool.desktop": "[Desktop Entry]",
        "share/icons/hicolor/48x48/apps/tool.png": "png",
        "share/doc/tool/README": "not linked",
      },
    });
    const report = await t.run([pkg("tool")]);
    const base = `/usr/store/${hashFor("tool")}-tool`;
    expect(report.links).toEqual([
      "usr/bin/tool",
      "usr/sbin/toold",
      "usr/share/applications/tool.desktop",
      "usr/share/bash-completion/completions/tool",
      "usr/share/fish/vendor_completions.d/tool.fish",
      "usr/share/icons/hicolor/48x48/apps/tool.png",
      "usr/share/man/de/man1/tool.1.gz",
      "usr/share/man/man1/tool.1.gz",
      "usr/share/zsh/site-functions/_tool",
    ]);
    expect(readlinkSync(join(t.stageDir, "usr/bin/tool"))).toBe(`${base}/bin/tool`);
    expect(readlinkSync(join(t.stageDir, "usr/share/man/de/man1/tool.1.gz"))).toBe(`${base}/share/man/de/man1/tool.1.gz`);
    // Directories are real, so they merge with the host's.
    expect(lstatSync(join(t.stageDir, "usr/share/man/man1")).isDirectory()).toBe(true);
    expect(lstatSync(join(t.stageDir, "usr/share/man/man1")).mode & 0o7777).toBe(0o755);
    expect(report.shadowed).toEqual([]);
    expect(readdirSync(t.stageDir)).toEqual(["usr"]);
  });

  it("puts sbin/ into usr/bin on a merged-/usr host and never makes a directory over a host symlink", async () => {
    const t = setup(MERGED_HOST, { tool: { "bin/tool": { exec: "a" }, "sbin/toold": { exec: "b" } } });
    const report = await t.run([pkg("tool")]);
    expect(report.links).toEqual(["usr/bin/tool", "usr/bin/toold"]);
    expect(existsSync(join(t.stageDir, "usr/sbin"))).toBe(false);
    expect(readlinkSync(join(t.stageDir, "usr/bin/toold"))).toBe(`/usr/store/${hashFor("tool")}-tool/sbin/toold`);
  });

  it("refuses a farm directory where the host has a symlink out of /usr or a file", async () => {
    const t1 = setup({ dirs: ["usr/bin"], links: { "usr/share/man": "/var/man" } }, { tool: { "share/man/man1/t.1": "m" } });
    const err = await t1.run([pkg("tool")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeImageError);
    expect((err as Error).message).toMatch(/usr\/share\/man.*outside \/usr/);

    const t2 = setup({ dirs: ["usr/bin"], files: ["usr/share/zsh"] }, { tool: { "share/zsh/site-functions/_t": "z" } });
    await expect(t2.run([pkg("tool")])).rejects.toThrow(/usr\/share\/zsh.*file/);
  });

  it("refuses usr/store or usr/lib where the host has a symlink", async () => {
    const t = setup({ dirs: ["usr/bin", "usr/somewhere"], links: { "usr/store": "somewhere" } }, { tool: { "bin/tool": "x" } });
    await expect(t.run([pkg("tool")])).rejects.toThrow(/usr\/store.*symlink/);
    const t2 = setup({ dirs: ["usr/lib.real"], links: { "usr/lib": "lib.real" } }, { tool: { "bin/tool": "x" } });
    await expect(t2.run([pkg("tool")])).rejects.toThrow(/usr\/lib.*symlink/);
  });

  it("fails on two packages providing the same path, naming the path and both packages", async () => {
    const t = setup(DEBIAN_HOST, { cowsay: { "bin/cowsay": "a" }, cowthink: { "bin/cowsay": "b" } });
    const err = await t.run([pkg("cowsay"), pkg("cowthink")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CollisionError);
    expect((err as Error).message).toContain("usr/bin/cowsay");
    expect((err as Error).message).toContain("'cowsay'");
    expect((err as Error).message).toContain("'cowthink'");
  });

  it("lets the higher priority win a collision, whatever the order", async () => {
    const t = setup(DEBIAN_HOST, { cowsay: { "bin/cowsay": "a", "bin/only-a": "a" }, cowthink: { "bin/cowsay": "b" } });
    const report = await t.run([pkg("cowsay"), pkg("cowthink", 5)]);
    expect(readlinkSync(join(t.stageDir, "usr/bin/cowsay"))).toBe(`/usr/store/${hashFor("cowthink")}-cowthink/bin/cowsay`);
    expect(report.links).toEqual(["usr/bin/cowsay", "usr/bin/only-a"]);
  });

  it("does not count the same store path wanted by two packages as a collision", async () => {
    const t = setup(DEBIAN_HOST, { shared: { "bin/shared": "s" } });
    const report = await t.run([
      { name: "one", outPaths: [storePath("shared")] },
      { name: "two", outPaths: [storePath("shared")] },
    ]);
    expect(report.links).toEqual(["usr/bin/shared"]);
  });

  it("refuses to shadow a host file unless the package allows it", async () => {
    const t = setup({ ...DEBIAN_HOST, files: ["usr/bin/ls", "usr/share/man/man1/ls.1.gz"] }, {
      coreutils: { "bin/ls": { exec: "ls" }, "bin/new": { exec: "n" }, "share/man/man1/ls.1.gz": "m" },
    });
    const err = await t.run([pkg("coreutils")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeImageError);
    expect((err as Error).message).toMatch(/shadow 2 files/);
    expect((err as UnsafeImageError).details).toContain("/usr/bin/ls (from 'coreutils')");
    expect((err as UnsafeImageError).details).toContain("/usr/share/man/man1/ls.1.gz (from 'coreutils')");

    const t2 = setup({ ...DEBIAN_HOST, files: ["usr/bin/ls"] }, { coreutils: { "bin/ls": { exec: "ls" } } });
    const report = await t2.run([pkg("coreutils", undefined, true)]);
    expect(report.shadowed).toEqual(["usr/bin/ls"]);
    expect(readlinkSync(join(t2.stageDir, "usr/bin/ls"))).toBe(`/usr/store/${hashFor("coreutils")}-coreutils/bin/ls`);
  });

  it("counts a dangling host symlink as a file the image would shadow", async () => {
    const t = setup({ dirs: ["usr/bin"], links: { "usr/bin/tool": "/nonexistent" } }, { tool: { "bin/tool": "x" } });
    await expect(t.run([pkg("tool")])).rejects.toThrow(/shadow the host's \/usr\/bin\/tool/);
  });

  it("follows a package's bin/ when it is a symlink into another store path", async () => {
    const t = setup(DEBIAN_HOST, {
      real: { "bin/real-tool": { exec: "r" } },
      wrapper: { bin: { link: `${storePath("real")}/bin` }, "share/man": { link: `${storePath("real")}/share/man` } },
    });
    const report = await t.run([pkg("wrapper")]);
    expect(report.links).toEqual(["usr/bin/real-tool"]);
    expect(readlinkSync(join(t.stageDir, "usr/bin/real-tool"))).toBe(`/usr/store/${hashFor("wrapper")}-wrapper/bin/real-tool`);
  });

  describe("links that leave the closure", () => {
    const escapes: [string, string][] = [
      ["an absolute host path", "/etc/shadow"],
      ["a world-writable host directory", "/tmp/tool"],
      ["../ out of the store", "../../../../etc/shadow"],
      ["a store path the closure does not hold", `${storePath("elsewhere")}/bin/tool`],
    ];
    for (const [what, target] of escapes) {
      it(`refuses ${what} unless the package allows it`, async () => {
        const t = setup(DEBIAN_HOST, { tool: { "bin/tool": { link: target }, "bin/ok": { exec: "x" } } });
        const e = await t.run([pkg("tool")]).then(() => undefined, (x: unknown) => x);
        expect(e).toBeInstanceOf(UnsafeImageError);
        expect((e as Error).message).toMatch(/^the image would link \/usr\/bin\/tool → \/\S+ \(from 'tool'\), outside the package's closure$/);
        // Allowed: linked as any other entry.
        const t2 = setup(DEBIAN_HOST, { tool: { "bin/tool": { link: target }, "bin/ok": { exec: "x" } } });
        expect((await t2.run([pkg("tool", undefined, true)])).links).toEqual(["usr/bin/ok", "usr/bin/tool"]);
      });
    }

    it("a link to another file of the closure, or dangling inside its own store path, is not an escape", async () => {
      const t = setup(DEBIAN_HOST, {
        real: { "bin/real": { exec: "r" } },
        tool: { "bin/alias": { link: `${storePath("real")}/bin/real` }, "bin/rel": { link: "../libexec/x" }, "libexec/x": { exec: "x" }, "bin/broken": { link: "../nothing" } },
      });
      expect((await t.run([pkg("tool")])).links).toEqual(["usr/bin/alias", "usr/bin/broken", "usr/bin/rel"]);
    });
  });

  it("refuses a package output that is not in the closure", async () => {
    const t = setup(DEBIAN_HOST, { tool: { "bin/tool": "x" } });
    await expect(t.run([{ name: "ghost", outPaths: [storePath("ghost")] }])).rejects.toThrow(/not in the closure/);
  });

  it("writes a wrapper, not a link, for a python whose standard library is beside it (venv home)", async () => {
    const py = storePath("python");
    const t = setup(DEBIAN_HOST, {
      python: { "bin/python3.12": { exec: "ELF" }, "bin/python3": { link: "python3.12" }, "bin/pydoc3": { exec: "#!x" }, "lib/python3.12/os.py": "" },
      // A buildEnv-like package linking the interpreter, and a python without its library beside it.
      env: { "bin/python": { link: `${py}/bin/python3` } },
      bare: { "bin/python2": { exec: "ELF" } },
    });
    const report = await t.run([pkg("python"), pkg("env"), pkg("bare")]);
    const exec = `/usr/store/${hashFor("python")}-python/bin/python3.12`;
    expect(report.links).toEqual(["usr/bin/pydoc3", "usr/bin/python", "usr/bin/python2", "usr/bin/python3", "usr/bin/python3.12"]);
    for (const w of ["python", "python3", "python3.12"]) {
      const file = join(t.stageDir, "usr/bin", w);
      expect(lstatSync(file).isFile()).toBe(true);
      expect(lstatSync(file).mode & 0o7777).toBe(0o555);
      expect(readFileSync(file, "utf8")).toBe(wrapperScript(exec));
      expect(wrapperTarget(readFileSync(file, "utf8"))).toBe(exec);
    }
    expect(readlinkSync(join(t.stageDir, "usr/bin/pydoc3"))).toBe(`/usr/store/${hashFor("python")}-python/bin/pydoc3`);
    expect(readlinkSync(join(t.stageDir, "usr/bin/python2"))).toBe(`/usr/store/${hashFor("bare")}-bare/bin/python2`);
  });

  it("takes a wrapper the host's /usr shows for ext's own; any other file there is the host's", async () => {
    const exec = `/usr/store/${hashFor("python")}-python/bin/python3.12`;
    const t = setup(DEBIAN_HOST, { python: { "bin/python3.12": { exec: "ELF" }, "lib/python3.12/os.py": "" } });
    writeFileSync(join(t.hostRoot, "usr/bin/python3.12"), wrapperScript(exec));
    await expect(t.run([pkg("python")])).resolves.toMatchObject({ shadowed: [] });
    writeFileSync(join(t.hostRoot, "usr/bin/python3.12"), wrapperScript(exec) + "rm -rf /\n");
    rmSync(t.stageDir, { recursive: true, force: true });
    await expect(t.run([pkg("python")])).rejects.toThrow(/would shadow the host's \/usr\/bin\/python3.12/);
  });
});

