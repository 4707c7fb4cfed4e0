import { dirname, join } from "node:path";
import { formatBytes } from "../base/format.js";
import type { DoctorInput, Finding, Host } from "./types.js";
import { mergedExtensions } from "./sysext-status.js";

// Room for images and builds, hard links between images/ and the extensions directory, and
// /usr/store, which ext's images own while merged.

/** Below this an image of a typical closure may not fit; below the warning mark a few more won't. */
export const SPACE_ERROR = 256 * 1024 ** 2;
export const SPACE_WARNING = 2 * 1024 ** 3;

/** The closest ancestor of `path` that exists (the state directory may not be created yet). */
export async function existingAncestor(host: Host, path: string): Promise<string> {
  let p = path;
  while (!(await host.exists(p)) && dirname(p) !== p) p = dirname(p);
  return p;
}

async function spaceFinding(input: DoctorInput, check: string, path: string, what: string): Promise<Finding> {
  const at = await existingAncestor(input.host, path);
  let space;
  try {
    space = await input.host.statfs(at);
  } catch (e) {
    return { check, status: "warning", message: `cannot tell the free space for ${what} (${at}): ${(e as Error).message}`, fix: `check the space by hand: df -h ${at}` };
  }
  const details = { path, measuredAt: at, available: space.available, total: space.total };
  const free = `${formatBytes(space.available)} free for ${what} (${path})`;
  if (space.available < SPACE_ERROR) {
    return { check, status: "error", message: `only ${free}`, fix: "free some space; 'sudo ext gc --keep 1' deletes images of old generations, 'nix-collect-garbage' old store paths", details };
  }
  if (space.available < SPACE_WARNING) {
    return { check, status: "warning", message: `only ${free}: large packages may not fit`, fix: "free some space; 'sudo ext gc --keep 1' deletes images of old generations", details };
  }
  return { check, status: "ok", message: free, fix: null, details };
}

export async function checkSpace(input: DoctorInput): Promise<Finding[]> {
  const storeRoot = input.nix.store.root === "/" ? "/nix/store" : join(input.nix.store.root, "nix/store");
  return [
    await spaceFinding(input, "space-images", input.layout.imagesDir, "images"),
    await spaceFinding(input, "space-nix-store", storeRoot, "Nix builds"),
  ];
}

/** Activation hard-links an image from images/ into the extensions directory: one file system. */
export async function checkSameFilesystem(input: DoctorInput): Promise<Finding[]> {
  const { host, layout } = input;
  const a = await existingAncestor(host, layout.imagesDir);
  const b = await existingAncestor(host, layout.extensionsDir);
  const [sa, sb] = [await host.stat(a), await host.stat(b)];
  if (!sa || !sb) return [];
  if (sa.dev === sb.dev) {
    return [{ check: "same-filesystem", status: "ok", message: `${layout.imagesDir} and ${layout.extensionsDir} are on one file system (images are hard-linked, never copied)`, fix: null }];
  }
  return [{
    check: "same-filesystem",
    status: "error",
    message: `${layout.imagesDir} and ${layout.extensionsDir} are on different file systems: ext activates an image by hard-linking it, which cannot cross file systems`,
    fix: `keep ${layout.stateDir} and ${layout.extensionsDir} on one file system (do not mount a separate file system on only one of them)`,
    details: { imagesAt: a, extensionsAt: b },
  }];
}

/** Where systemd-sysext looks for extensions (highest precedence first). */
export const EXTENSION_DIRS = ["etc/extensions", "run/extensions", "var/lib/extensions", "usr/local/lib/extensions", "usr/lib/extensions"];

export async function checkUsrStore(input: DoctorInput): Promise<Finding[]> {
  const { host, layout, extensionName } = input;
  const findings: Finding[] = [];
  const usrStore = join(layout.root, "usr/store");
  const present = await host.exists(usrStore);
  const merged = await mergedExtensions(input);
  const oursMerged = merged?.includes(extensionName) ?? false;

  // Other extensions that bring a usr/store of their own would hide ext's store paths, or be hidden.
  const others: string[] = [];
  const unreadable: string[] = [];
  for (const dir of EXTENSION_DIRS) {
    const full = join(layout.root, dir);
    for (const entry of (await host.readDir(full)) ?? []) {
      const name = entry.replace(/\.raw$/, "");
      if (name === extensionName || entry.startsWith(".")) continue;
      const path = join(full, entry);
      const s = await host.stat(path);
      if (s?.isDirectory) {
        if (await host.exists(join(path, "usr/store"))) others.push(path);
      } else if (entry.endsWith(".raw")) {
        const has = await host.imageHas(path, "usr/store");
        if (has === true) others.push(path);
        else if (has === undefined) unreadable.push(path);
      }
    }
  }
  if (others.length > 0) {
    findings.push({
      check: "usr-store",
      status: "error",
      message: `other extensions also provide /usr/store: ${others.join(", ")}; while merged together one hides the other's files`,
      fix: "remove those extensions, or rebuild them without usr/store: ext owns /usr/store",
      details: { others },
    });
  }
  if (present && !oursMerged && merged !== undefined && others.length === 0) {
    findings.push({
      check: "usr-store",
      status: "error",
      message: `${usrStore} exists but ext's extension is not merged: something else uses /usr/store, and ext's images would hide it while merged`,
      fix: `find out what owns it ('rpm -qf ${usrStore}' or 'dpkg -S ${usrStore}') and move it away`,
    });
  }
  if (findings.length === 0) {
    findings.push({
      check: "usr-store",
      status: "ok",
      message: present ? `/usr/store comes from ext's merged extension '${extensionName}'` : "/usr/store is free for ext",
      fix: null,
      ...(unreadable.length > 0 ? { details: { notInspected: unreadable } } : {}),
    });
  }
  return findings;
}
