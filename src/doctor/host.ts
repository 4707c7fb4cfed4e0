import { lstat, readFile, readdir, readlink, statfs } from "node:fs/promises";
import { release } from "node:os";
import { run } from "../exec.js";
import { MissingToolError } from "../errors.js";
import { ErofsImage, S_IFDIR, S_IFLNK, S_IFMT } from "../image/erofs-reader.js";
import { openErofs } from "../image/ddi.js";
import { mkfsCapabilities } from "../image/compressors.js";
import type { Host, ImageLabel } from "./types.js";
import { chooseElevator } from "../elevate/choose.js";
import { probeElevation } from "../elevate/probe.js";

/** The machine ext runs on. */
export const realHost: Host = {
  async readText(path) {
    try {
      return await readFile(path, "utf8");
    } catch {
      return undefined;
    }
  },
  async exists(path) {
    try {
      await lstat(path);
      return true;
    } catch {
      return false;
    }
  },
  async stat(path) {
    try {
      const s = await lstat(path);
      return { uid: s.uid, mode: s.mode, dev: s.dev, isDirectory: s.isDirectory(), isSymlink: s.isSymbolicLink() };
    } catch {
      return undefined;
    }
  },
  async readDir(path) {
    try {
      return (await readdir(path)).sort();
    } catch {
      return undefined;
    }
  },
  async run(file, args) {
    try {
      const r = await run(file, args, { reject: false, timeoutMs: 20_000 });
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      if (e instanceof MissingToolError) return undefined;
      throw e;
    }
  },
  async statfs(path) {
    const s = await statfs(path);
    return { available: s.bavail * s.bsize, total: s.blocks * s.bsize };
  },
  uid: () => process.getuid?.() ?? -1,
  kernelRelease: () => release(),
  async mkfs() {
    try {
      return await mkfsCapabilities();
    } catch (e) {
      if (e instanceof MissingToolError) return undefined;
      throw e;
    }
  },
  elevation: () => chooseElevator(probeElevation()),
  async readLink(path) {
    return readlink(path).catch(() => undefined);
  },
  async fileAttributes(path) {
    const r = await realHost.run("lsattr", ["-d", path]).catch(() => undefined);
    if (!r || r.exitCode !== 0) return undefined;
    return /^(\S+)\s/.exec(r.stdout)?.[1];
  },
  imageText: (image, path) => inImage(image, async (erofs) => {
    const inode = await erofs.lookup(path);
    return inode === undefined ? undefined : (await erofs.read(inode)).toString("utf8");
  }),
  imageHas: (image, path) => inImage(image, async (erofs) => (await erofs.lookup(path)) !== undefined),
  imageLabels: (image) => inImage(image, async (erofs) => {
    const out: ImageLabel[] = [];
    for await (const { path, inode } of erofs.walk()) {
      const type = inode.mode & S_IFMT;
      const value = (await erofs.xattrs(inode)).find((x) => x.name === "security.selinux")?.value;
      out.push({
        path,
        kind: type === S_IFDIR ? "-d" : type === S_IFLNK ? "-l" : "--",
        label: value === undefined ? undefined : value.toString("utf8").replace(/\0+$/, ""),
      });
    }
    return out;
  }),
};

/** `fn` on the EROFS image at `image` (a verity DDI's root partition, in place); undefined when it
 *  cannot be opened or read as EROFS. */
async function inImage<T>(image: string, fn: (erofs: ErofsImage) => Promise<T | undefined>): Promise<T | undefined> {
  let erofs: ErofsImage;
  try {
    erofs = await openErofs(image);
  } catch {
    return undefined;
  }
  try {
    return await fn(erofs);
  } catch {
    return undefined;
  } finally {
    await erofs.close();
  }
}
