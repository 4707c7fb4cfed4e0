import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { packageShape, storePath, type InstalledPackage } from "../generations/record.js";
import { ErofsImage, ErofsUnsupportedError, S_IFDIR, S_IFMT, S_IFREG, type ErofsInode } from "../image/erofs-reader.js";
import { STAGE_STORE_REL } from "../image/store-paths.js";
import { openErofs } from "../image/ddi.js";
import { ShapeError, count, field, object, str } from "../base/state-file.js";

// What a published image says about itself. A machine that imports an image it did not build has no
// Nix evaluation to describe it, so `ext publish` writes a description into the image (it is part of
// the hashed, signed bytes) and the import reads it back from the EROFS metadata, without root and
// without mounting. The closure and the commands are the image's own directories (usr/store/*,
// usr/bin/*), so only what a tree cannot say is written: the version and one small file per package.
// Each file stays under one block: mkfs.erofs stores such files uncompressed (nothing to save), and
// only uncompressed files can be read without extracting the image. Nothing in it varies between
// runs (no time, no host path): the same tools.json, lock and version give the same bytes. In a
// verity DDI (ext publish --ddi) it is read from the root partition in place.

export const PUBLICATION_FORMAT = 1;
const MAX_FILE = 3800;
const EROFS_FT_DIR = 2;

export interface Publication {
  format: number;
  /** The extension name (the image's extension-release suffix). */
  name: string;
  /** The published version, as in NAME_VERSION.raw. */
  version: string;
  /** The image's compression (mkfs.erofs algorithm), recorded with the generation. */
  compression: string;
  packages: InstalledPackage[];
  closure: { paths: string[]; narSize: number };
  /** The image's executables (usr/bin/…, usr/sbin/…), checked after activation. */
  links: string[];
}

/** Where in the image (and so in the merged /usr) the description lives. */
export function publicationDir(name: string): string {
  return `usr/share/ext/published/${name}`;
}

/** The files `ext publish` adds to the stage: path relative to the stage → content. */
export function publicationFiles(p: Omit<Publication, "closure" | "links"> & { narSize: number }): Record<string, string> {
  const dir = publicationDir(p.name);
  const files: Record<string, string> = {
    [`${dir}/about.json`]: JSON.stringify({ format: PUBLICATION_FORMAT, name: p.name, version: p.version, compression: p.compression, narSize: p.narSize }, null, 2) + "\n",
  };
  for (const pkg of p.packages) {
    // Fixed fields in a fixed order: a package taken from the lock and the same package evaluated
    // again (its paths missing here) must describe themselves with the same bytes.
    const kept = {
      name: pkg.name, attr: pkg.attr, source: pkg.source, pname: pkg.pname, version: pkg.version,
      ...(pkg.outputs ? { outputs: [...pkg.outputs].sort() } : {}),
      outPaths: Object.fromEntries(Object.entries(pkg.outPaths).sort(([a], [b]) => (a < b ? -1 : 1))),
      ...(pkg.description !== undefined ? { description: pkg.description } : {}),
      ...(pkg.allowShadow ? { allowShadow: true } : {}),
      ...(pkg.self ? { self: true } : {}),
    };
    let text = JSON.stringify(kept, null, 2) + "\n";
    if (text.length > MAX_FILE && kept.description !== undefined) text = JSON.stringify({ ...kept, description: undefined }, null, 2) + "\n";
    if (text.length > MAX_FILE) throw new ShapeError(`the description of package '${pkg.name}' is larger than ${MAX_FILE} bytes`);
    files[`${dir}/packages/${pkg.name}.json`] = text;
  }
  return files;
}

/** Writes files into a stage with fixed modes (0755 directories, 0644 files): the umask of whoever
 *  builds must not change the image's bytes. */
export async function addFilesToStage(stageDir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    const target = join(stageDir, rel);
    let dir = dirname(target);
    const made: string[] = [];
    while (dir.startsWith(stageDir + "/")) {
      made.push(dir);
      dir = dirname(dir);
    }
    for (const d of made.reverse()) {
      await mkdir(d, { recursive: true });
      await chmod(d, 0o755);
    }
    await writeFile(target, text);
    await chmod(target, 0o644);
  }
}

/** Reads and checks the description of a published image; a problem is a ShapeError saying what. */
export async function readPublication(imageFile: string, name: string): Promise<Publication> {
  let img: ErofsImage;
  try {
    img = await openErofs(imageFile);
  } catch (e) {
    throw new ShapeError(`it is not an EROFS image ext can read (${(e as Error).message})`);
  }
  try {
    const dir = publicationDir(name);
    const about = object(await readJson(img, `${dir}/about.json`), "about.json");
    const format = field(about, "about.json", "format", count);
    if (format !== PUBLICATION_FORMAT) throw new ShapeError(`its description has format ${format}; this ext reads format ${PUBLICATION_FORMAT} (upgrade ext)`);
    const own = field(about, "about.json", "name", str);
    if (own !== name) throw new ShapeError(`it describes the extension '${own}', not '${name}'`);
    const packages: InstalledPackage[] = [];
    for (const entry of await entries(img, `${dir}/packages`)) {
      if (!entry.endsWith(".json")) continue;
      packages.push(packageShape(await readJson(img, `${dir}/packages/${entry}`), entry));
    }
    const paths = (await entries(img, STAGE_STORE_REL)).map((e) => storePath(`/nix/store/${e}`, "usr/store")).sort();
    const links: string[] = [];
    for (const bin of ["usr/bin", "usr/sbin"]) {
      for (const e of await entries(img, bin, true)) links.push(`${bin}/${e}`);
    }
    return {
      format,
      name: own,
      version: field(about, "about.json", "version", str),
      compression: field(about, "about.json", "compression", str),
      packages,
      closure: { paths, narSize: field(about, "about.json", "narSize", count) },
      links: links.sort(),
    };
  } finally {
    await img.close();
  }
}

async function lookup(img: ErofsImage, rel: string, type: number): Promise<ErofsInode | undefined> {
  const inode = await img.lookup(rel);
  return inode && (inode.mode & S_IFMT) === type ? inode : undefined;
}

async function readJson(img: ErofsImage, rel: string): Promise<unknown> {
  const inode = await lookup(img, rel, S_IFREG);
  if (!inode) throw new ShapeError(`it holds no /${rel}: it was not made by 'ext publish' for this extension`);
  if (inode.size > MAX_FILE) throw new ShapeError(`its /${rel} is larger than ext writes it`);
  let text: string;
  try {
    text = (await img.read(inode)).toString("utf8");
  } catch (e) {
    if (e instanceof ErofsUnsupportedError) throw new ShapeError(`its /${rel} is stored in a way ext does not write`);
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ShapeError(`its /${rel} is not JSON`);
  }
}

/** Names in a directory of the image; `notDirs`: leave out subdirectories. */
async function entries(img: ErofsImage, rel: string, notDirs = false): Promise<string[]> {
  const inode = await lookup(img, rel, S_IFDIR);
  if (!inode) return [];
  return (await img.list(inode))
    .filter((d) => !notDirs || d.type !== EROFS_FT_DIR)
    .map((d) => d.name.toString("utf8"))
    .sort();
}
