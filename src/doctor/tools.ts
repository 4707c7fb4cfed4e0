import { parseNixVersion, atLeast } from "../nix/version.js";
import { KERNEL_MINIMUM, kernelMounts } from "../image/compressors.js";
import type { DoctorInput, Finding } from "./types.js";

// The programs ext runs: nix (resolve and build) and mkfs.erofs (pack).

/** `nix-command` and flakes exist from Nix 2.4; ext is tested from 2.8 (Debian 12) on. */
export const NIX_MIN = { major: 2, minor: 4 };
export const NIX_TESTED = { major: 2, minor: 8 };

export async function checkNix(input: DoctorInput): Promise<Finding[]> {
  const r = await input.host.run("nix", ["--version"]);
  if (!r) {
    return [{
      check: "nix",
      status: "error",
      message: "nix is not installed: ext resolves and builds packages with Nix",
      fix: "install Nix (Debian/Ubuntu: sudo apt install nix-bin; elsewhere: https://nixos.org/download)",
    }];
  }
  if (r.exitCode !== 0) {
    return [{ check: "nix", status: "warning", message: `'nix --version' failed (exit ${r.exitCode}): ${firstError(r.stderr)}`, fix: "run 'nix --version' as this user to see why (a HOME it cannot read, a broken installation)" }];
  }
  let v;
  try {
    v = parseNixVersion(r.stdout);
  } catch {
    return [{ check: "nix", status: "warning", message: `cannot read a version from 'nix --version': ${JSON.stringify(r.stdout.trim())}`, fix: "run 'nix --version' and check that the 'nix' on PATH is Nix" }];
  }
  const version = `${v.major}.${v.minor}.${v.patch}`;
  const details = { version, flavour: v.flavour, raw: v.raw };
  if (v.flavour !== "lix" && !atLeast(v, NIX_MIN.major, NIX_MIN.minor)) {
    return [{ check: "nix", status: "error", message: `Nix ${version} is too old: ext needs the 'nix' command and flakes (Nix ≥ ${NIX_MIN.major}.${NIX_MIN.minor})`, fix: "update Nix", details }];
  }
  if (v.flavour === "nix" && !atLeast(v, NIX_TESTED.major, NIX_TESTED.minor)) {
    return [{ check: "nix", status: "warning", message: `Nix ${version} is older than any version ext is tested with (${NIX_TESTED.major}.${NIX_TESTED.minor})`, fix: "update Nix", details }];
  }
  return [{ check: "nix", status: "ok", message: `${v.raw}`, fix: null, details }];
}

/** The line of a tool's stderr that says what went wrong, without colors. */
export function firstError(stderr: string): string {
  const lines = stderr.replace(/\x1b\[[0-9;]*m/g, "").split("\n").map((l) => l.trim()).filter(Boolean);
  const said = lines.map((l) => /\berror: .*/i.exec(l)?.[0]).find((l) => l !== undefined);
  return (said ?? lines.find((l) => /error/i.test(l)) ?? lines[0] ?? "no message").slice(0, 300);
}

/** erofs-utils has no --version in mkfs.erofs before 1.7; its siblings have -V. */
async function erofsUtilsVersion(input: DoctorInput): Promise<string | undefined> {
  for (const [tool, args] of [["mkfs.erofs", ["--version"]], ["dump.erofs", ["-V"]], ["fsck.erofs", ["-V"]]] as const) {
    const r = await input.host.run(tool, [...args]);
    const m = r && r.exitCode === 0 ? /(\d+\.\d+(?:\.\d+)?)/.exec(r.stdout + r.stderr) : null;
    if (m) return m[1];
  }
  return undefined;
}

export async function checkMkfs(input: DoctorInput): Promise<Finding[]> {
  const caps = await input.host.mkfs();
  if (!caps) {
    return [{
      check: "mkfs.erofs",
      status: "error",
      message: "mkfs.erofs is not installed: ext packs images with it",
      fix: "install erofs-utils (sudo apt install erofs-utils / sudo dnf install erofs-utils)",
    }];
  }
  const version = await erofsUtilsVersion(input);
  const kernel = input.host.kernelRelease();
  // What mkfs.erofs packs and what the running kernel mounts are two questions: offer both answers.
  const mounted = caps.compressors.filter((c) => kernelMounts(c, kernel));
  const notMounted = caps.compressors.filter((c) => !kernelMounts(c, kernel));
  const details = { version: version ?? null, compressors: caps.compressors, kernelMounts: mounted, workers: caps.workers, appends: caps.incremental };
  const label = `mkfs.erofs${version ? ` ${version}` : ""}`;
  const wanted = input.compression.split(",")[0] ?? "";
  const offer = mounted.join(", ") || "no compression";
  if (wanted !== "none" && wanted !== "" && !caps.compressors.includes(wanted)) {
    return [{
      check: "mkfs.erofs",
      status: "error",
      message: `${label} cannot compress with '${wanted}' (it offers: ${caps.compressors.join(", ") || "no compression"})`,
      fix: `pass --compression ${mounted[0] ?? "none"} (or none), or install an erofs-utils built with ${wanted}`,
      details,
    }];
  }
  if (wanted !== "none" && wanted !== "" && !kernelMounts(wanted, kernel)) {
    const min = KERNEL_MINIMUM[wanted];
    return [{
      check: "mkfs.erofs",
      status: "error",
      message: `the running kernel (Linux ${kernel}) cannot mount EROFS images compressed with '${wanted}'${min ? ` (needs Linux ≥ ${min[0]}.${min[1]})` : ""}`,
      fix: `pass --compression ${mounted[0] ?? "none"} (this kernel mounts: ${offer})`,
      details,
    }];
  }
  const why = notMounted.length > 0
    ? `; not offered: ${notMounted.map((c) => `${c} (needs Linux ≥ ${KERNEL_MINIMUM[c]!.join(".")}, this is ${kernel})`).join(", ")}`
    : "";
  return [{
    check: "mkfs.erofs",
    status: "ok",
    message: `${label} (compression: ${offer}${caps.workers ? "; compresses on several threads" : ""}${why})`,
    fix: null,
    details,
  }];
}
