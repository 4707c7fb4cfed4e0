import { lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { errnoCode, UnsafeImageError } from "../errors.js";
import { run, tail } from "../exec.js";
import {
  ErofsFormatError, ErofsImage, ErofsUnsupportedError, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type ErofsInode,
} from "./erofs-reader.js";
import { HostView } from "./host.js";
import { validateExtensionName } from "./names.js";
import { parseEnvFile, RELEASE_DIR, releaseFileName, releaseMismatch } from "./release.js";
import { STAGE_STORE_REL } from "./store-paths.js";
import { DdiFormatError, extractPartition, readDdi, type Ddi } from "./ddi.js";

// One image that systemd-sysext rejects stops it from merging every extension on the host, so an image
// is checked before it goes anywhere sysext looks: without root and without mounting, by fsck.erofs and
// by reading the image's metadata directly (erofs-reader.ts). Only if the image uses something that
// reader does not decode is it extracted whole, which is slow for big images.

export interface VerifyOptions {
  /** Root whose os-release an ID other than _any is compared with, and whose symlinks the image's
   *  directories must not replace. Default "/". */
  hostRoot?: string;
  /** Decompress every file as well (fsck.erofs --extract without a target). Catches corrupt file data,
   *  which would not stop a merge but would break programs; reads the whole image. */
  deep?: boolean;
}

export interface VerifyFinding {
  check: "fsck" | "structure" | "top-level" | "os-release" | "extension-release" | "host-symlinks";
  ok: boolean;
  message: string;
}

export interface VerifyReport {
  path: string;
  ok: boolean;
  findings: VerifyFinding[];
  /** Parsed extension-release of the image, when it could be read. */
  release?: Record<string, string>;
  /** How the image was inspected: its metadata read in place, or a full extraction. */
  method: "metadata" | "extract";
}

type Kind = "dir" | "file" | "symlink" | "other" | "missing";

/** What the checks need from an image, implemented over the metadata reader or an extracted tree. */
interface ImageTree {
  kind(rel: string): Promise<Kind>;
  /** Entries of a directory; undefined if `rel` is not a directory. */
  list(rel: string): Promise<{ name: string; kind: Kind }[] | undefined>;
  readFile(rel: string): Promise<Buffer>;
}

export async function verifyImage(
  path: string, extensionName: string, architecture: string, options: VerifyOptions = {},
): Promise<VerifyReport> {
  validateExtensionName(extensionName);
  const hostRoot = options.hostRoot ?? "/";
  const findings: VerifyFinding[] = [];

  // A verity DDI (ddi.ts): its root partition is the EROFS image, checked as a file of its own
  // (fsck.erofs reads from byte 0). The hash and the signature are verity.ts's, checked on import.
  let ddi: Ddi | null;
  try {
    ddi = await readDdi(path);
  } catch (e) {
    if (!(e instanceof DdiFormatError)) throw e;
    throw new UnsafeImageError(`image ${path} failed verification: its partition table cannot be read: ${e.message}`, {
      hint: "it was not installed; systemd-sysext would refuse it, and with it every other extension",
    });
  }
  if (ddi === null) return verifyFileSystem(path, path, extensionName, architecture, hostRoot, findings, options);
  const scratch = await mkdtemp(join(tmpdir(), "ext-verify-ddi-"));
  try {
    const fs = join(scratch, "root.erofs");
    await extractPartition(path, ddi.data, fs);
    return await verifyFileSystem(path, fs, extensionName, architecture, hostRoot, findings, options);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** `fsPath`: the EROFS image itself (for a DDI, its root partition copied out). */
async function verifyFileSystem(
  path: string, fsPath: string, extensionName: string, architecture: string, hostRoot: string,
  findings: VerifyFinding[], options: VerifyOptions,
): Promise<VerifyReport> {
  // fsck.erofs walks every inode (its share of verifying grows with the image: 98 ms for the bench's
  // 271 MiB one, 18 ms for 10 MiB): it runs on another core while this process reads the tree, and
  // its finding still comes first.
  const fsckRun = run("fsck.erofs", options.deep ? ["--extract", fsPath] : [fsPath], { reject: false });
  fsckRun.catch(() => {}); // awaited after the tree is read; a failure to start is reported there
  const fsckAt = findings.length;
  let method: VerifyReport["method"] = "metadata";
  let release: Record<string, string> | undefined;
  try {
    const image = await ErofsImage.open(fsPath);
    try {
      release = await checkTree(new ReaderTree(image), extensionName, architecture, hostRoot, findings);
    } finally {
      await image.close();
    }
  } catch (e) {
    if (e instanceof ErofsUnsupportedError) {
      method = "extract";
      release = await withExtracted(fsPath, (tree) => checkTree(tree, extensionName, architecture, hostRoot, findings));
    } else if (e instanceof ErofsFormatError) {
      findings.push({ check: "structure", ok: false, message: `the image cannot be read as EROFS: ${e.message}` });
    } else {
      throw e;
    }
  }

  const fsck = await fsckRun;
  // erofs-utils 1.5 exits 0 even when it reports errors (a bad superblock checksum, say, which makes
  // the kernel refuse the mount): its "<E>" lines count as failure too.
  const errors = (fsck.stderr + fsck.stdout).split("\n").filter((l) => /^\s*<E>/.test(l));
  findings.splice(fsckAt, 0, fsck.exitCode === 0 && errors.length === 0
    ? { check: "fsck", ok: true, message: options.deep ? "fsck.erofs --extract passed" : "fsck.erofs passed" }
    : { check: "fsck", ok: false, message: `fsck.erofs failed (exit ${fsck.exitCode}): ${errors.length > 0 ? errors.slice(0, 5).join("; ") : tail(fsck.stderr || fsck.stdout, 5)}` });

  const problems = findings.filter((f) => !f.ok);
  const report: VerifyReport = { path, ok: problems.length === 0, findings, method, ...(release ? { release } : {}) };
  if (problems.length > 0) {
    throw new UnsafeImageError(`image ${path} failed verification: ${problems[0]!.message}`, {
      details: problems.map((p) => `${p.check}: ${p.message}`).join("\n"),
      hint: "it was not installed; systemd-sysext would refuse it, and with it every other extension",
    });
  }
  return report;
}

async function checkTree(
  tree: ImageTree, extensionName: string, architecture: string, hostRoot: string, findings: VerifyFinding[],
): Promise<Record<string, string> | undefined> {
  // The tree's checks are collected into a local list first: if the reader gives up half-way the
  // caller retries on an extracted tree, and must not see findings twice.
  const local: VerifyFinding[] = [];
  const top = (await tree.list("")) ?? [];
  const stray = top.filter((e) => e.name !== "usr" && e.name !== "opt");
  local.push(stray.length === 0
    ? { check: "top-level", ok: true, message: `top level holds ${top.map((e) => e.name).join(", ") || "nothing"}` }
    : { check: "top-level", ok: false, message: `only usr/ and opt/ may be at the top level, found ${stray.map((e) => e.name).join(", ")}` });
  for (const e of top) {
    if ((e.name === "usr" || e.name === "opt") && e.kind !== "dir") {
      local.push({ check: "top-level", ok: false, message: `/${e.name} is a ${e.kind}, not a directory` });
    }
  }

  const osRelease = await tree.kind("usr/lib/os-release");
  local.push(osRelease === "missing"
    ? { check: "os-release", ok: true, message: "no usr/lib/os-release" }
    : { check: "os-release", ok: false, message: "the image carries usr/lib/os-release, which would replace the host's" });

  const release = await checkRelease(tree, extensionName, architecture, hostRoot, local);
  await checkHostSymlinks(tree, hostRoot, local);
  findings.push(...local);
  return release;
}

async function checkRelease(
  tree: ImageTree, extensionName: string, architecture: string, hostRoot: string, findings: VerifyFinding[],
): Promise<Record<string, string> | undefined> {
  const ours = releaseFileName(extensionName);
  const entries = await tree.list(RELEASE_DIR);
  if (entries === undefined) {
    findings.push({ check: "extension-release", ok: false, message: `/${RELEASE_DIR} is missing: systemd-sysext refuses an image without /${RELEASE_DIR}/${ours}` });
    return undefined;
  }
  const others = entries.filter((e) => e.name !== ours);
  if (others.length > 0) {
    findings.push({ check: "extension-release", ok: false, message: `/${RELEASE_DIR} holds files of other extensions: ${others.map((e) => e.name).join(", ")}` });
  }
  const mine = entries.find((e) => e.name === ours);
  if (!mine) {
    findings.push({
      check: "extension-release", ok: false,
      message: `/${RELEASE_DIR}/${ours} is missing: the file name must match the image name <name>.raw, or systemd-sysext refuses to merge anything`,
    });
    return undefined;
  }
  if (mine.kind !== "file") {
    findings.push({ check: "extension-release", ok: false, message: `/${RELEASE_DIR}/${ours} is a ${mine.kind}, not a regular file` });
    return undefined;
  }
  const release = parseEnvFile((await tree.readFile(`${RELEASE_DIR}/${ours}`)).toString("utf8"));
  const problems: string[] = [];
  if (release.ARCHITECTURE !== architecture) {
    problems.push(release.ARCHITECTURE === undefined
      ? `there is no ARCHITECTURE= (expected ${architecture})`
      : `ARCHITECTURE=${release.ARCHITECTURE}, expected ${architecture}`);
  }
  const hostOs = release.ID === "_any" ? {} : await readHostOsRelease(hostRoot);
  const mismatch = releaseMismatch(release, hostOs, architecture);
  if (mismatch !== undefined) problems.push(mismatch);
  findings.push(problems.length === 0
    ? { check: "extension-release", ok: true, message: `${ours}: ID=${release.ID}, ARCHITECTURE=${release.ARCHITECTURE}` }
    : { check: "extension-release", ok: false, message: `${ours}: ${problems.join("; ")}` });
  return release;
}

/** Directories of the image (outside the store, where the host never has anything of its own) that
 *  would replace a host symlink or file. */
async function checkHostSymlinks(tree: ImageTree, hostRoot: string, findings: VerifyFinding[]): Promise<void> {
  const host = new HostView(hostRoot);
  const bad: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    if (depth > 32) return;
    for (const e of (await tree.list(rel)) ?? []) {
      if (e.kind !== "dir") continue;
      const child = rel === "" ? e.name : `${rel}/${e.name}`;
      if (child === STAGE_STORE_REL) continue;
      const k = await host.kind(child);
      if (k === "symlink" || k === "file") bad.push(`/${child} (a ${k} on the host)`);
      else if (k === "dir") await walk(child, depth + 1);
    }
  };
  await walk("", 0);
  findings.push(bad.length === 0
    ? { check: "host-symlinks", ok: true, message: "no directory of the image replaces a symlink or file of the host" }
    : { check: "host-symlinks", ok: false, message: `directories that would replace host entries: ${bad.join(", ")}` });
}

async function readHostOsRelease(hostRoot: string): Promise<Record<string, string>> {
  for (const p of ["etc/os-release", "usr/lib/os-release"]) {
    try {
      return parseEnvFile(await readFile(join(hostRoot, p), "utf8"));
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e;
    }
  }
  return {};
}

class ReaderTree implements ImageTree {
  constructor(private readonly image: ErofsImage) {}

  async kind(rel: string): Promise<Kind> {
    const inode = await this.image.lookup(rel);
    return inode ? modeKind(inode.mode) : "missing";
  }

  async list(rel: string): Promise<{ name: string; kind: Kind }[] | undefined> {
    const inode = await this.image.lookup(rel);
    if (!inode || (inode.mode & S_IFMT) !== S_IFDIR) return undefined;
    return (await this.image.list(inode)).map((d) => ({ name: d.name.toString("utf8"), kind: direntKind(d.type) }));
  }

  async readFile(rel: string): Promise<Buffer> {
    const inode: ErofsInode | undefined = await this.image.lookup(rel);
    if (!inode) throw new ErofsFormatError(`${rel} disappeared`);
    return this.image.read(inode);
  }
}

class ExtractedTree implements ImageTree {
  constructor(private readonly root: string) {}

  async kind(rel: string): Promise<Kind> {
    try {
      const st = await lstat(posix.join(this.root, rel));
      return st.isDirectory() ? "dir" : st.isFile() ? "file" : st.isSymbolicLink() ? "symlink" : "other";
    } catch (e) {
      if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return "missing";
      throw e;
    }
  }

  async list(rel: string): Promise<{ name: string; kind: Kind }[] | undefined> {
    if ((await this.kind(rel)) !== "dir") return undefined;
    const entries = await readdir(posix.join(this.root, rel), { withFileTypes: true });
    return entries.map((e) => ({
      name: e.name,
      kind: e.isDirectory() ? "dir" : e.isFile() ? "file" : e.isSymbolicLink() ? "symlink" : "other",
    }));
  }

  readFile(rel: string): Promise<Buffer> {
    return readFile(posix.join(this.root, rel));
  }
}

async function withExtracted<T>(image: string, fn: (tree: ImageTree) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "ext-verify-"));
  try {
    const target = join(dir, "root");
    await run("fsck.erofs", [`--extract=${target}`, image]);
    return await fn(new ExtractedTree(target));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function modeKind(mode: number): Kind {
  switch (mode & S_IFMT) {
    case S_IFDIR: return "dir";
    case S_IFREG: return "file";
    case S_IFLNK: return "symlink";
    default: return "other";
  }
}

/** EROFS_FT_* of a directory entry. */
function direntKind(type: number): Kind {
  switch (type) {
    case 1: return "file";
    case 2: return "dir";
    case 7: return "symlink";
    default: return "other";
  }
}
