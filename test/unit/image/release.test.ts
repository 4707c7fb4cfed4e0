import { afterEach, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnvFile, releaseContent, releaseMismatch } from "../../../src/image/release.js";
import { auditStage } from "../../../src/image/audit.js";
import { UnsafeImageError } from "../../../src/errors.js";
import { stage } from "../../../src/image/stage.js";
import { tempDirs, writeHost, writeStore } from "./helpers.js";

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

describe("extension-release", () => {
  it("says ID=_any and the architecture, nothing else", () => {
    expect(releaseContent("arm64")).toBe("ID=_any\nARCHITECTURE=arm64\n");
  });

  it("is written by stage with mode 0644 under the extension's name", async () => {
    const base = dirs.make("rel");
    const closure = writeStore(join(base, "store"), { a: { f: "x" } });
    const stageDir = join(base, "stage");
    const report = await stage({
      closure, packages: [], store: { root: join(base, "store") }, stageDir, extensionName: "ext",
      architecture: "arm64", hostRoot: writeHost(join(base, "host"), { dirs: ["usr/lib"] }),
    });
    const file = join(stageDir, report.releaseFile);
    expect(report.releaseFile).toBe("usr/lib/extension-release.d/extension-release.ext");
    expect(readFileSync(file, "utf8")).toBe("ID=_any\nARCHITECTURE=arm64\n");
    expect(statSync(file).mode & 0o7777).toBe(0o644);
  });

  it("parses os-release syntax", () => {
    expect(parseEnvFile('# c\nID=debian\nNAME="Debian GNU/Linux"\nX=\'q\'\n\nBAD\nESC="a\\"b"\n')).toEqual({
      ID: "debian", NAME: "Debian GNU/Linux", X: "q", ESC: 'a"b',
    });
  });

  it("matches systemd's rules for when an image is merged", () => {
    const debian = { ID: "debian", VERSION_ID: "12" };
    expect(releaseMismatch({ ID: "_any", ARCHITECTURE: "x86-64" }, debian, "x86-64")).toBeUndefined();
    expect(releaseMismatch({ ID: "_any", ARCHITECTURE: "arm64" }, debian, "x86-64")).toMatch(/ARCHITECTURE/);
    expect(releaseMismatch({ ARCHITECTURE: "x86-64" }, debian, "x86-64")).toMatch(/no ID/);
    expect(releaseMismatch({ ID: "fedora" }, debian, "x86-64")).toMatch(/ID=fedora/);
    expect(releaseMismatch({ ID: "debian" }, debian, "x86-64")).toMatch(/VERSION_ID/);
    expect(releaseMismatch({ ID: "debian", VERSION_ID: "12" }, debian, "x86-64")).toBeUndefined();
    expect(releaseMismatch({ ID: "arch" }, { ID: "arch" }, "x86-64")).toBeUndefined();
    expect(releaseMismatch({ ID: "x", SYSEXT_LEVEL: "2" }, { ID: "x", SYSEXT_LEVEL: "1", VERSION_ID: "9" }, "x86-64")).toMatch(/SYSEXT_LEVEL/);
    expect(releaseMismatch({ ID: "_any", SYSEXT_SCOPE: "initrd" }, debian, "x86-64")).toMatch(/SYSEXT_SCOPE/);
    expect(releaseMismatch({ ID: "_any", SYSEXT_SCOPE: "initrd system" }, debian, "x86-64")).toBeUndefined();
  });
});

describe("audit of the staged tree", () => {
  function tree(files: Record<string, string>): string {
    const root = dirs.make("audit");
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(join(root, rel, ".."), { recursive: true });
      writeFileSync(join(root, rel), content);
    }
    return root;
  }
  const ours = { "usr/lib/extension-release.d/extension-release.ext": "ID=_any\n" };

  it("accepts usr/ with our release file", async () => {
    await expect(auditStage(tree({ ...ours, "usr/store/x": "" }), "ext")).resolves.toBeUndefined();
  });

  it.each([
    [{ ...ours, "etc/passwd": "" }, /\/etc: an extension may only hold usr/],
    [{ ...ours, "opt/x": "" }, /\/opt/],
    [{ ...ours, "usr/lib/os-release": "ID=evil" }, /os-release/],
    [{ ...ours, "usr/lib/extension-release.d/extension-release.other": "" }, /only extension-release.ext/],
    [{ "usr/bin/x": "" }, /extension-release.ext is missing/],
  ])("refuses %j", async (files, why) => {
    const err = await auditStage(tree(files), "ext").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeImageError);
    expect(`${(err as UnsafeImageError).message}\n${(err as UnsafeImageError).details}`).toMatch(why);
  });
});
