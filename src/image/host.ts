import { constants } from "node:fs";
import { lstat, open, readlink } from "node:fs/promises";
import { posix } from "node:path";
import { errnoCode, UnsafeImageError } from "../errors.js";
import { wrapperTarget } from "./wrapper.js";

export type HostKind = "missing" | "dir" | "symlink" | "file";

const MAX_LINK_DEPTH = 40;

/** Whether the file is exactly a wrapper ext's farm writes (small: only its first bytes are read). */
async function isWrapper(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const buf = Buffer.alloc(1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return bytesRead < buf.length && wrapperTarget(buf.toString("utf8", 0, bytesRead)) !== undefined;
  } catch {
    return false;
  } finally {
    await fh?.close();
  }
}

// What the host's root holds at paths the image would add. overlayfs puts the image's directories over
// the host's: a real directory where the host has a symlink (usr/sbin → bin, usr/lib64 → lib) replaces
// the symlink and breaks every path through it, and a file where the host has one hides the host's.
export class HostView {
  private readonly kinds = new Map<string, Promise<HostKind>>();
  private readonly placed = new Map<string, Promise<string>>();

  constructor(readonly root: string) {}

  /** lstat of `<root>/<rel>`, cached. `rel` is relative ("usr/bin"); a Buffer keeps non-UTF-8 names exact. */
  kind(rel: string | Buffer): Promise<HostKind> {
    const key = typeof rel === "string" ? rel : rel.toString("latin1");
    let k = this.kinds.get(key);
    if (k === undefined) {
      k = this.lstatKind(rel);
      this.kinds.set(key, k);
    }
    return k;
  }

  private async lstatKind(rel: string | Buffer): Promise<HostKind> {
    const full = typeof rel === "string"
      ? posix.join(this.root, rel)
      : Buffer.concat([Buffer.from(this.root.endsWith("/") ? this.root : this.root + "/"), rel]);
    try {
      const st = await lstat(full);
      if (st.isSymbolicLink()) return "symlink";
      return st.isDirectory() ? "dir" : "file";
    } catch (e) {
      const code = errnoCode(e);
      if (code === "ENOENT" || code === "ENOTDIR") return "missing";
      throw e;
    }
  }

  /** A link into /usr/store is ext's own, from the generation merged now: the image only ever
   *  links there, and the host's OS has no /usr/store. Replacing it shadows nothing of the host's. */
  async isOwnLink(rel: string): Promise<boolean> {
    const kind = await this.kind(rel);
    // A wrapper the farm writes for a command started by its own path (farm.ts) counts as a link.
    if (kind === "file") return isWrapper(posix.join(this.root, rel));
    if (kind !== "symlink") return false;
    const target = await readlink(posix.join(this.root, rel));
    return target.startsWith("/usr/store/");
  }

  /** Refuses a real directory at `rel` where the host has a symlink or a non-directory. */
  async assertDirectoryAllowed(rel: string | Buffer): Promise<HostKind> {
    const k = await this.kind(rel);
    if (k === "symlink" || k === "file") {
      const shown = typeof rel === "string" ? rel : rel.toString("utf8");
      throw new UnsafeImageError(
        `the image would put a directory at /${shown}, where the host has a ${k === "symlink" ? "symlink" : "file"}`,
        { hint: "merging it would replace the host's entry for every program on the system" },
      );
    }
    return k;
  }

  /**
   * Where a directory of the image has to go so it merges with the host's instead of replacing a
   * symlink: `usr/sbin` on a host where usr/sbin → bin becomes `usr/bin`. Symlinks are followed inside
   * the host root; the result must stay in usr/.
   */
  placeDirectory(rel: string): Promise<string> {
    let p = this.placed.get(rel);
    if (p === undefined) {
      p = this.resolve(rel, 0);
      this.placed.set(rel, p);
    }
    return p;
  }

  private async resolve(rel: string, depth: number): Promise<string> {
    if (depth > MAX_LINK_DEPTH) throw new UnsafeImageError(`too many levels of symlinks on the host at /${rel}`);
    const parts = rel.split("/").filter((c) => c !== "" && c !== ".");
    const done: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const here = [...done, parts[i]!].join("/");
      const k = await this.kind(here);
      if (k === "symlink") {
        const target = await readlink(posix.join(this.root, here));
        const base = target.startsWith("/") ? target : posix.join(done.join("/"), target);
        const rest = parts.slice(i + 1);
        const next = posix.normalize(posix.join(base, ...rest)).replace(/^\/+/, "");
        if (next === ".." || next.startsWith("../") || (next !== "usr" && !next.startsWith("usr/"))) {
          throw new UnsafeImageError(`/${here} on the host points to ${target}, outside /usr`, {
            hint: "an extension can only add files below /usr",
          });
        }
        return this.resolve(next, depth + 1);
      }
      done.push(parts[i]!);
      if (k === "missing") {
        // Nothing further down can exist on the host either.
        return [...done, ...parts.slice(i + 1)].join("/");
      }
    }
    return done.join("/");
  }
}
