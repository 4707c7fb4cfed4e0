import { realpath } from "node:fs/promises";
import { dirname, isAbsolute, normalize, sep } from "node:path";
import { errnoCode } from "../errors.js";

// Recovery deletes what the journal names. The journal is a file on disk, so what it names is
// checked before anything is removed: only paths inside ext's own temporary directory, written
// plainly (absolute, no `..`), whose parent directories resolve inside it (no symlink leading out).

/** Why `path` may not be removed as a temporary file of `tmpDir`, or null when it may. */
export async function unconfinedReason(tmpDir: string, path: unknown): Promise<string | null> {
  if (typeof path !== "string" || path === "") return "not a path";
  if (!isAbsolute(path) || normalize(path) !== path || path.split("/").includes("..")) return "not a plain absolute path";
  if (!path.startsWith(tmpDir + sep)) return `outside ${tmpDir}`;
  // The entry itself may be a symlink (removing one removes the link); its parents must not lead out.
  let realTmp: string;
  let realParent: string;
  try {
    realTmp = await realpath(tmpDir);
    realParent = await realpath(dirname(path));
  } catch (e) {
    // Nothing there to remove, or a parent that is not a directory: nothing to do either way.
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return "already gone";
    throw e;
  }
  if (realParent !== realTmp && !realParent.startsWith(realTmp + sep)) return `its directory resolves outside ${tmpDir} (to ${realParent})`;
  return null;
}
