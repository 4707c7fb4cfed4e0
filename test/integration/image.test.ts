// stage → pack → verify on a real (synthetic) closure, then a real merge with systemd-sysext inside a
// private mount namespace. The closure is built in a temp dir used as a chroot store: the host's dash,
// libc and dynamic loader copied into store paths and patchelf'd against each other, so the binary's
// interpreter and RUNPATH say /nix/store/… and only work after relocation to /usr/store.
//
// Needs root, patchelf, erofs-utils, systemd-sysext, unshare, cp, ldd. Nothing is skipped: a missing
// tool fails the test. Nothing touches the host's /usr, /run or /var/lib: the merge happens in a mount
// namespace that dies with its shell, with tmpfs over /run, /var/lib/extensions and /nix.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync,
  rmSync, symlinkSync, writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { stage } from "../../src/image/stage.js";
import { pack } from "../../src/image/pack.js";
import { verifyImage } from "../../src/image/verify.js";
import { systemdArchitecture } from "../../src/image/names.js";
import { sniffContainer } from "../../src/image/opaque.js";
import { UnsafeImageError } from "../../src/errors.js";
import type { ClosureEntry } from "../../src/nix/types.js";
import type { FarmPackage, StageReport } from "../../src/image/types.js";

const HASH = {
  glibc: "0c8mb7r3jy1nhhmxwb5ndf9g0p2rpzqa",
  dash: "1d9nc8s4kz2pjjnyxc6pgg0h1q3sqarb",
  hello: "2fanf9v5l03qkkpzyd7qhh1i2r4vrbsc",
} as const;
const sp = (name: keyof typeof HASH) => `/nix/store/${HASH[name]}-${name}`;
// Unique per run, so loop devices and files of this run are told apart from anyone else's.
const NAME = `exttest${process.pid}`;
const TOOL = `exttestsh${process.pid}`;
const SCRIPT = `exttest-hello${process.pid}`;
const ARCH = systemdArchitecture();

let tmp: string;
let storeRoot: string;
let closure: ClosureEntry[];
let packages: FarmPackage[];
let loaderName: string;

async function sh(cmd: string, args: string[]): Promise<string> {
  const r = await execa(cmd, args, { reject: false, encoding: "utf8" });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.exitCode}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Copies the host's dash, libc and loader into store paths and points them at each other. */
async function buildStore(root: string): Promise<void> {
  const ldd = await sh("ldd", ["/bin/dash"]);
  const libc = /libc\.so\.6 => (\S+)/.exec(ldd)?.[1];
  const loader = /^\s*(\/\S*ld-linux\S*)/m.exec(ldd)?.[1];
  if (!libc || !loader) throw new Error(`cannot find libc and the loader of /bin/dash in:\n${ldd}`);
  loaderName = loader.split("/").pop()!;
  const glibc = join(root, sp("glibc"));
  const dash = join(root, sp("dash"));
  const hello = join(root, sp("hello"));
  for (const d of [`${glibc}/lib`, `${dash}/bin`, `${dash}/share/man/man1`, `${hello}/bin`, `${hello}/share/doc`]) mkdirSync(d, { recursive: true });
  copyFileSync(libc, `${glibc}/lib/libc.so.6`);
  copyFileSync(loader, `${glibc}/lib/${loaderName}`);
  copyFileSync("/bin/dash", `${dash}/bin/${TOOL}`);
  chmodSync(`${dash}/bin/${TOOL}`, 0o755);
  await sh("patchelf", [
    "--set-interpreter", `${sp("glibc")}/lib/${loaderName}`, "--set-rpath", `${sp("glibc")}/lib`, `${dash}/bin/${TOOL}`,
  ]);
  symlinkSync(TOOL, `${dash}/bin/${TOOL}-link`);
  writeFileSync(`${dash}/share/man/man1/${TOOL}.1.gz`, gzipSync(`.TH ${TOOL}\nsee ${sp("dash")}/share/doc\n`));
  writeFileSync(`${hello}/bin/${SCRIPT}`, `#!${sp("dash")}/bin/${TOOL}\necho "hello from $0"\n`);
  symlinkSync(`${sp("dash")}/bin/${TOOL}`, `${hello}/share/doc/shell`);
  writeFileSync(`${hello}/share/doc/README`, "no references in here\n");
  // Nix's store modes.
  for (const f of [`${glibc}/lib/libc.so.6`, `${glibc}/lib/${loaderName}`, `${dash}/bin/${TOOL}`, `${hello}/bin/${SCRIPT}`]) chmodSync(f, 0o555);
  for (const f of [`${dash}/share/man/man1/${TOOL}.1.gz`, `${hello}/share/doc/README`]) chmodSync(f, 0o444);
}

