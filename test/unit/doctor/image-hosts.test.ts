import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { layout } from "../../../src/base/layout.js";
import { realHost } from "../../../src/doctor/index.js";
import type { DoctorInput } from "../../../src/doctor/types.js";
import { checkOpt, checkOverlayDepth, checkTransientEtc, parseMountinfo, stackDepth } from "../../../src/doctor/image-hosts.js";

// The checks for image-based hosts, on constructed host views: a --root tree holding what such a
// host has (ostree's prepare-root.conf, /run/ostree-booted, a mount table in proc/self/mountinfo,
// /opt as a symlink), read through the real host adapter. The immutable / is checked on a real
// ext4 with chattr +i (test/integration/doctor-hosts.test.ts).

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "ext-doctor-hosts-"));
  mkdirSync(join(root, "usr"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function put(path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

const view = (): DoctorInput => ({
  layout: layout(root),
  extensionName: "ext",
  compression: "lz4",
  nix: { store: { root: join(root, "var/lib/ext/nix") }, system: "x86_64-linux" },
  templatesDir: "/templates",
  host: realHost,
});

// Fedora Silverblue 42 as its mount table shows it: / is composefs (an overlay whose lower layers
// are an EROFS image and the ostree object store), /sysroot the real disk.
const COMPOSEFS = [
  "24 1 0:22 / / ro,relatime shared:1 - overlay composefs ro,lowerdir=/run/ostree/.private/cfsroot-lower::/sysroot/ostree/repo/objects,redirect_dir=on,metacopy=on",
  "25 24 7:0 / /run/ostree/.private/cfsroot-lower ro,relatime - erofs /dev/loop0 ro",
  "26 24 8:3 / /sysroot rw,relatime shared:4 - xfs /dev/sda3 rw,attr2,inode64",
  "27 24 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755",
].join("\n");
// `bootc usr-overlay` (rpm-ostree usroverlay): a writable overlay over that /usr, until the next boot.
const USR_OVERLAY = "40 24 0:40 / /usr rw,relatime shared:20 - overlay overlay rw,lowerdir=/usr,upperdir=/var/tmp/ostree-unlock-ovl.Q1/upper,workdir=/var/tmp/ostree-unlock-ovl.Q1/work";
// systemd-sysext's own merge: left out, a refresh stacks on what is below it again.
const SYSEXT = "41 40 0:41 / /usr ro,nodev,relatime shared:21 - overlay sysext ro,lowerdir=/run/systemd/sysext/meta/usr:/run/systemd/sysext/extensions/ext/usr:/usr";

describe("overlay stacking depth (composefs, bootc)", () => {
  it("reads mountinfo, escapes included, and counts stacked levels through lower layers", () => {
    const mounts = parseMountinfo(`${COMPOSEFS}\n30 24 0:50 / /mnt/with\\040space rw - ext4 /dev/sdb1 rw`);
    expect(mounts.at(-1)).toMatchObject({ point: "/mnt/with space", fstype: "ext4" });
    expect(stackDepth(mounts, "/usr")).toBe(1);
    expect(stackDepth(parseMountinfo(`${COMPOSEFS}\n${USR_OVERLAY}`), "/usr")).toBe(2);
    expect(stackDepth(parseMountinfo(`${COMPOSEFS}\n${USR_OVERLAY}\n${SYSEXT}`), "/usr")).toBe(2);
    expect(stackDepth(parseMountinfo("1 0 8:1 / / rw - ext4 /dev/sda1 rw"), "/usr")).toBe(0);
  });

  it("composefs: info, sysext's overlay is the last level the kernel allows", async () => {
    put("run/ostree-booted", "");
    put("usr/lib/ostree/prepare-root.conf", "[composefs]\nenabled = yes\n");
    put("usr/bin/bootc", "");
    put("proc/self/mountinfo", COMPOSEFS);
    const [f] = await checkOverlayDepth(view());
    expect(f).toMatchObject({ check: "overlay-depth", status: "info", details: { depth: 1, composefs: "yes", limit: 2 } });
    expect(f!.message).toMatch(/composefs \(an overlay over EROFS\) on a bootc host: systemd-sysext's overlay is the second and last level/);
  });

  it("composefs with a transient /usr overlay (merged or not): error, merging fails until a reboot", async () => {
    put("usr/lib/ostree/prepare-root.conf", "[composefs]\nenabled = signed\n");
    for (const table of [`${COMPOSEFS}\n${USR_OVERLAY}`, `${COMPOSEFS}\n${USR_OVERLAY}\n${SYSEXT}`]) {
      put("proc/self/mountinfo", table);
      const [f] = await checkOverlayDepth(view());
      expect(f).toMatchObject({ status: "error", details: { depth: 2 } });
      expect(f!.message).toMatch(/already 2 stacked file systems deep .*maximum fs stacking depth exceeded/);
      expect(f!.fix).toMatch(/reboot to drop the transient \/usr overlay/);
    }
  });

  it("a plain /usr: ok; no mount table in the view: ok, not checked", async () => {
    put("proc/self/mountinfo", "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n");
    expect((await checkOverlayDepth(view()))[0]).toMatchObject({ status: "ok", message: "/usr is on ext4: systemd-sysext's overlay is the only stacked level" });
    rmSync(join(root, "proc"), { recursive: true });
    expect((await checkOverlayDepth(view()))[0]!.message).toMatch(/cannot see how \/usr is mounted under/);
  });
});

describe("/etc transient (ostree prepare-root.conf)", () => {
  it("[etc] transient = true: a warning that ext setup's units go at reboot; /etc's file overrides the image's", async () => {
    put("usr/lib/ostree/prepare-root.conf", "[composefs]\nenabled = yes\n[etc]\ntransient = true\n");
    const [f] = await checkTransientEtc(view());
    expect(f).toMatchObject({ check: "etc-transient", status: "warning" });
    expect(f!.message).toMatch(/\/etc\/systemd\/system .* gone after the next reboot/);
    put("etc/ostree/prepare-root.conf", "[etc]\ntransient = false # kept\n[root]\ntransient = true\n");
    const findings = await checkTransientEtc(view());
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ status: "info" });
    expect(findings[0]!.message).toMatch(/\/ is transient here/);
  });

  it("no ostree: ok", async () => {
    expect(await checkTransientEtc(view())).toEqual([expect.objectContaining({ status: "ok" })]);
  });
});

describe("/opt on Fedora Atomic desktops", () => {
  it("/opt → var/opt: info, ext's images are not affected", async () => {
    symlinkSync("var/opt", join(root, "opt"));
    const [f] = await checkOpt(view());
    expect(f).toMatchObject({ check: "opt", status: "info", details: { target: "var/opt" } });
    expect(f!.message).toMatch(/symlink to var\/opt .* packages installed by ext are not affected/);
  });

  it("a directory, or none: ok", async () => {
    expect((await checkOpt(view()))[0]).toMatchObject({ status: "ok", message: "there is no /opt (ext's images use only /usr)" });
    mkdirSync(join(root, "opt"));
    expect((await checkOpt(view()))[0]).toMatchObject({ status: "ok", message: "/opt is a directory of the OS tree" });
  });
});
