import { link, lstat, rename, unlink, stat, readdir, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ActivationError, StateError, errnoCode } from "../errors.js";
import { assertDirectory, kindOf } from "../base/state-file.js";
import { checkStateDirs } from "../generations/store.js";
import { fsyncDir, tempName } from "../fsutil.js";
import { activeLinkPath, type Layout } from "../base/layout.js";

// `<root>/var/lib/extensions/<name>.raw` is a hard link to one image in images/. systemd-sysext
// ignores symlinked images under --root, and a hard link survives the image being renamed or gc'd.
// The switch is link-to-temp + rename(2), so the directory always holds the old image or the new one.

export async function linkActiveImage(l: Layout, extensionName: string, image: string | null): Promise<void> {
  const target = activeLinkPath(l, extensionName);
  await assertDirectory(l.extensionsDir, `move it away (sudo mv ${l.extensionsDir} /root/); ext makes the directory again`);
  await mkdir(l.extensionsDir, { recursive: true });
  await assertNotDirectory(target);
  if (image === null) {
    try {
      await unlink(target);
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e;
    }
  } else {
    // Already this image (same inode): rename(2) between two links of one inode does nothing and
    // would leave the temporary link behind, so there is nothing to do.
    if (await sameFile(image, target)) return;
    const tmp = tempName(target);
    try {
      await link(image, tmp);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") {
        throw new StateError(`the image to link, ${image}, is missing`, {
          hint: "it was removed outside ext; 'ext generations' and 'ext doctor' show which generations can still be used ('sudo ext rollback --to N')",
          cause: e,
        });
      }
      if (errnoCode(e) === "EXDEV") {
        throw new ActivationError(`${l.extensionsDir} and ${l.imagesDir} are on different file systems`, {
          hint: "ext activates an image by hard-linking it; keep /var/lib/ext and /var/lib/extensions on one file system",
          cause: e,
        });
      }
      throw e;
    }
    try {
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  }
  await fsyncDir(l.extensionsDir);
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    const [x, y] = await Promise.all([stat(a), stat(b)]);
    return x.ino === y.ino && x.dev === y.dev;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return false;
    throw e;
  }
}

/** A directory (or anything but a file or a link) where ext's link belongs is not ext's to remove. */
async function assertNotDirectory(target: string): Promise<void> {
  let s;
  try {
    s = await lstat(target);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return;
    throw e;
  }
  if (!s.isFile() && !s.isSymbolicLink()) {
    throw new StateError(`${target} is ${kindOf(s)}, where ext links its image`, {
      hint: `it is not ext's: move it away (sudo mv ${target} /root/), then run the command again`,
    });
  }
}

/** Which image in images/ the active link is (by inode), null when nothing is linked,
 *  "foreign" when a file is there that ext did not put there. */
export async function activeImageSha(l: Layout, extensionName: string): Promise<string | null | "foreign"> {
  let linked;
  try {
    linked = await stat(activeLinkPath(l, extensionName));
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return null;
    if (errnoCode(e) === "ENOTDIR") await checkStateDirs(l);
    throw e;
  }
  let names: string[] = [];
  try {
    names = await readdir(l.imagesDir);
  } catch (e) {
    if (errnoCode(e) === "ENOTDIR") await checkStateDirs(l);
    if (errnoCode(e) !== "ENOENT") throw e;
  }
  for (const name of names) {
    const m = /^([0-9a-f]{64})\.raw$/.exec(name);
    if (!m) continue;
    const s = await stat(join(l.imagesDir, name));
    if (s.ino === linked.ino && s.dev === linked.dev) return m[1]!;
  }
  return "foreign";
}
