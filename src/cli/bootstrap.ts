import { lstat, mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { activeLinkPath } from "../base/layout.js";
import { ExtError, errnoCode } from "../errors.js";
import { readCurrentGeneration } from "../generations/store.js";
import { runTransaction } from "../machine/transaction.js";
import { copyFromCache } from "../nix/index.js";
import { BOOTSTRAP_CACHE, readBootstrap } from "../pipeline/index.js";
import type { Publication } from "../pipeline/publication.js";
import type { CommandContext } from "./context.js";
import type { stepEnv } from "./transact.js";

// The first transaction on a machine that got ext from its bootstrap image (docs/install.md): the
// administrator placed NAME.raw in /var/lib/extensions and merged it, so ext runs, but ext has no
// generation yet and its store is empty. Before the requested change, the placed image becomes
// generation 1 — its closure copied from the image's own binary cache into the store, then the image
// imported as `ext pull` imports a published one — so that ext, its Node.js and its Nix are packages
// of the set like any other: kept by the next generation, rolled back to, collected by `ext gc`.

export interface Adopted {
  generation: number;
  version: string;
}

/** The description of a bootstrap image placed as /var/lib/extensions/<name>.raw and not adopted yet
 *  (ext has no generation); null when there is none. */
export async function placedBootstrap(ctx: CommandContext): Promise<{ placed: string; publication: Publication } | null> {
  if (await readCurrentGeneration(ctx.layout)) return null;
  const placed = activeLinkPath(ctx.layout, ctx.extensionName);
  try {
    if (!(await lstat(placed)).isFile()) return null;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return null;
    throw e;
  }
  // Not an image ext described as its bootstrap (made by hand, or by `ext build`): not ext's to adopt.
  const publication = await readBootstrap(placed, ctx.extensionName);
  return publication ? { placed, publication } : null;
}

/** Adopts a placed bootstrap image, or does nothing (a generation exists, or no such image is placed).
 *  Runs under the state lock, before the transaction it precedes. */
export async function adoptBootstrap(ctx: CommandContext, env: ReturnType<typeof stepEnv>): Promise<Adopted | null> {
  await recoverAside(ctx);
  const found = await placedBootstrap(ctx);
  if (!found) return null;
  const { placed, publication } = found;
  const cache = join(ctx.layout.root, BOOTSTRAP_CACHE);
  try {
    await lstat(join(cache, "nix-cache-info"));
  } catch {
    throw new ExtError(`${placed} is ext's bootstrap image, but its files are not under ${join(ctx.layout.root, "usr")}`, {
      hint: "merge it first: systemd-sysext refresh (then run this command again)",
    });
  }
  ctx.reporter.phase("bootstrap", `adopting ${placed} (ext ${publication.version})`);
  await copyFromCache(ctx.nix, cache, publication.closure.paths);
  // The placed file is not one of ext's images, and activation replaces only those: it is moved into
  // ext's state directory for the import (which copies it into images/ and links that copy in its
  // place), and put back if the import fails. The merged /usr keeps running from it meanwhile.
  await mkdir(ctx.layout.stateDir, { recursive: true });
  const aside = join(ctx.layout.stateDir, `bootstrap-${process.pid}.raw`);
  try {
    await rename(placed, aside);
  } catch (e) {
    if (errnoCode(e) !== "EXDEV") throw e;
    throw new ExtError(`${placed} cannot be moved into ${ctx.layout.stateDir}: another file system`, {
      hint: `ext keeps its images next to the link in /var/lib/extensions; put ${ctx.layout.stateDir} on the same file system`,
    });
  }
  let outcome;
  try {
    outcome = await runTransaction(env, { kind: "import", image: aside, version: publication.version, url: `bootstrap:${placed}` });
  } catch (e) {
    await rename(aside, placed);
    throw e;
  }
  if (outcome.status !== "done") {
    await rename(aside, placed);
    if (outcome.status === "failed") throw outcome.error instanceof Error ? outcome.error : new ExtError(String(outcome.error));
    return null;
  }
  await rm(aside, { force: true });
  ctx.reporter.info(`the bootstrap image is generation ${outcome.record.id} (ext ${publication.version}, ${publication.packages.map((p) => p.name).join(", ")})`);
  return { generation: outcome.record.id, version: publication.version };
}

/** An adoption killed between moving the placed image aside and the end of its import (kill -9, a
 *  power cut) leaves `bootstrap-PID.raw` in the state directory: the journal's recovery (which ran
 *  before, under the same lock) has undone the import, so with no generation the image goes back
 *  where the administrator placed it, and is adopted again now. With a generation, the import
 *  finished (it copied the image into images/) and the file is only a leftover. */
async function recoverAside(ctx: CommandContext): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(ctx.layout.stateDir)).filter((n) => /^bootstrap-\d+\.raw$/.test(n)).sort();
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return;
    throw e;
  }
  if (names.length === 0) return;
  const placed = activeLinkPath(ctx.layout, ctx.extensionName);
  const adopted = (await readCurrentGeneration(ctx.layout)) !== null;
  const free = !adopted && (await lstat(placed).then(() => false, (e: unknown) => {
    if (errnoCode(e) === "ENOENT") return true;
    throw e;
  }));
  for (const [i, name] of names.entries()) {
    const file = join(ctx.layout.stateDir, name);
    if (free && i === names.length - 1) {
      await rename(file, placed);
      ctx.reporter.warn(`an earlier adoption of the bootstrap image was interrupted: ${file} is back at ${placed}`);
    } else {
      await rm(file, { force: true });
    }
  }
}
