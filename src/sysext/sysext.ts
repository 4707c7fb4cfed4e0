import { run } from "../exec.js";
import { ActivationError, ToolFailedError } from "../errors.js";
import type { Layout } from "../generations/layout.js";

function rootArgs(l: Layout): string[] {
  return l.root === "/" ? [] : [`--root=${l.root}`];
}

/** Re-merges every extension (ours and the host's). Not atomic in systemd itself, but a refresh
 *  that fails keeps the old overlay. */
export async function refresh(l: Layout): Promise<void> {
  try {
    await run("systemd-sysext", ["refresh", ...rootArgs(l)]);
  } catch (e) {
    if (e instanceof ToolFailedError) {
      throw new ActivationError("systemd-sysext refused to merge the extensions", {
        details: e.details,
        hint: "run 'systemd-sysext status' and 'journalctl -b' for systemd's reasons",
        cause: e,
      });
    }
    throw e;
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
