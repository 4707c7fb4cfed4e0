import { readdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { errnoCode } from "../errors.js";
import { isTempNameOf } from "../fsutil.js";
import { activeLinkPath, type Layout } from "../base/layout.js";

// What a run killed at the wrong moment (or a failure path that could not clean up, such as a full
// disk) leaves behind: the scratch of a transaction in tmp/ (stages, pack-*.raw, mkfs.erofs's
// .pack-*.tmp), and the temporary names of atomic writes and of the link switch. Swept under the lock
// after recovery, when no transaction is running and the journal has been dealt with, so nothing
// found is in use. Only ext's names are touched: in /var/lib/extensions, only the temporary names
// of ext's own link.

/** Removes leftovers; returns how many entries went. */
export async function sweepLeftovers(l: Layout, extensionName: string): Promise<number> {
  let removed = 0;
  const sweep = async (dir: string, matches: (name: string) => boolean) => {
    for (const name of await entries(dir)) {
      if (!matches(name)) continue;
      await rm(join(dir, name), { recursive: true, force: true });
      removed++;
    }
  };
  // Everything in tmp/ belongs to a transaction, and none is running.
  await sweep(l.tmpDir, () => true);
  for (const dir of [l.stateDir, l.generationsDir, l.imagesDir]) await sweep(dir, (n) => isTempNameOf(n));
  const link = basename(activeLinkPath(l, extensionName));
  await sweep(l.extensionsDir, (n) => isTempNameOf(n, link));
  return removed;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return [];
    throw e;
  }
}
