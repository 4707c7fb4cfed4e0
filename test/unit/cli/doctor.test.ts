import { afterAll, describe, expect, it } from "vitest";
import { STAGING_VERSION } from "../../../src/image/version.js";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { imagePath, layout } from "../../../src/base/layout.js";
import { ensureStateDirs, writeCurrent, writeGeneration } from "../../../src/generations/store.js";
import { CHECKS, countByStatus, realHost, runChecks, type Finding, type Host } from "../../../src/doctor/index.js";
import type { DoctorInput, ImageLabel } from "../../../src/doctor/types.js";
import { parseSystemdVersion } from "../../../src/doctor/system.js";
import { parseFilesystems } from "../../../src/doctor/kernel.js";
import { formatDoctor } from "../../../src/cli/commands/doctor.js";

const scratch = mkdtempSync(join(tmpdir(), "ext-doctor-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// A machine described in a few lines: files, paths that exist, what commands print.
interface Machine {
  files?: Record<string, string>;
  paths?: string[];
  dirs?: Record<string, string[]>;
  commands?: Record<string, { exitCode?: number; stdout?: string; stderr?: string } | undefined>;
  uid?: number;
  available?: number;
  devs?: Record<string, number>;
  images?: Record<string, boolean | undefined>;
  /** image path → its entries' SELinux labels (Host.imageLabels). */
  labels?: Record<string, ImageLabel[] | undefined>;
  /** What trying mkfs.erofs found; null: not installed. */
  mkfs?: { compressors: string[]; workers: boolean; incremental: boolean } | null;
  kernel?: string;
}

const HEALTHY: Machine = {
  files: {
    "/proc/1/comm": "systemd\n",
    "/proc/filesystems": "nodev\tsysfs\nnodev\toverlay\n\terofs\n\text4\n",
  },
  paths: ["/dev/loop-control", "/", "/var", "/var/lib", "/nix", "/nix/store"],
  commands: {
    "systemd-sysext --version": { stdout: "systemd 256 (256.7-1)\n+PAM +AUDIT\n" },
    "systemctl is-enabled systemd-sysext.service": { stdout: "enabled\n" },
    "systemd-sysext status --json=short": { stdout: '[{"hierarchy":"/opt","extensions":"none"},{"hierarchy":"/usr","extensions":"none"}]' },
    "nix --version": { stdout: "nix (Nix) 2.24.9\n" },
    "mkfs.erofs --version": { stdout: "mkfs.erofs (erofs-utils) 1.7.1\n" },
  },
  mkfs: { compressors: ["lz4hc", "lz4", "lzma"], workers: false, incremental: false },
  uid: 0,
  available: 50 * 1024 ** 3,
};

function fakeHost(m: Machine): Host {
  const files = m.files ?? {};
  const paths = new Set([...(m.paths ?? []), ...Object.keys(files), ...Object.keys(m.dirs ?? {})]);
  return {
    readText: async (p) => files[p],
    exists: async (p) => paths.has(p),
    stat: async (p) => (paths.has(p) ? { uid: 0, mode: 0o40755, dev: m.devs?.[p] ?? 1, isDirectory: p in (m.dirs ?? {}) || (!(p in files) && !p.endsWith(".raw")), isSymlink: false } : undefined),
    readDir: async (p) => m.dirs?.[p],
    run: async (file, args) => {
      const key = [file, ...args].join(" ");
      if (!(key in (m.commands ?? {}))) {
        // Unlisted programs are missing, unless another invocation of the same program is listed.
        const known = Object.keys(m.commands ?? {}).some((k) => k.split(" ")[0] === file && m.commands![k] !== undefined);
        return known ? { exitCode: 1, stdout: "", stderr: "unrecognized option" } : undefined;
      }
      const r = m.commands![key];
      return r === undefined ? undefined : { exitCode: r.exitCode ?? 0, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
    },
    statfs: async () => ({ available: m.available ?? 0, total: 100 * 1024 ** 3 }),
    uid: () => m.uid ?? 0,
    kernelRelease: () => m.kernel ?? "6.6.0-test",
    mkfs: async () => (m.mkfs === null ? undefined : m.mkfs ?? { compressors: [], workers: false, incremental: false }),
    imageHas: async (image) => m.images?.[image],
    imageText: async () => undefined,
    imageLabels: async (image) => m.labels?.[image],
    readLink: async () => undefined,
    fileAttributes: async () => undefined,
  };
}

function input(m: Machine, extra: Partial<DoctorInput> = {}): DoctorInput {
  return {
    layout: layout("/"),
    extensionName: "ext",
    compression: "lz4hc",
    nix: { store: { root: "/" }, system: "x86_64-linux" },
    templatesDir: "/templates",
    host: fakeHost(m),
    ...extra,
  };
}

const merge = (m: Machine, more: Machine): Machine => ({
  ...m,
  ...more,
  files: { ...m.files, ...more.files },
  paths: [...(m.paths ?? []), ...(more.paths ?? [])],
  commands: { ...m.commands, ...more.commands },
  dirs: { ...m.dirs, ...more.dirs },
});

const byCheck = (findings: Finding[], check: string) => findings.filter((f) => f.check === check);

describe("ext doctor on a described machine", () => {
  it("a healthy host: nothing but ok (and the unit templates it ships, installed)", async () => {
    const m = merge(HEALTHY, {
      dirs: { "/templates": ["ext-boot-select.service"] },
      files: { "/templates/ext-boot-select.service": "[Install]\nWantedBy=sysinit.target\n" },
      paths: ["/etc/systemd/system/ext-boot-select.service", "/etc/systemd/system/sysinit.target.wants/ext-boot-select.service"],
    });
    const findings = await runChecks(input(m));
    expect(findings.filter((f) => f.status !== "ok")).toEqual([]);
    expect(byCheck(findings, "systemd-sysext")[0]?.message).toBe("systemd-sysext from systemd 256 (256.7-1)");
    expect(byCheck(findings, "nix")[0]?.details).toMatchObject({ version: "2.24.9" });
    expect(byCheck(findings, "mkfs.erofs")[0]?.message).toBe("mkfs.erofs 1.7.1 (compression: lz4hc, lz4, lzma)");
    // Every check ran and said something.
    expect(new Set(findings.map((f) => f.check)).size).toBeGreaterThanOrEqual(CHECKS.length);
  });

  it("the boot selector's program: /etc/ext/boot.sh missing is an error; a program inside ext's image a warning", async () => {
    const units = (exec: string, more: Machine = {}) => merge(HEALTHY, merge({
      dirs: { "/templates": ["ext-boot-select.service"] },
      files: {
        "/templates/ext-boot-select.service": "[Install]\nWantedBy=sysinit.target\n",
        "/etc/systemd/system/ext-boot-select.service": `[Service]\nExecStart=${exec} boot select\n`,
      },
      paths: ["/etc/systemd/system/sysinit.target.wants/ext-boot-select.service"],
    }, more));
    const missing = byCheck(await runChecks(input(units("/bin/sh /etc/ext/boot.sh"))), "units");
    expect(missing).toEqual([expect.objectContaining({ status: "error", fix: "sudo ext setup (writes it again)" })]);
    expect(missing[0]!.message).toMatch(/run \/etc\/ext\/boot\.sh, which is missing/);
    expect(byCheck(await runChecks(input(units("/bin/sh /etc/ext/boot.sh", { files: { "/etc/ext/boot.sh": "#!/bin/sh\n" } }))), "units"))
      .toEqual([expect.objectContaining({ status: "ok" })]);
    const inImage = byCheck(await runChecks(input(units("/usr/store/0123456789abcdfghijklmnpqrsvwxyz-ext-0.1.0/bin/ext"))), "units");
    expect(inImage[0]).toMatchObject({ status: "warning", fix: expect.stringMatching(/ext setup --from-image/) });
    expect(byCheck(await runChecks(input(units("/usr/local/bin/node /opt/ext/bin/ext.js"))), "units")).toEqual([expect.objectContaining({ status: "ok" })]);
  });

  it("PID 1 is not systemd: a warning that says what does not happen and what to do", async () => {
    const findings = await runChecks(input(merge(HEALTHY, { files: { "/proc/1/comm": "process_api\n" } })));
    const init = byCheck(findings, "init");
    expect(init).toHaveLength(1);
    expect(init[0]).toMatchObject({ status: "warning", details: { pid1: "process_api" } });
    expect(init[0]!.message).toMatch(/PID 1 is 'process_api', not systemd/);
    expect(init[0]!.fix).toMatch(/systemd-sysext refresh/);
    expect(byCheck(findings, "sysext-service")).toEqual([]);
  });

  it("systemd-sysext.service disabled", async () => {
    const findings = await runChecks(input(merge(HEALTHY, { commands: { "systemctl is-enabled systemd-sysext.service": { exitCode: 1, stdout: "disabled\n" } } })));
    expect(byCheck(findings, "sysext-service")[0]).toMatchObject({ status: "warning", fix: "sudo systemctl enable systemd-sysext.service" });
  });

  it.each([
    [{ "systemd-sysext --version": undefined }, "error", /not installed/],
    [{ "systemd-sysext --version": { stdout: "systemd 250 (250.3)\n" } }, "error", /ID=_any.*252/],
    [{ "systemd-sysext --version": { stdout: "systemd 252 (252.38-1~deb12u1)\n" } }, "ok", /252/],
  ] as const)("systemd-sysext %j → %s", async (commands, status, message) => {
    const [f] = byCheck(await runChecks(input(merge(HEALTHY, { commands: commands as Machine["commands"] }))), "systemd-sysext");
    expect(f?.status).toBe(status);
    expect(f?.message).toMatch(message);
  });

  it("kernel without EROFS or overlayfs: errors; as modules: fine", async () => {
    const none = await runChecks(input(merge(HEALTHY, { files: { "/proc/filesystems": "nodev\tsysfs\n\text4\n" } })));
    expect(byCheck(none, "kernel-erofs")[0]).toMatchObject({ status: "error" });
    expect(byCheck(none, "kernel-erofs")[0]!.fix).toMatch(/modprobe erofs|CONFIG_EROFS_FS/);
    expect(byCheck(none, "kernel-overlay")[0]).toMatchObject({ status: "error" });
    const modules = await runChecks(input(merge(HEALTHY, {
      files: {
        "/proc/filesystems": "nodev\tsysfs\n",
        "/lib/modules/6.6.0-test/modules.dep": "kernel/fs/erofs/erofs.ko.xz: kernel/lib/lz4.ko\nkernel/fs/overlayfs/overlay.ko.zst:\n",
      },
    })));
    expect(byCheck(modules, "kernel-erofs")[0]).toMatchObject({ status: "ok" });
    expect(byCheck(modules, "kernel-overlay")[0]!.message).toMatch(/module/);
  });

  it("missing tools are errors with an install command; an unsupported --compression too", async () => {
    const findings = await runChecks(input(merge(HEALTHY, { mkfs: null, commands: { "nix --version": undefined, "mkfs.erofs --version": undefined } })));
    expect(byCheck(findings, "nix")[0]).toMatchObject({ status: "error" });
    expect(byCheck(findings, "nix")[0]!.fix).toMatch(/nix-bin/);
    expect(byCheck(findings, "mkfs.erofs")[0]!.fix).toMatch(/erofs-utils/);
    const zstd = await runChecks(input(HEALTHY, { compression: "zstd,3" }));
    expect(byCheck(zstd, "mkfs.erofs")[0]).toMatchObject({ status: "error" });
    expect(byCheck(zstd, "mkfs.erofs")[0]!.fix).toMatch(/--compression lz4hc/);
  });

  it("mkfs.erofs ≥ 1.8 with every compressor: offers only what the running kernel mounts, and says why", async () => {
    const all = { compressors: ["lz4hc", "lz4", "lzma", "deflate", "libdeflate", "zstd"], workers: true, incremental: true };
    const old = byCheck(await runChecks(input(merge(HEALTHY, { mkfs: all, kernel: "6.1.0-40-amd64" }))), "mkfs.erofs")[0]!;
    expect(old.status).toBe("ok");
    expect(old.message).toBe("mkfs.erofs 1.7.1 (compression: lz4hc, lz4, lzma; compresses on several threads; not offered: deflate (needs Linux ≥ 6.6, this is 6.1.0-40-amd64), libdeflate (needs Linux ≥ 6.6, this is 6.1.0-40-amd64), zstd (needs Linux ≥ 6.10, this is 6.1.0-40-amd64))");
    const wantZstd = byCheck(await runChecks(input(merge(HEALTHY, { mkfs: all, kernel: "6.1.0" }), { compression: "zstd" })), "mkfs.erofs")[0]!;
    expect(wantZstd).toMatchObject({ status: "error", message: expect.stringMatching(/cannot mount EROFS images compressed with 'zstd' \(needs Linux ≥ 6\.10\)/) });
    const recent = byCheck(await runChecks(input(merge(HEALTHY, { mkfs: all, kernel: "6.18.44" }), { compression: "zstd" })), "mkfs.erofs")[0]!;
    expect(recent).toMatchObject({ status: "ok", message: "mkfs.erofs 1.7.1 (compression: lz4hc, lz4, lzma, deflate, libdeflate, zstd; compresses on several threads)" });
  });

  it("SELinux: not used; enforcing with its policy (labels named); enforcing without file_contexts is an error", async () => {
    expect(byCheck(await runChecks(input(HEALTHY)), "selinux")[0]).toMatchObject({ status: "ok", message: expect.stringMatching(/^SELinux is not used here/) });
    const fc = "/usr(/.*)?\tsystem_u:object_r:usr_t:s0\n/usr/bin(/.*)?\tsystem_u:object_r:bin_t:s0\n/usr/lib(/.*)?\tsystem_u:object_r:lib_t:s0\n/usr/share/man(/.*)?\tsystem_u:object_r:man_t:s0\n";
    const fedora = merge(HEALTHY, { files: { "/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n", "/sys/fs/selinux/enforce": "1", "/etc/selinux/targeted/contexts/files/file_contexts": fc } });
    expect(byCheck(await runChecks(input(fedora)), "selinux")[0]).toMatchObject({
      status: "ok",
      message: "SELinux enforcing (policy targeted); the running kernel enforces it: images are labelled from /etc/selinux/targeted/contexts/files/file_contexts — /usr/store programs bin_t, libraries lib_t, manuals man_t, the rest usr_t",
    });
    const broken = merge(HEALTHY, { files: { "/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n" } });
    expect(byCheck(await runChecks(input(broken)), "selinux")[0]).toMatchObject({ status: "error", fix: expect.stringMatching(/--selinux-contexts FILE/) });

    // Both SELinux checks need the policy (the second compares the active image's labels with it); a
    // whole file_contexts (Fedora's: ~6,000 rules) is read and compiled once per run, not per check.
    const root = mkdtempSync(join(tmpdir(), "ext-doctor-selinux-"));
    try {
      const l = layout(root);
      await ensureStateDirs(l);
      const sha256 = "c".repeat(64);
      await writeGeneration(l, {
        recordVersion: 1, id: 1, createdAt: "2026-01-01T00:00:00Z", command: "ext add jq", extensionName: "ext",
        source: { original: "path:/src" }, packages: [], closure: { paths: [], narSize: 0 }, links: [],
        image: { sha256, size: 1, compression: "lz4" }, imageKey: null, parent: null,
      });
      await writeCurrent(l, 1);
      const onRoot = Object.fromEntries(Object.entries(fedora.files!).map(([p, text]) => [join(root, p), text]));
      const label = "system_u:object_r:bin_t:s0";
      const counted = input({ ...fedora, files: onRoot, labels: { [imagePath(l, sha256)]: [{ path: "/usr/bin/jq", kind: "--", label }] } }, { layout: l });
      const reads: string[] = [];
      const readText = counted.host.readText;
      counted.host = { ...counted.host, readText: async (p) => { reads.push(p); return readText(p); } };
      const both = await runChecks(counted);
      expect(byCheck(both, "selinux")[0]?.status).toBe("ok");
      expect(byCheck(both, "selinux-image")[0]).toMatchObject({ status: "ok", message: expect.stringMatching(/all 1 entries carry the labels/) });
      expect(reads.filter((p) => p.endsWith("/file_contexts"))).toEqual([join(root, "etc/selinux/targeted/contexts/files/file_contexts")]);
      expect(reads.filter((p) => p.endsWith("/etc/selinux/config"))).toHaveLength(1);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("old Nix: error below 2.4, warning below 2.8", async () => {
    const old = await runChecks(input(merge(HEALTHY, { commands: { "nix --version": { stdout: "nix (Nix) 2.3.16\n" } } })));
    expect(byCheck(old, "nix")[0]?.status).toBe("error");
    const older = await runChecks(input(merge(HEALTHY, { commands: { "nix --version": { stdout: "nix (Nix) 2.6.1\n" } } })));
    expect(byCheck(older, "nix")[0]?.status).toBe("warning");
  });

  it("a tool that fails to start: its error line, not a guess", async () => {
    const stderr = "terminate called after throwing an instance of 'nix::SysError'\n  what():  \x1b[31;1merror:\x1b[0m getting status of /root/.nix-defexpr/channels: Permission denied\n";
    const findings = await runChecks(input(merge(HEALTHY, { commands: { "nix --version": { exitCode: 134, stderr } } })));
    expect(byCheck(findings, "nix")[0]).toMatchObject({
      status: "warning",
      message: "'nix --version' failed (exit 134): error: getting status of /root/.nix-defexpr/channels: Permission denied",
    });
  });

  it("little free space; images and extensions on different file systems", async () => {
    const low = await runChecks(input(merge(HEALTHY, { available: 100 * 1024 ** 2 })));
    expect(byCheck(low, "space-images")[0]).toMatchObject({ status: "error" });
    expect(byCheck(low, "space-images")[0]!.fix).toMatch(/ext gc/);
    const split = await runChecks(input(merge(HEALTHY, { paths: ["/var/lib/extensions"], devs: { "/var/lib/extensions": 2 } })));
    expect(byCheck(split, "same-filesystem")[0]).toMatchObject({ status: "error" });
  });

  it("/usr/store: someone else's directory, or another extension that brings one", async () => {
    const squatter = await runChecks(input(merge(HEALTHY, { paths: ["/usr/store"] })));
    expect(byCheck(squatter, "usr-store")[0]).toMatchObject({ status: "error" });
    const ours = await runChecks(input(merge(HEALTHY, {
      paths: ["/usr/store"],
      commands: { "systemd-sysext status --json=short": { stdout: '[{"hierarchy":"/usr","extensions":["ext"]}]' } },
    })));
    expect(byCheck(ours, "usr-store")[0]).toMatchObject({ status: "ok" });
    const other = await runChecks(input(merge(HEALTHY, {
      dirs: { "/var/lib/extensions": ["ext.raw", "other.raw", "unknown.raw"] },
      paths: ["/var/lib/extensions/ext.raw", "/var/lib/extensions/other.raw", "/var/lib/extensions/unknown.raw"],
      images: { "/var/lib/extensions/other.raw": true },
    })));
    expect(byCheck(other, "usr-store")[0]).toMatchObject({ status: "error", details: { others: ["/var/lib/extensions/other.raw"] } });
  });

  it("boot units shipped but not installed → warning pointing at 'ext setup'", async () => {
    const findings = await runChecks(input(merge(HEALTHY, { dirs: { "/templates": ["ext-boot-bless.service", "README"] } })));
    const units = byCheck(findings, "units")[0];
    expect(units).toMatchObject({ status: "warning", details: { missing: ["ext-boot-bless.service"] } });
    expect(units!.fix).toMatch(/ext setup/);
  });

  it("not root: said, not failed", async () => {
    const findings = await runChecks(input(merge(HEALTHY, { uid: 1000 })));
    expect(byCheck(findings, "privileges")[0]).toMatchObject({ status: "info" });
  });

  it("a check that breaks is a finding, not a crash", async () => {
    const broken = await runChecks(input(HEALTHY), [{ name: "boom", run: async () => { throw new Error("kaput"); } }]);
    expect(broken).toEqual([expect.objectContaining({ check: "boom", status: "warning", message: "the check could not run: kaput" })]);
  });

  it("every warning and error says how to fix it", async () => {
    const worst = merge(HEALTHY, {
      files: { "/proc/1/comm": "bash\n", "/proc/filesystems": "\n" },
      mkfs: null, commands: { "nix --version": undefined, "mkfs.erofs --version": undefined, "systemd-sysext --version": undefined },
      paths: ["/usr/store"],
      available: 0,
    });
    const findings = await runChecks(input({ ...worst, paths: (worst.paths ?? []).filter((p) => p !== "/dev/loop-control") }));
    for (const f of findings.filter((x) => x.status === "warning" || x.status === "error")) expect(f.fix, f.check).toBeTruthy();
    const text = formatDoctor({ ok: false, root: "/", summary: countByStatus(findings), findings }).join("\n");
    expect(text).toMatch(/^ERROR  nix /m);
    expect(text).toMatch(/fix: /);
    expect(text).toMatch(/ext cannot work on this host/);
  });
});

describe("ext doctor's state check on a real directory", () => {
  it("no state yet is fine; a world-writable state directory and a dangling current pointer are errors", async () => {
    const root = mkdtempSync(join(scratch, "state-"));
    const l = layout(root);
    const base = input(HEALTHY, { layout: l, host: { ...realHost, run: fakeHost(HEALTHY).run } });
    const fresh = byCheck(await runChecks(base, CHECKS.filter((c) => c.name === "state")), "state");
    expect(fresh[0]).toMatchObject({ status: "ok" });

    mkdirSync(l.generationsDir, { recursive: true, mode: 0o777 });
    const { chmodSync } = await import("node:fs");
    chmodSync(l.stateDir, 0o777);
    writeFileSync(l.currentFile, JSON.stringify({ generation: 4 }));
    const bad = byCheck(await runChecks(base, CHECKS.filter((c) => c.name === "state")), "state");
    expect(bad.map((f) => f.status)).toEqual(["error", "error"]);
    expect(bad[0]!.message).toMatch(/writable by group or others/);
    expect(bad[1]!.message).toMatch(/generation 4 has no record/);

    chmodSync(l.stateDir, 0o755);
    writeFileSync(join(l.stateDir, "journal.json"), JSON.stringify({ txid: "1", command: "ext add jq", phase: "pack", pid: 123, startedAt: "", extensionName: "ext", previousGeneration: null, previousImage: null, temp: [] }));
    writeFileSync(l.currentFile, JSON.stringify({ generation: null }));
    const interrupted = byCheck(await runChecks(base, CHECKS.filter((c) => c.name === "state")), "state");
    expect(interrupted[0]).toMatchObject({ status: "warning" });
    expect(interrupted[0]!.message).toMatch(/'ext add jq' was interrupted during pack/);

    // The stage cache is reported, not judged.
    rmSync(join(l.stateDir, "journal.json"));
    mkdirSync(join(l.stageCacheDir, `v${STAGING_VERSION}`, "abc-hello"), { recursive: true });
    writeFileSync(join(l.stageCacheDir, `v${STAGING_VERSION}`, "abc-hello.json"), "{}");
    const cached = byCheck(await runChecks(base, CHECKS.filter((c) => c.name === "state")), "state");
    expect(cached.find((f) => f.status === "info")?.message).toMatch(/^1 store path\(s\) of the last stage are kept in \S+\/var\/lib\/ext\/staged/);
    expect(cached.some((f) => f.status === "ok")).toBe(true);
  });
});

describe("parsers", () => {
  it("systemd versions", () => {
    expect(parseSystemdVersion("systemd 252 (252.38-1~deb12u1)\n+PAM")).toEqual({ major: 252, raw: "252 (252.38-1~deb12u1)" });
    expect(parseSystemdVersion("systemd 257 (257.2-3.fc42)")).toEqual({ major: 257, raw: "257 (257.2-3.fc42)" });
    expect(parseSystemdVersion("something else")).toBeUndefined();
  });

  it("/proc/filesystems", () => {
    expect(parseFilesystems("nodev\tsysfs\nnodev\toverlay\n\terofs\n")).toEqual(["sysfs", "overlay", "erofs"]);
  });
});

describe("ext doctor on this machine (real findings)", () => {
  it("reports PID 1 truthfully, and the real systemd-sysext and nix versions", async () => {
    const findings = await runChecks(input({}, { host: realHost, layout: layout(mkdtempSync(join(scratch, "root-"))) }));
    const pid1 = realHost.readText("/proc/1/comm");
    const comm = (await pid1)?.trim();
    const init = byCheck(findings, "init")[0]!;
    if (comm === "systemd") expect(init.status).toBe("ok");
    else {
      expect(init.status).toBe("warning");
      expect(init.message).toContain(`PID 1 is '${comm}', not systemd`);
    }
    const sysext = byCheck(findings, "systemd-sysext")[0]!;
    const { execFileSync } = await import("node:child_process");
    const real = execFileSync("systemd-sysext", ["--version"], { encoding: "utf8" }).split("\n")[0]!.replace(/^systemd /, "");
    expect(sysext.message).toContain(real);
    const nix = byCheck(findings, "nix")[0]!;
    expect(nix.message).toBe(execFileSync("nix", ["--version"], { encoding: "utf8" }).trim());
    expect(byCheck(findings, "kernel-erofs")[0]!.status).not.toBe("warning");
  });
});
