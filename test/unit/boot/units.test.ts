import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, readFile, readlink, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { layout, type Layout } from "../../../src/base/layout.js";
import { BOOT_SCRIPT_COMMAND, defaultExtCommand, installUnits, quoteExecArg, renderUnit, uninstallUnits, UNIT_NAMES } from "../../../src/boot/units.js";
import { setupBoot, unsetupBoot } from "../../../src/boot/setup.js";
import { parseCmdline } from "../../../src/boot/cmdline.js";
import { REPO } from "../../helpers/namespace.js";

let root: string;
let l: Layout;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "ext-units-"));
  l = layout(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("unit templates", () => {
  it("the selector runs before systemd-sysext.service, early, needing the state directory; bless after boot-complete.target", async () => {
    const select = await renderUnit("ext-boot-select.service", "/usr/bin/node /opt/ext/bin/ext.js");
    expect(select).toMatch(/^DefaultDependencies=no$/m);
    expect(select).toMatch(/^Before=systemd-sysext\.service/m);
    expect(select).toMatch(/^After=local-fs\.target$/m);
    expect(select).toMatch(/^RequiresMountsFor=\/var\/lib\/ext /m);
    expect(select).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/ext\/bin\/ext\.js boot select$/m);
    expect(select).toMatch(/^WantedBy=sysinit\.target$/m);
    const bless = await renderUnit("ext-boot-bless.service", "/usr/bin/ext");
    expect(bless).toMatch(/^Requires=boot-complete\.target$/m);
    expect(bless).toMatch(/^After=boot-complete\.target multi-user\.target$/m);
    expect(bless).toMatch(/^ExecStart=\/usr\/bin\/ext boot bless$/m);
    expect(bless).not.toContain("@EXT@");
  });

  it("pass systemd-analyze verify with this node and this ext filled in", async () => {
    await installUnits(l, defaultExtCommand());
    const files = UNIT_NAMES.map((u) => join(root, "etc/systemd/system", u));
    // Throws (non-zero exit) on any problem, printing systemd's reasons.
    execFileSync("systemd-analyze", ["verify", ...files], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  });

  it("systemd-analyze verify catches a command that does not exist", async () => {
    await installUnits(l, "/nonexistent/ext");
    expect(() => execFileSync("systemd-analyze", ["verify", join(root, "etc/systemd/system/ext-boot-select.service")], { stdio: ["ignore", "pipe", "pipe"] })).toThrow();
  });

  it("quotes paths for ExecStart=", () => {
    expect(quoteExecArg("/usr/bin/node")).toBe("/usr/bin/node");
    expect(quoteExecArg("/opt/my ext/bin/ext.js")).toBe('"/opt/my ext/bin/ext.js"');
    expect(quoteExecArg("/opt/100%/x")).toBe("/opt/100%%/x");
    expect(quoteExecArg("/opt/$HOME")).toBe('"/opt/$$HOME"');
  });
});

describe("ext setup under --root", () => {
  it("installs and enables both units, idempotently, and removes them again", async () => {
    const first = await setupBoot(l, { extensionName: "ext", extCommand: "/usr/bin/node /opt/ext/bin/ext.js" });
    expect(first.units.map((u) => [u.unit, u.written, u.linked])).toEqual([
      ["ext-boot-select.service", true, true],
      ["ext-boot-bless.service", true, true],
    ]);
    expect(first.bootState).toBe("created");
    expect(first.adopted).toBeNull();
    expect(await readlink(join(root, "etc/systemd/system/sysinit.target.wants/ext-boot-select.service"))).toBe("/etc/systemd/system/ext-boot-select.service");
    expect(await readlink(join(root, "etc/systemd/system/multi-user.target.wants/ext-boot-bless.service"))).toBe("/etc/systemd/system/ext-boot-bless.service");
    const mtime = (await stat(join(root, "etc/systemd/system/ext-boot-select.service"))).mtimeMs;

    const second = await setupBoot(l, { extensionName: "ext", extCommand: "/usr/bin/node /opt/ext/bin/ext.js" });
    expect(second.units.every((u) => !u.written && !u.linked)).toBe(true);
    expect(second.bootState).toBe("unchanged");
    expect((await stat(join(root, "etc/systemd/system/ext-boot-select.service"))).mtimeMs).toBe(mtime);

    const moved = await setupBoot(l, { extensionName: "ext", extCommand: "/usr/local/bin/ext" });
    expect(moved.units.every((u) => u.written && !u.linked)).toBe(true);
    expect(await readFile(join(root, "etc/systemd/system/ext-boot-bless.service"), "utf8")).toMatch(/^ExecStart=\/usr\/local\/bin\/ext boot bless$/m);

    const removed = await unsetupBoot(l);
    expect(removed).toHaveLength(4);
    expect(await readdir(join(root, "etc/systemd/system"))).toEqual([]);
    expect(await uninstallUnits(l)).toEqual([]);
  });

  it("--from-image: the shell selector beside the units, both units run it; --remove takes it out too", async () => {
    const r = await setupBoot(l, { extensionName: "ext", extCommand: BOOT_SCRIPT_COMMAND, fromImage: true });
    expect(r.bootScript).toEqual({ path: join(root, "etc/ext/boot.sh"), written: true });
    expect(r.warnings).toEqual([]);
    expect(await readFile(join(root, "etc/ext/boot.sh"), "utf8")).toBe(await readFile(join(REPO, "templates/ext-boot.sh"), "utf8"));
    expect((await stat(join(root, "etc/ext/boot.sh"))).mode & 0o777).toBe(0o755);
    expect(await readFile(join(root, "etc/systemd/system/ext-boot-select.service"), "utf8")).toMatch(/^ExecStart=\/bin\/sh \/etc\/ext\/boot\.sh boot select$/m);
    expect(await readFile(join(root, "etc/systemd/system/ext-boot-bless.service"), "utf8")).toMatch(/^ExecStart=\/bin\/sh \/etc\/ext\/boot\.sh boot bless$/m);
    expect((await setupBoot(l, { extensionName: "ext", extCommand: BOOT_SCRIPT_COMMAND, fromImage: true })).bootScript?.written).toBe(false);
    // Both rendered units pass systemd's own check.
    execFileSync("systemd-analyze", ["verify", ...UNIT_NAMES.map((u) => join(root, "etc/systemd/system", u))], { stdio: ["ignore", "pipe", "pipe"] });
    const removed = await unsetupBoot(l);
    expect(removed).toContain(join(root, "etc/ext/boot.sh"));
    await expect(stat(join(root, "etc/ext"))).rejects.toThrow();
  });

  it("the shell selector's fallback is the newest good generation's image that is still there", async () => {
    const { writeBootState, emptyBootState, fallbackFile } = await import("../../../src/boot/state.js");
    const { mkdir, writeFile } = await import("node:fs/promises");
    const a = "a".repeat(64), b = "b".repeat(64);
    await mkdir(l.imagesDir, { recursive: true });
    await writeFile(join(l.imagesDir, `${a}.raw`), "");
    const state = { ...emptyBootState("ext"), good: [{ generation: 1, image: a, blessedAt: "t" }, { generation: 2, image: b, blessedAt: "t" }] };
    await writeBootState(l, state);
    expect(await readFile(fallbackFile(l), "utf8")).toBe(`${a}\n`); // b's image was gc'd
    await writeFile(join(l.imagesDir, `${b}.raw`), "");
    await writeBootState(l, state);
    expect(await readFile(fallbackFile(l), "utf8")).toBe(`${b}\n`);
    await writeBootState(l, { ...state, good: [] });
    await expect(stat(fallbackFile(l))).rejects.toThrow();
  });

  it("warns when the command is missing under the root", async () => {
    const r = await setupBoot(l, { extensionName: "ext", extCommand: "/usr/bin/definitely-not-here boot" });
    expect(r.warnings.join("\n")).toMatch(/does not exist under/);
  });

  it("recreates a damaged boot state and says so", async () => {
    await setupBoot(l, { extensionName: "ext", extCommand: "/bin/sh", tries: 4 });
    await (await import("node:fs/promises")).writeFile(l.bootStateFile, "garbage");
    const r = await setupBoot(l, { extensionName: "ext", extCommand: "/bin/sh" });
    expect(r.bootState).toBe("recreated");
    expect(r.tries).toBe(4); // kept in the backup file
    expect(r.warnings.join("\n")).toMatch(/set aside as boot.json.damaged/);
  });
});

describe("kernel command line", () => {
  it("reads ext.generation and ext.disable; the last occurrence wins; the rest is ignored", () => {
    expect(parseCmdline("BOOT_IMAGE=/vmlinuz root=/dev/vda ro quiet")).toEqual({ disable: false, invalid: [] });
    expect(parseCmdline("ext.generation=4")).toMatchObject({ generation: 4 });
    expect(parseCmdline("ext.generation=previous")).toMatchObject({ generation: "previous" });
    expect(parseCmdline("ext.generation=3 ext.generation=5")).toMatchObject({ generation: 5 });
    expect(parseCmdline("ext.disable")).toMatchObject({ disable: true });
    expect(parseCmdline("ext.disable=1")).toMatchObject({ disable: true });
    expect(parseCmdline("ext.disable ext.disable=0")).toMatchObject({ disable: false });
    expect(parseCmdline("ext.generation=0 ext.generation=-1 ext.generation=x ext.disable=maybe")).toEqual({
      disable: false,
      invalid: ["ext.generation=0", "ext.generation=-1", "ext.generation=x", "ext.disable=maybe"],
    });
    expect(parseCmdline('foo="a b ext.disable" ext.generation=2\n')).toEqual({ generation: 2, disable: false, invalid: [] });
    expect(parseCmdline("next.generation=3 ext.generations=2")).toEqual({ disable: false, invalid: [] });
  });
});
