import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { join, posix } from "node:path";
import { run } from "../exec.js";

// What an image holds, as one hash: every entry's path, type, permission bits, link target and file
// content, in a fixed order. Owners and mtimes are left out: mkfs.erofs sets them (--all-root, -T),
// whatever the stage had. Two trees with equal digests hold the same entries, whatever bytes their
// images are: `ext repair` proves a full pack of an appended generation by this digest of its stage
// (src/repair/), since an appended image's bytes depend on the history it was appended through.

/** The digest of a directory tree (a stage, or an extracted image). */
export async function treeDigest(root: string): Promise<string> {
  const hash = createHash("sha256");
  const walk = async (rel: string): Promise<void> => {
    const full = rel === "." ? root : posix.join(root, rel);
    const st = await lstat(full);
    const perm = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) {
      hash.update(`${rel}\0l\0${perm}\0`).update(await readlink(full, { encoding: "buffer" })).update("\n");
    } else if (st.isFile()) {
      hash.update(`${rel}\0f\0${perm}\0${await fileSha256(full)}\n`);
    } else if (st.isDirectory()) {
      hash.update(`${rel}\0d\0${perm}\n`);
      for (const name of (await readdir(full)).sort()) await walk(rel === "." ? name : `${rel}/${name}`);
    } else {
      hash.update(`${rel}\0o\0${perm}\n`);
    }
  };
  await walk(".");
  return hash.digest("hex");
}

/** The digest of what an image holds: extracted (fsck.erofs --extract decompresses and checks every
 *  file, and keeps modes when run as root, as repair is) into a scratch directory under `scratchDir`,
 *  which is removed afterwards. */
export async function imageTreeDigest(image: string, scratchDir: string): Promise<string> {
  const dir = await mkdtemp(join(scratchDir, "tree-"));
  try {
    const target = join(dir, "root");
    await run("fsck.erofs", [`--extract=${target}`, "--preserve-perms", image]);
    return await treeDigest(target);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
