import { join } from "node:path";
import type { DoctorInput, Finding } from "./types.js";
import { firstError } from "./tools.js";

// Who runs the machine: root or not, systemd or not, systemd-sysext's version, ext's boot units.

/** systemd-sysext exists since 248; ext's images say ID=_any, which systemd accepts since 252. */
export const SYSEXT_MIN = 248;
export const SYSEXT_ANY_ID = 252;

export async function checkPrivileges(input: DoctorInput): Promise<Finding[]> {
  if (input.host.uid() === 0) return [{ check: "privileges", status: "ok", message: "running as root", fix: null }];
  // Which way to root ext add (and the others) would ask for (src/elevate/choose.ts); asks nothing now.
  const choice = input.host.elevation?.();
  const how = choice === undefined ? "need root"
    : choice.elevator !== null ? `ask for root once, through ${choice.elevator.kind} (${choice.elevator.reason})`
    : `need root, and there is no way to ask for it (${choice.skipped.join("; ")})`;
  return [{
    check: "privileges",
    status: "info",
    message: `not running as root: ext add, remove, rollback, apply, upgrade, gc and setup ${how}; checks of files only root can read may be incomplete`,
    fix: "run 'sudo ext doctor' for the complete picture",
    ...(choice !== undefined ? { details: { elevator: choice.elevator, skipped: choice.skipped } } : {}),
  }];
}

export async function checkInit(input: DoctorInput): Promise<Finding[]> {
  const comm = (await input.host.readText("/proc/1/comm"))?.trim();
  if (comm === undefined) {
    return [{ check: "init", status: "warning", message: "cannot tell what PID 1 is (/proc/1/comm is unreadable)", fix: "mount /proc, or run ext doctor on the host rather than in a restricted sandbox" }];
  }
  if (comm !== "systemd") {
    return [{
      check: "init",
      status: "warning",
      message: `PID 1 is '${comm}', not systemd: systemd-sysext.service and ext's boot units never run here, so nothing merges the extensions after a (re)start`,
      fix: "boot this system with systemd (in a container: run systemd as PID 1); until then 'ext add' and 'ext rollback' merge by themselves, and 'sudo systemd-sysext refresh' merges again after a restart",
      details: { pid1: comm },
    }];
  }
  const findings: Finding[] = [{ check: "init", status: "ok", message: "systemd is PID 1", fix: null, details: { pid1: comm } }];
  const rootArgs = input.layout.root === "/" ? [] : [`--root=${input.layout.root}`];
  const enabled = await input.host.run("systemctl", [...rootArgs, "is-enabled", "systemd-sysext.service"]);
  const state = enabled?.stdout.trim() ?? "";
  if (enabled && state !== "enabled" && state !== "static" && state !== "enabled-runtime" && state !== "alias") {
    findings.push({
      check: "sysext-service",
      status: "warning",
      message: `systemd-sysext.service is ${state || "not enabled"}: extensions are not merged at boot`,
      fix: "sudo systemctl enable systemd-sysext.service",
    });
  } else if (enabled) {
    findings.push({ check: "sysext-service", status: "ok", message: `systemd-sysext.service is ${state}`, fix: null });
  }
  return findings;
}

/** `systemd 252 (252.38-1~deb12u1)` → 252. */
export function parseSystemdVersion(text: string): { major: number; raw: string } | undefined {
  const line = text.trim().split("\n")[0] ?? "";
  const m = /^systemd (\d+)/.exec(line);
  return m ? { major: Number(m[1]), raw: line.replace(/^systemd /, "").trim() } : undefined;
}

export async function checkSysext(input: DoctorInput): Promise<Finding[]> {
  const r = await input.host.run("systemd-sysext", ["--version"]);
  if (!r) {
    return [{
      check: "systemd-sysext",
      status: "error",
      message: "systemd-sysext is not installed: ext cannot merge images into /usr",
      fix: `install systemd ≥ ${SYSEXT_ANY_ID} with systemd-sysext (Debian/Ubuntu: apt install systemd; some distributions split it into a 'systemd-container' or 'systemd-sysext' package)`,
    }];
  }
  const v = parseSystemdVersion(r.stdout);
  if (!v && r.exitCode !== 0) {
    return [{ check: "systemd-sysext", status: "warning", message: `'systemd-sysext --version' failed (exit ${r.exitCode}): ${firstError(r.stderr)}`, fix: "run 'systemd-sysext --version' to see why" }];
  }
  if (!v) {
    return [{ check: "systemd-sysext", status: "warning", message: `cannot read the version from 'systemd-sysext --version': ${JSON.stringify(r.stdout.trim().split("\n")[0] ?? "")}`, fix: "run 'systemd-sysext --version' and check that it is systemd's" }];
  }
  const details = { version: v.major, full: v.raw };
  if (v.major < SYSEXT_ANY_ID) {
    return [{
      check: "systemd-sysext",
      status: "error",
      message: `systemd-sysext is from systemd ${v.raw}; ext's images declare ID=_any, which systemd-sysext accepts from version ${SYSEXT_ANY_ID}`,
      fix: `update systemd to ${SYSEXT_ANY_ID} or newer`,
      details,
    }];
  }
  return [{ check: "systemd-sysext", status: "ok", message: `systemd-sysext from systemd ${v.raw}`, fix: null, details }];
}

