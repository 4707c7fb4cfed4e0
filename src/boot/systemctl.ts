import type { Layout } from "../base/layout.js";
import { pathExists } from "../fsutil.js";
import { run } from "../exec.js";

// After ext wrote or removed units on the running system (not under --root), systemd is told, as
// `systemctl enable --now` would: without it a new timer waits for the next boot to be armed, and a
// removed one keeps firing until then. Elsewhere (a tree under --root, a container without systemd)
// nothing is run: the links take effect when that system boots.

/** Runs `systemctl ARGS` for each of COMMANDS, in order, on a running systemd for the root `/`.
 *  Returns null where there is none; else the commands that failed (the caller says what that
 *  means: a failed reload is a warning, never a failed command). */
export async function tellSystemd(l: Layout, commands: string[][]): Promise<string[] | null> {
  if (l.root !== "/" || !(await pathExists("/run/systemd/system"))) return null;
  const failed: string[] = [];
  for (const args of commands) {
    const r = await run("systemctl", args, { reject: false }).catch(() => ({ exitCode: 1 }));
    if (r.exitCode !== 0) failed.push(`systemctl ${args.join(" ")}`);
  }
  return failed;
}
