import { mkdir, mkdtemp, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Reporter } from "../base/reporter.js";
import type { NixContext } from "../nix/types.js";
import type { StagedSet } from "../pipeline/index.js";
import { sha256File } from "../image/pack.js";
import { writeFileAtomic } from "../fsutil.js";
import { run } from "../exec.js";
import { ExtError, UsageError, errnoCode } from "../errors.js";
import { publicationFiles } from "../pipeline/publication.js";
import { pushToCache, type CacheResult } from "./cache.js";
import { formatSums, type SumEntry } from "./sums.js";
import { VERSION_PATTERN, imageFileName } from "./versions.js";
import { makeVerityDdi, requireRepart, type VerityKeys } from "./ddi.js";

// `ext publish tools.json VERSION -o DIR`: what CI runs. One `ext build --manifest` (no root,
// no state) whose image also carries its description (publication.ts), placed as DIR/NAME_V.raw, then
// DIR/SHA256SUMS over every image in DIR and, with a key, DIR/SHA256SUMS.gpg (a detached OpenPGP
// signature): the layout systemd-sysupdate's url-file transfers read, served by any HTTP server.
// Earlier versions stay listed, so a machine can still fetch the one it has.

export interface PublishOptions {
  manifest: string;
  dir: string;
  version: string;
  /** gpg key (id, fingerprint or user id) that signs SHA256SUMS; none: unsigned. */
  signKey?: string;
  /** Also copy the closure to this Nix binary cache (src/fleet/cache.ts)… */
  cache?: string;
  /** …signed there with this Nix secret key. */
  cacheKey?: string;
  /** Publish a signed verity DDI (src/fleet/ddi.ts) instead of the plain EROFS image. */
  ddi?: VerityKeys;
}

/** The image `ext build --manifest` made (src/cli/commands/build.ts), as publish uses it. */
export interface BuiltForPublishing {
  output: string;
  sha256: string;
  imageSize: number;
  extensionName: string;
  packages: readonly { name: string; version: string; outPaths: Record<string, string> }[];
  storePaths: number;
  closureSize: number;
}

/** What publish is given by its command (src/cli/commands/publish.ts): the build is the command's,
 *  so this module needs nothing from cli/. */
export interface PublishEnv {
  reporter: Reporter;
  nix: NixContext;
  /** The extension the manifest names (and so the image file's name). */
  extensionName: string;
  /** `ext build --manifest` into `output`, with these files added to the stage. */
  build(output: string, extraFiles: (staged: StagedSet) => Record<string, string>): Promise<BuiltForPublishing>;
}

export interface PublishResult {
  dir: string;
  file: string;
  version: string;
  sha256: string;
  size: number;
  /** false when this exact image was published already (same bytes). */
  written: boolean;
  signed: boolean;
  sums: SumEntry[];
  extensionName: string;
  packages: { name: string; version: string }[];
  storePaths: number;
  closureSize: number;
  cache: CacheResult | null;
  /** "ddi": a signed verity DDI wrapping the EROFS image (whose sha256 is `erofsSha256`). */
  format: "erofs" | "ddi";
  erofsSha256: string;
}

export async function publish(env: PublishEnv, opts: PublishOptions): Promise<PublishResult> {
  if (!VERSION_PATTERN.test(opts.version)) {
    throw new UsageError(`'${opts.version}' is not a version systemd-sysupdate can compare`, { hint: "use digits, letters and . ~ ^ + - (e.g. 2026.12.01 or 42), starting with a letter or digit" });
  }
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const name = env.extensionName;
  const target = join(dir, imageFileName(name, opts.version));
  // Before the build: a host that cannot make the DDI says so at once.
  if (opts.ddi) await requireRepart();
  const scratch = await mkdtemp(join(dir, ".ext-publish-"));
  try {
    const built = await env.build(join(scratch, `${name}.raw`),
      (s) => publicationFiles({ format: 1, name: s.extensionName, version: opts.version, compression: s.compression, packages: s.packages, narSize: s.narSize }));
    let image = { path: built.output, sha256: built.sha256, size: built.imageSize };
    if (opts.ddi) {
      env.reporter.phase("verity DDI", "systemd-repart");
      const ddi = join(scratch, `${name}.ddi.raw`);
      await makeVerityDdi(built.output, built.sha256, ddi, opts.ddi, scratch);
      image = { path: ddi, sha256: await sha256File(ddi), size: (await stat(ddi)).size };
    }
    const written = await place(image.path, image.sha256, target, opts.version);
    env.reporter.phase("SHA256SUMS");
    const sums = await writeSums(dir);
    const signed = await sign(env.reporter, dir, opts.signKey);
    let cache: CacheResult | null = null;
    if (opts.cache !== undefined) {
      env.reporter.phase("binary cache", opts.cache);
      cache = await pushToCache(env.nix, built.packages, opts.cache, opts.cacheKey === undefined ? undefined : resolve(opts.cacheKey));
    }
    return {
      dir, file: target, version: opts.version, sha256: image.sha256, size: image.size, written, signed, sums,
      extensionName: built.extensionName,
      packages: built.packages.map((p) => ({ name: p.name, version: p.version })),
      storePaths: built.storePaths,
      closureSize: built.closureSize,
      cache,
      format: opts.ddi ? "ddi" : "erofs",
      erofsSha256: built.sha256,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** A published version never changes: machines that fetched it would keep other bytes under its name. */
async function place(built: string, sha256: string, target: string, version: string): Promise<boolean> {
  try {
    await stat(target);
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
    await rename(built, target);
    return true;
  }
  if ((await sha256File(target)) === sha256) return false;
  throw new ExtError(`version ${version} is already published in ${target}, with other bytes`, {
    hint: "publish a new version (machines that fetched this one would never see the change); remove the old file only if no machine has it",
  });
}

/** Every image in DIR, hashed now: the list must say what the server serves, whatever wrote it. */
export async function writeSums(dir: string): Promise<SumEntry[]> {
  const entries: SumEntry[] = [];
  for (const f of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!f.isFile() || f.name.startsWith(".") || !f.name.endsWith(".raw")) continue;
    entries.push({ sha256: await sha256File(join(dir, f.name)), file: f.name });
  }
  await writeFileAtomic(join(dir, "SHA256SUMS"), formatSums(entries));
  return entries;
}

/** Without a key an old signature would sign a list it does not match: it goes. */
async function sign(reporter: Reporter, dir: string, key: string | undefined): Promise<boolean> {
  const sums = join(dir, "SHA256SUMS");
  const signature = join(dir, "SHA256SUMS.gpg");
  if (key === undefined) {
    await unlink(signature).catch((e) => {
      if (errnoCode(e) !== "ENOENT") throw e;
    });
    reporter.warn("SHA256SUMS is not signed (no --sign-key): machines subscribed to DIR refuse an unsigned list");
    return false;
  }
  reporter.phase("signing", key);
  const tmp = join(dir, `.SHA256SUMS.gpg.${process.pid}.tmp`);
  try {
    await run("gpg", ["--batch", "--yes", "--no-tty", "--local-user", key, "--detach-sign", "--output", tmp, sums]);
    await rename(tmp, signature);
  } finally {
    await rm(tmp, { force: true });
  }
  return true;
}
