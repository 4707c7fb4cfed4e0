import { constants } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../exec.js";
import { ActivationError, ToolFailedError } from "../errors.js";
import type { Layout } from "../base/layout.js";

function rootArgs(l: Layout): string[] {
  return l.root === "/" ? [] : [`--root=${l.root}`];
}

/** EXT_SYSEXT_IMAGE_POLICY: an --image-policy= for ext's merges. The tests set it where the kernel has
 *  no device-mapper, to merge a verity DDI's root partition unprotected (docs/fleet.md); a machine
 *  leaves it unset and systemd-sysext sets up dm-verity itself. */
function policyArgs(): string[] {
  const policy = process.env["EXT_SYSEXT_IMAGE_POLICY"];
  return policy ? [`--image-policy=${policy}`] : [];
}

/** Re-merges every extension (ours and the host's). Not atomic in systemd itself, but a refresh
 *  that fails keeps the old overlay. */
export async function refresh(l: Layout): Promise<void> {
  try {
    await run("systemd-sysext", ["refresh", ...policyArgs(), ...rootArgs(l)]);
  } catch (e) {
    if (e instanceof ToolFailedError) {
      // One bad image stops systemd-sysext from merging every extension, and systemd does not always
      // say which: name the images there that are not disk images at all.
      const suspects = await unreadableImages(l).catch(() => []);
      throw new ActivationError(`systemd-sysext refused to merge the extensions${suspects.length > 0 ? `: ${suspects.join("; ")}` : ""}`, {
        details: e.details,
        hint: suspects.length > 0
          ? "one bad image stops every extension from merging: move it away, then run the command again"
          : "run 'systemd-sysext status' and 'journalctl -b' for systemd's reasons",
        cause: e,
      });
    }
    throw e;
  }
}

/** The directories systemd-sysext reads images from (systemd-sysext(8)). */
const IMAGE_DIRS = ["etc/extensions", "run/extensions", "var/lib/extensions", "usr/lib/extensions", "usr/local/lib/extensions"];

/** `.raw` files in sysext's directories with no EROFS, squashfs or partition-table signature. */
export async function unreadableImages(l: Layout): Promise<string[]> {
  const found: string[] = [];
  for (const dir of IMAGE_DIRS.map((d) => join(l.root, d))) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => n.endsWith(".raw") && !n.startsWith(".")).sort()) {
      const file = join(dir, name);
      const why = await notAnImage(file);
      if (why) found.push(`${file} ${why}`);
    }
  }
  return found;
}

async function notAnImage(file: string): Promise<string | null> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return null; // gone, or not ours to read: systemd's own message has to do
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) return null;
    const head = Buffer.alloc(8192);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const at = (offset: number, magic: string) => bytesRead >= offset + magic.length && head.toString("latin1", offset, offset + magic.length) === magic;
    const erofs = bytesRead >= 1028 && head.readUInt32LE(1024) === 0xe0f5e1e2;
    if (erofs || at(0, "hsqs") || at(512, "EFI PART") || at(4096, "EFI PART")) return null;
    return "is not a disk image (no EROFS, squashfs or GPT signature)";
  } finally {
    await handle.close();
  }
}

export interface HierarchyStatus {
  hierarchy: string;
  extensions: string[];
}

export async function status(l: Layout): Promise<HierarchyStatus[]> {
  const result = await run("systemd-sysext", ["status", "--json=short", ...rootArgs(l)], { reject: false });
  if (result.exitCode !== 0) return [];
  try {
    const parsed = JSON.parse(result.stdout) as { hierarchy: string; extensions: string[] | string }[];
    return parsed.map((h) => ({
      hierarchy: h.hierarchy,
      // systemd prints "none" (a string) when nothing is merged on a hierarchy.
      extensions: Array.isArray(h.extensions) ? h.extensions : [],
    }));
  } catch {
    return [];
  }
}

export async function isMerged(l: Layout, extensionName: string): Promise<boolean> {
  const hierarchies = await status(l);
  return hierarchies.some((h) => h.hierarchy === "/usr" && h.extensions.includes(extensionName));
}
