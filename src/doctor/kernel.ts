import type { DoctorInput, Finding } from "./types.js";

// The kernel must mount EROFS images (through loop devices) and stack them with overlayfs.

const FEATURES = {
  erofs: { check: "kernel-erofs", what: "EROFS", config: "CONFIG_EROFS_FS (and CONFIG_EROFS_FS_ZIP for compressed images)", module: "erofs" },
  overlay: { check: "kernel-overlay", what: "overlayfs", config: "CONFIG_OVERLAY_FS", module: "overlay" },
} as const;

/** Names of file systems in /proc/filesystems (`nodev\toverlay`, `\terofs`). */
export function parseFilesystems(text: string): string[] {
  return text.split("\n").map((l) => l.trim().split(/\s+/).pop() ?? "").filter((n) => n !== "");
}

export async function checkFilesystem(input: DoctorInput, fs: keyof typeof FEATURES): Promise<Finding[]> {
  const f = FEATURES[fs];
  const kernel = input.host.kernelRelease();
  const proc = await input.host.readText("/proc/filesystems");
  if (proc !== undefined && parseFilesystems(proc).includes(fs)) {
    return [{ check: f.check, status: "ok", message: `the kernel (${kernel}) supports ${f.what}`, fix: null }];
  }
  // Not registered yet: a module the kernel loads on first mount is as good.
  const builtin = await input.host.readText(`/lib/modules/${kernel}/modules.builtin`);
  const deps = await input.host.readText(`/lib/modules/${kernel}/modules.dep`);
  const inList = (list: string | undefined) => list !== undefined && new RegExp(`(^|/)${f.module}\\.ko`, "m").test(list);
  if (inList(builtin) || inList(deps)) {
    return [{ check: f.check, status: "ok", message: `the kernel (${kernel}) has ${f.what} as a module (loaded on first use)`, fix: null }];
  }
  if (proc === undefined) {
    return [{ check: f.check, status: "warning", message: `cannot tell whether the kernel supports ${f.what} (/proc/filesystems is unreadable)`, fix: "mount /proc" }];
  }
  return [{
    check: f.check,
    status: "error",
    message: `the kernel (${kernel}) does not support ${f.what}: systemd-sysext cannot merge ext's images`,
    fix: `load the module ('sudo modprobe ${f.module}') or boot a kernel built with ${f.config}`,
  }];
}

export async function checkLoop(input: DoctorInput): Promise<Finding[]> {
  if (await input.host.exists("/dev/loop-control")) {
    return [{ check: "loop-devices", status: "ok", message: "loop devices are available (/dev/loop-control)", fix: null }];
  }
  return [{
    check: "loop-devices",
    status: "error",
    message: "there is no /dev/loop-control: systemd-sysext mounts .raw images through loop devices",
    fix: "sudo modprobe loop (in a container: pass /dev/loop-control and /dev/loop* through)",
  }];
}
