import { chmod, mkdir, writeFile } from "node:fs/promises";
import { posix } from "node:path";
import type { HostView } from "./host.js";
import { validateArchitecture, validateExtensionName } from "./names.js";

export const RELEASE_DIR = "usr/lib/extension-release.d";

export function releaseFileName(extensionName: string): string {
  return `extension-release.${extensionName}`;
}

export function releaseFileRel(extensionName: string): string {
  return `${RELEASE_DIR}/${releaseFileName(extensionName)}`;
}

/**
 * ID=_any: a Nix closure carries its own libraries and does not depend on the host OS or its version,
 * so the image stays valid across OS updates. ARCHITECTURE still binds it to the CPU it was built for.
 * Nothing else: SYSEXT_SCOPE defaults to system+portable, and EXTENSION_RELOAD_MANAGER (systemd ≥ 255)
 * is only for images that ship units, which these do not.
 */
export function releaseContent(architecture: string): string {
  return `ID=_any\nARCHITECTURE=${architecture}\n`;
}

export async function writeRelease(stageDir: string, extensionName: string, architecture: string, host: HostView): Promise<string> {
  validateExtensionName(extensionName);
  validateArchitecture(architecture);
  for (const d of ["usr/lib", RELEASE_DIR]) {
    await host.assertDirectoryAllowed(d);
    await mkdir(posix.join(stageDir, d), { recursive: true });
    await chmod(posix.join(stageDir, d), 0o755);
  }
  const rel = releaseFileRel(extensionName);
  const full = posix.join(stageDir, rel);
  await writeFile(full, releaseContent(architecture), { flag: "wx" });
  await chmod(full, 0o644);
  return rel;
}

/** os-release / extension-release syntax: KEY=value lines, optional quotes, # comments. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) {
      const quote = value[0];
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\(["\\$`])/g, "$1");
    }
    out[key] = value;
  }
  return out;
}

/**
 * Why systemd-sysext (as of v252–v257) would not merge an image with this extension-release on a host
 * with this os-release, or undefined when it would. Mirrors extension_release_validate(): SYSEXT_SCOPE
 * must include "system"; ARCHITECTURE, when set and not _any, must be the host's; ID must be _any or the
 * host's, and then SYSEXT_LEVEL or VERSION_ID must match.
 */
export function releaseMismatch(
  release: Record<string, string>, hostOsRelease: Record<string, string>, hostArchitecture: string,
): string | undefined {
  const scope = release.SYSEXT_SCOPE;
  if (scope !== undefined && !scope.split(/\s+/).includes("system")) return `SYSEXT_SCOPE=${scope} does not include 'system'`;
  const arch = release.ARCHITECTURE;
  if (arch !== undefined && arch !== "" && arch !== "_any" && arch !== hostArchitecture) {
    return `ARCHITECTURE=${arch} does not match this host's ${hostArchitecture}`;
  }
  const id = release.ID;
  if (id === undefined || id === "") return "there is no ID=";
  if (id === "_any") return undefined;
  if (id !== hostOsRelease.ID) return `ID=${id} does not match the host's ID=${hostOsRelease.ID ?? "(none)"}`;
  const hostLevel = hostOsRelease.SYSEXT_LEVEL;
  const hostVersion = hostOsRelease.VERSION_ID;
  if (!hostLevel && !hostVersion) return undefined;
  if (hostLevel && release.SYSEXT_LEVEL) {
    return hostLevel === release.SYSEXT_LEVEL ? undefined : `SYSEXT_LEVEL=${release.SYSEXT_LEVEL} does not match the host's ${hostLevel}`;
  }
  if (hostVersion) {
    if (!release.VERSION_ID) return `there is no VERSION_ID= to compare with the host's ${hostVersion}`;
    return release.VERSION_ID === hostVersion ? undefined : `VERSION_ID=${release.VERSION_ID} does not match the host's ${hostVersion}`;
  }
  return undefined;
}
