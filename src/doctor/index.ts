import { checkInit, checkPrivileges, checkSysext, checkUnits } from "./system.js";
import { checkFilesystem, checkLoop } from "./kernel.js";
import { checkMkfs, checkNix } from "./tools.js";
import { checkSameFilesystem, checkSpace, checkUsrStore } from "./storage.js";
import { checkState } from "./state.js";
import { checkStore } from "./store.js";
import { checkSelinux, checkSelinuxImage } from "./selinux.js";
import { checkImmutableRoot, checkOpt, checkOsUpgrades, checkOverlayDepth, checkTransientEtc } from "./image-hosts.js";
import type { Check, DoctorInput, Finding, Status } from "./types.js";

export type { DoctorInput, Finding, Status, Host } from "./types.js";
export { realHost } from "./host.js";

/** In the order a person reads them: who runs the machine, the kernel, the tools, disk, ext's state. */
export const CHECKS: readonly { name: string; run: Check }[] = [
  { name: "privileges", run: checkPrivileges },
  { name: "init", run: checkInit },
  { name: "systemd-sysext", run: checkSysext },
  { name: "kernel-erofs", run: (i) => checkFilesystem(i, "erofs") },
  { name: "kernel-overlay", run: (i) => checkFilesystem(i, "overlay") },
  { name: "loop-devices", run: checkLoop },
  { name: "nix", run: checkNix },
  { name: "nix-store", run: checkStore },
  { name: "mkfs.erofs", run: checkMkfs },
  { name: "selinux", run: checkSelinux },
  { name: "selinux-image", run: checkSelinuxImage },
  { name: "space", run: checkSpace },
  { name: "same-filesystem", run: checkSameFilesystem },
  { name: "usr-store", run: checkUsrStore },
  // Image-based hosts (src/doctor/image-hosts.ts).
  { name: "overlay-depth", run: checkOverlayDepth },
  { name: "etc-transient", run: checkTransientEtc },
  { name: "opt", run: checkOpt },
  { name: "root-immutable", run: checkImmutableRoot },
  { name: "os-upgrades", run: checkOsUpgrades },
  { name: "state", run: checkState },
  { name: "units", run: checkUnits },
];

/** Runs every check (concurrently; they only read). A check that breaks is itself a finding. */
export async function runChecks(input: DoctorInput, checks = CHECKS): Promise<Finding[]> {
  const results = await Promise.all(checks.map(async (c): Promise<Finding[]> => {
    try {
      return await c.run(input);
    } catch (e) {
      return [{ check: c.name, status: "warning", message: `the check could not run: ${e instanceof Error ? e.message : String(e)}`, fix: "this is a bug in ext doctor: please report it with the output of 'ext doctor --verbose'" }];
    }
  }));
  return results.flat();
}

export function countByStatus(findings: readonly Finding[]): Record<Status, number> {
  const counts: Record<Status, number> = { ok: 0, info: 0, warning: 0, error: 0 };
  for (const f of findings) counts[f.status]++;
  return counts;
}