async function doStage(stageDir: string, name = NAME): Promise<StageReport> {
  return stage({ closure, packages, store: { root: storeRoot }, stageDir, extensionName: name, architecture: ARCH, hostRoot: "/" });
}

/** Builds an image straight from a tree, for images ext itself would never make. */
async function rawImage(files: Record<string, string>, out: string, extra: string[] = []): Promise<string> {
  const dir = mkdtempSync(join(tmp, "raw-"));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(dir, rel, ".."), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  await sh("mkfs.erofs", ["--quiet", "-T0", "--all-root", ...extra, out, dir]);
  return out;
}

function release(name: string, arch = ARCH): Record<string, string> {
  return { [`usr/lib/extension-release.d/extension-release.${name}`]: `ID=_any\nARCHITECTURE=${arch}\n`, "usr/bin/x": "x" };
}

async function loopDevicesOf(pattern: string): Promise<string[]> {
  const out = await sh("losetup", ["-a"]);
  return out.split("\n").filter((l) => l.includes(pattern));
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "ext-image-it-"));
  storeRoot = join(tmp, "root");
  await buildStore(storeRoot);
  closure = (["glibc", "dash", "hello"] as const).map((n) => ({ path: sp(n), narSize: 0, references: [] }));
  packages = [{ name: "dash", outPaths: [sp("dash")] }, { name: "hello", outPaths: [sp("hello")] }];
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("image: stage, pack, verify", () => {
  let image: string;
  let report: StageReport;

  it("stages the closure relocated, with its farm and release file", async () => {
    const stageDir = join(tmp, "stage");
    report = await doStage(stageDir);
    expect(report.links).toEqual([`usr/bin/${TOOL}`, `usr/bin/${TOOL}-link`, `usr/bin/${SCRIPT}`, `usr/share/man/man1/${TOOL}.1.gz`].sort());
    expect(report.shadowed).toEqual([]);
    expect(report.rewritten).toBe(2);
    expect(report.rewrittenLinks).toBe(1);
    // The gzip man page names the store inside: relocated in its content, not left as it was.
    expect(report.opaqueReferences).toEqual([]);
    expect(report.relocatedContainers).toEqual([{ path: `usr/store/${HASH.dash}-dash/share/man/man1/${TOOL}.1.gz`, kind: "gzip" }]);
    const interp = await sh("patchelf", ["--print-interpreter", join(stageDir, "usr/store", `${HASH.dash}-dash`, "bin", TOOL)]);
    expect(interp.trim()).toBe(`/usr/store/${HASH.glibc}-glibc/lib/${loaderName}`);
    const rpath = await sh("patchelf", ["--print-rpath", join(stageDir, "usr/store", `${HASH.dash}-dash`, "bin", TOOL)]);
    expect(rpath.trim()).toBe(`/usr/store/${HASH.glibc}-glibc/lib`);
    expect(readlinkSync(join(stageDir, "usr/bin", TOOL))).toBe(`/usr/store/${HASH.dash}-dash/bin/${TOOL}`);
  });

  it("packs byte-identical images from the same inputs, atomically", async () => {
    image = join(tmp, "a.raw");
    const first = await pack({ stageDir: join(tmp, "stage"), output: image, compression: "lz4hc" });
    const again = await pack({ stageDir: join(tmp, "stage"), output: join(tmp, "b.raw"), compression: "lz4hc" });
    // A second, independent staging of the same closure as well.
    await doStage(join(tmp, "stage2"));
    const other = await pack({ stageDir: join(tmp, "stage2"), output: join(tmp, "c.raw"), compression: "lz4hc" });
    expect(first.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(again.sha256).toBe(first.sha256);
    expect(other.sha256).toBe(first.sha256);
    expect(first.size).toBe(lstatSync(image).size);
    const uncompressed = await pack({ stageDir: join(tmp, "stage"), output: join(tmp, "none.raw"), compression: "none" });
    expect(uncompressed.sha256).not.toBe(first.sha256);
    expect(readdirSync(tmp).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("leaves nothing behind when mkfs.erofs fails, and refuses unknown compression", async () => {
    const out = join(tmp, "fail.raw");
    await expect(pack({ stageDir: join(tmp, "no-such-stage"), output: out, compression: "lz4" })).rejects.toMatchObject({ code: "tool-failed" });
    await expect(pack({ stageDir: join(tmp, "stage"), output: out, compression: "brotli" })).rejects.toMatchObject({ code: "usage" });
    expect(readdirSync(tmp).filter((f) => f.startsWith(".fail.raw") || f === "fail.raw")).toEqual([]);
  });

  it("verifies the image without mounting it", async () => {
    const result = await verifyImage(image, NAME, ARCH);
    expect(result.ok).toBe(true);
    expect(result.method).toBe("metadata");
    expect(result.release).toEqual({ ID: "_any", ARCHITECTURE: ARCH });
    expect(result.findings.every((f) => f.ok)).toBe(true);
    expect((await verifyImage(join(tmp, "none.raw"), NAME, ARCH, { deep: true })).ok).toBe(true);
  });

  it("holds no uncompressed file or symlink that still says /nix/store", async () => {
    const out = join(tmp, "extracted");
    await sh("fsck.erofs", [`--extract=${out}`, image]);
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const full = join(dir, e.name);
        if (e.isDirectory()) walk(full);
        else if (e.isSymbolicLink()) {
          if (readlinkSync(full).includes("/nix/store")) offenders.push(full);
        } else {
          const data = readFileSync(full);
          if (sniffContainer(data) === undefined && data.includes("/nix/store")) offenders.push(full);
        }
      }
    };
    walk(out);
    expect(offenders).toEqual([]);
    expect(readFileSync(join(out, `usr/lib/extension-release.d/extension-release.${NAME}`), "utf8")).toBe(`ID=_any\nARCHITECTURE=${ARCH}\n`);
    expect(readdirSync(out)).toEqual(["usr"]);
  });

  it("rejects an image whose release file has another name", async () => {
    const other = `${NAME}x`;
    await doStage(join(tmp, "stage-other"), other);
    const wrong = (await pack({ stageDir: join(tmp, "stage-other"), output: join(tmp, "wrong.raw"), compression: "lz4" })).path;
    const err = await verifyImage(wrong, NAME, ARCH).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeImageError);
    expect((err as UnsafeImageError).details).toMatch(new RegExp(`extension-release\\.${NAME} is missing`));
    expect((err as UnsafeImageError).details).toMatch(new RegExp(`other extensions: extension-release\\.${other}`));
  });

  it("rejects images that would break the host or that sysext would refuse", async () => {
    const cases: [string, Record<string, string>, RegExp][] = [
      ["os-release", { ...release(NAME), "usr/lib/os-release": "ID=evil\n" }, /os-release/],
      ["top-level", { ...release(NAME), "etc/motd": "hi" }, /top level.*etc/],
      ["arch", release(NAME, ARCH === "arm64" ? "x86-64" : "arm64"), /ARCHITECTURE=/],
      ["no-id", { [`usr/lib/extension-release.d/extension-release.${NAME}`]: `ARCHITECTURE=${ARCH}\n` }, /no ID=/],
      ["other-os", { [`usr/lib/extension-release.d/extension-release.${NAME}`]: `ID=not-this-os\nARCHITECTURE=${ARCH}\n` }, /ID=not-this-os/],
    ];
    for (const [label, files, why] of cases) {
      const img = await rawImage(files, join(tmp, `${label}.raw`));
      const err = await verifyImage(img, NAME, ARCH).catch((e: unknown) => e);
      expect(err, label).toBeInstanceOf(UnsafeImageError);
      expect((err as UnsafeImageError).details, label).toMatch(why);
    }
  });

  it("rejects a directory that would replace a host symlink", async () => {
    const host = join(tmp, "fake-host");
    mkdirSync(join(host, "usr/lib"), { recursive: true });
    symlinkSync("lib", join(host, "usr/lib64"));
    const img = await rawImage({ ...release(NAME), "usr/lib64/libx.so": "x" }, join(tmp, "lib64.raw"));
    await expect(verifyImage(img, NAME, ARCH, { hostRoot: host })).rejects.toThrow(/usr\/lib64/);
  });

  it("rejects a damaged image and a file that is not EROFS", async () => {
    const damaged = join(tmp, "damaged.raw");
    const bytes = readFileSync(image);
    bytes.fill(0x5a, 1024 + 16, 1024 + 64);
    writeFileSync(damaged, bytes);
    const err = await verifyImage(damaged, NAME, ARCH).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeImageError);
    expect((err as UnsafeImageError).details).toMatch(/fsck: .*checksum/);
    const notErofs = join(tmp, "text.raw");
    writeFileSync(notErofs, "x".repeat(8192));
    await expect(verifyImage(notErofs, NAME, ARCH)).rejects.toThrow(UnsafeImageError);
  });

  it("falls back to extraction when the release file is stored compressed", async () => {
    // Big and repetitive enough that mkfs.erofs compresses it: the metadata reader cannot decode it.
    const padded = `ID=_any\nARCHITECTURE=${ARCH}\n${"# padding\n".repeat(2000)}`;
    const img = await rawImage({ [`usr/lib/extension-release.d/extension-release.${NAME}`]: padded }, join(tmp, "z.raw"), ["-zlz4hc"]);
    const result = await verifyImage(img, NAME, ARCH);
    expect(result.method).toBe("extract");
    expect(result.release).toEqual({ ID: "_any", ARCHITECTURE: ARCH });
  });

  it("merges with systemd-sysext in a private namespace and the relocated tools run with /nix hidden", async () => {
    const script = join(tmp, "merge.sh");
    writeFileSync(script, [
      "set -eu",
      'img="$1"; name="$2"; tool="$3"; hello="$4"; loader="$5"',
      // sysext's own mount must propagate back into this namespace.
      "mount --make-rshared /",
      "mount -t tmpfs tmpfs /run",
      "if [ -d /var/lib/extensions ]; then mount -t tmpfs tmpfs /var/lib/extensions;",
      "else mount -t tmpfs tmpfs /var/lib && mkdir /var/lib/extensions; fi",
      "if [ -d /nix ]; then mount -t tmpfs tmpfs /nix; fi",
      'cp "$img" "/var/lib/extensions/$name.raw"',
      "systemd-sysext merge",
      'test -L "/usr/bin/$tool"',
      '"/usr/bin/$tool" -c \'echo "relocated-ok $0"\'',
      '"/usr/bin/$hello"',
      '"$loader" --list "/usr/bin/$tool"',
      "systemd-sysext unmerge",
      'if [ -e "/usr/bin/$tool" ]; then echo "still merged"; exit 1; fi',
      "echo unmerged-ok",
    ].join("\n"));
    const before = await loopDevicesOf(`${NAME}.raw`);
    const loader = `/usr/store/${HASH.glibc}-glibc/lib/${loaderName}`;
    const r = await execa("unshare", ["-m", "--propagation", "private", "sh", script, image, NAME, TOOL, SCRIPT, loader], { reject: false, encoding: "utf8" });
    expect(r.stderr + r.stdout, "merge script").toContain("unmerged-ok");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`relocated-ok /usr/bin/${TOOL}`);
    expect(r.stdout).toContain(`hello from /usr/bin/${SCRIPT}`);
    // The loader resolved libc from the relocated store, not from the host.
    expect(r.stdout).toMatch(new RegExp(`libc\\.so\\.6 => /usr/store/${HASH.glibc}-glibc/lib/libc\\.so\\.6`));

    // Nothing outlives the namespace: no loop device, nothing on the host.
    let after = await loopDevicesOf(`${NAME}.raw`);
    for (let i = 0; i < 50 && after.length > before.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await loopDevicesOf(`${NAME}.raw`);
    }
    expect(after).toEqual(before);
    expect(existsSync(`/usr/bin/${TOOL}`)).toBe(false);
    expect(existsSync(`/var/lib/extensions/${NAME}.raw`)).toBe(false);
    expect(existsSync("/usr/store")).toBe(false);
  });
});
