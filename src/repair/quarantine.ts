import { lstat, mkdir, rename } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { StateError, errnoCode } from "../errors.js";
import type { Layout } from "../base/layout.js";

// What `ext repair` finds damaged is moved aside, never deleted: a damaged record may still be the
// only copy of what a generation held, and a person may want to look at it. Everything moved by one
// repair goes below one directory, `/var/lib/ext/damaged/<time>/`, at its path under the root
// (`…/var/lib/ext/generations/3.json`), so nothing moved aside can collide with another and the way
// back is a plain `mv`. The state directory itself (when it is not a directory) cannot go below
// itself: it goes next to it.

export class Quarantine {
  private readonly stamp = new Date().toISOString().replace(/[:.]/g, "-");
  /** Everything moved aside: where it was, where it is, why. */
  readonly moved: { from: string; to: string; why: string }[] = [];

  constructor(private readonly l: Layout) {}

  /** The directory this repair moves things into (it exists once something was moved). */
  get dir(): string {
    return join(this.l.stateDir, "damaged", this.stamp);
  }

  /** Moves `path` aside (same file system: a rename, so an image keeps its inode). */
  async moveAside(path: string, why: string): Promise<string> {
    const to = path === this.l.stateDir ? `${path}.damaged-${this.stamp}` : join(this.dir, relative(this.l.root, path));
    await mkdir(dirname(to), { recursive: true, mode: 0o700 });
    try {
      await rename(path, to);
    } catch (e) {
      // /var/lib/extensions on another file system than /var/lib/ext (ext needs one, but repair may find two).
      if (errnoCode(e) === "EXDEV") throw new StateError(`cannot move ${path} aside to ${to}: another file system`, { hint: `move it away by hand (sudo mv ${path} /root/), then run 'sudo ext repair' again` });
      throw e;
    }
    this.moved.push({ from: path, to, why });
    return to;
  }
}

/** The damaged/ directory: where earlier repairs moved things (for doctor's note). */
export function damagedRoot(l: Layout): string {
  return join(l.stateDir, "damaged");
}

/** lstat that says "absent" instead of throwing. */
export async function lstatOrNull(path: string) {
  try {
    return await lstat(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return null;
    throw e;
  }
}
