import { lstat } from "node:fs/promises";
import { sha256File } from "../image/pack.js";
import { DamagedImageError, errnoCode } from "../errors.js";
import { imagePath, type Layout } from "../base/layout.js";
import type { ImageInfo } from "./record.js";

// Images are content-addressed (images/<sha256>.raw), so the name says what the bytes must be. A byte
// changed in place (a bad disk, a stray write) keeps the name and the size, and neither fsck.erofs nor
// the kernel's mount notice damage in file data: the programs in it crash later (SIGBUS) instead. So
// before an image that was packed earlier goes live (reuse, rollback) its bytes are hashed again and
// compared with its record. This reads the whole image (~0.33 s for 271 MiB here, see docs/design.md).

/** Throws DamagedImageError unless the image file holds exactly the bytes its record describes.
 *  `owner` names who needs it in the message ("generation 3"). */
export async function assertImageIntact(l: Layout, image: ImageInfo, owner: string): Promise<void> {
  const file = imagePath(l, image.sha256);
  const problem = await imageProblem(file, image);
  if (problem === null) return;
  throw new DamagedImageError(`the image of ${owner} is ${problem}: ${file}`, {
    hint: `nothing was switched. It was changed outside ext: 'sudo ext repair' packs it again from its store paths (or sets it aside); installing the same packages again also packs it anew`,
  });
}

/** What is wrong with the image file, or null when it matches its record. */
export async function imageProblem(file: string, image: Pick<ImageInfo, "sha256" | "size">, options: { hash?: boolean } = {}): Promise<string | null> {
  let s;
  try {
    s = await lstat(file);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return "missing";
    throw e;
  }
  if (!s.isFile()) return `not a regular file (${s.isDirectory() ? "a directory" : s.isSymbolicLink() ? "a symbolic link" : "a special file"})`;
  if (s.size !== image.size) return `damaged (${s.size} bytes, its record says ${image.size})`;
  if (options.hash === false) return null;
  const sha256 = await sha256File(file);
  if (sha256 !== image.sha256) return `damaged (its sha256 is ${sha256.slice(0, 12)}…, its name and record say ${image.sha256.slice(0, 12)}…)`;
  return null;
}