const UNIT_DIRS = ["etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"];
const UNIT_SUFFIX = /\.(service|target|timer|path|socket|mount)$/;

/** ext's boot units (templates/ of this ext) are installed and, where they have [Install], enabled. */
export async function checkUnits(input: DoctorInput): Promise<Finding[]> {
  const { host, layout } = input;
  const units = (await host.readDir(input.templatesDir))?.filter((n) => UNIT_SUFFIX.test(n)) ?? [];
  if (units.length === 0) {
    return [{ check: "units", status: "info", message: `this ext ships no systemd units (nothing in ${input.templatesDir})`, fix: null }];
  }
  const missing: string[] = [];
  const disabled: string[] = [];
  for (const unit of units) {
    let installedAt: string | undefined;
    for (const dir of UNIT_DIRS) {
      if (await host.exists(join(layout.root, dir, unit))) {
        installedAt = dir;
        break;
      }
    }
    if (!installedAt) {
      missing.push(unit);
      continue;
    }
    const text = (await host.readText(join(input.templatesDir, unit))) ?? "";
    const wantedBy = [...text.matchAll(/^\s*(WantedBy|RequiredBy)=(.+)$/gm)].flatMap((m) => (m[2] ?? "").trim().split(/\s+/).map((t) => `${t}.${m[1] === "WantedBy" ? "wants" : "requires"}`));
    if (wantedBy.length === 0) continue;
    let enabled = false;
    for (const dir of ["etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system", "usr/local/lib/systemd/system"]) {
      for (const wants of wantedBy) if (await host.exists(join(layout.root, dir, wants, unit))) enabled = true;
    }
    if (!enabled) disabled.push(unit);
  }
  const findings: Finding[] = [];
  if (missing.length > 0) {
    findings.push({
      check: "units",
      status: "warning",
      message: `ext's boot units are not installed: ${missing.join(", ")}; without them a generation that fails to boot is not reverted, and ext.generation= on the kernel command line is ignored`,
      fix: "sudo ext setup (installs and enables them)",
      details: { missing },
    });
  }
  if (disabled.length > 0) {
    findings.push({
      check: "units",
      status: "warning",
      message: `ext's boot units are installed but not enabled: ${disabled.join(", ")}`,
      fix: `sudo ext setup, or: sudo systemctl enable ${disabled.join(" ")}`,
      details: { disabled },
    });
  }
  if (missing.length === 0) findings.push(...(await checkBootCommand(input)));
  if (findings.length === 0) findings.push({ check: "units", status: "ok", message: `ext's boot units are installed: ${units.join(", ")}`, fix: null });
  return findings;
}

/** The selector runs before anything is merged: what it starts must be there then. */
async function checkBootCommand(input: DoctorInput): Promise<Finding[]> {
  const { host, layout } = input;
  const unit = await host.readText(join(layout.root, "etc/systemd/system/ext-boot-select.service"));
  const exec = /^ExecStart=(\S+)(?:\s+(\S+))?/m.exec(unit ?? "");
  if (!exec) return [];
  const [, program = "", first = ""] = exec;
  if (program === "/bin/sh" && first === "/etc/ext/boot.sh") {
    if (await host.exists(join(layout.root, first))) return [];
    return [{
      check: "units",
      status: "error",
      message: `the boot units run ${first}, which is missing (a transient /etc loses it at reboot): ext-boot-select.service fails at every boot and a failing generation is not reverted`,
      fix: "sudo ext setup (writes it again)",
    }];
  }
  const target = program.startsWith("/usr/store/") ? program : await host.readLink(join(layout.root, program));
  if (target?.startsWith("/usr/store/")) {
    return [{
      check: "units",
      status: "warning",
      message: `the boot selector runs ${program}, which is in ext's image (${target}) and not merged yet when ext-boot-select.service runs: the selection fails at every boot`,
      fix: "sudo ext setup --from-image (the units then run the ext inside the image, through /etc/ext/boot.sh)",
    }];
  }
  return [];
}
