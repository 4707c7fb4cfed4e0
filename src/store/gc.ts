import { lstat, mkdir, readdir, readlink, rename, symlink, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { nixCommand } from "../nix/command.js";
import { nixFailed } from "../nix/errors.js";
import { validateStorePath } from "../nix/validate.js";
import type { NixContext } from "../nix/types.js";

// Collecting the private store. ext owns it, so `ext gc` collects it too: the store paths that the
// kept generations need become Nix GC roots (symlinks in <root>/nix/var/nix/gcroots/ext, which Nix
// reads like any root, so a plain `nix store gc --store <root>` keeps them as well), roots of
// generations that are gone are removed, and then Nix deletes everything else. The system store is
// the user's: ext never collects it (that is `nix-collect-garbage`).

export interface StoreGcResult {
  /** The chroot store's root (its files are under <root>/nix/store). */
  root: string;
  /** Store paths rooted because a kept generation needs them. */
  roots: number;
  deletedPaths: number;
  freedBytes: number;
}

/** Where ext keeps its roots inside a chroot store. */
export function gcRootsDir(root: string): string {
  return join(root, "nix/var/nix/gcroots/ext");
}

/** Makes `<root>/nix/var/nix/gcroots/ext` hold exactly one root per path of `keep`. */
export async function syncRoots(root: string, keep: Iterable<string>): Promise<number> {
  const dir = gcRootsDir(root);
  await mkdir(dir, { recursive: true });
  const wanted = new Map<string, string>();
  for (const p of keep) {
    validateStorePath(p);
    wanted.set(basename(p), p);
  }
  for (const name of await readdir(dir)) {
    const file = join(dir, name);
    const target = await readlink(file).catch(() => undefined);
    if (target === undefined || wanted.get(name) !== target) await unlink(file).catch(() => {});
  }
  for (const [name, target] of wanted) {
    const file = join(dir, name);
    if ((await readlink(file).catch(() => undefined)) === target) continue;
    // Link to a temporary name, then rename: a root is never missing while it is replaced.
    const tmp = join(dir, `.${name}.${randomBytes(4).toString("hex")}.tmp`);
    await symlink(target, tmp);
    await rename(tmp, file);
  }
  return wanted.size;
}

/** Collects a private (chroot) store, keeping `keep` and their closures. null for the system store. */
export async function collectPrivateStore(nix: NixContext, keep: Iterable<string>): Promise<StoreGcResult | null> {
  const root = nix.store.root;
  if (root === "/") return null;
  const exists = await lstat(join(root, "nix/store")).then(() => true, () => false);
  if (!exists) return { root, roots: 0, deletedPaths: 0, freedBytes: 0 };
  const roots = await syncRoots(root, keep);
  const result = await nixCommand(nix, ["store", "gc"], { log: false });
  if (result.exitCode !== 0) throw nixFailed(`collecting the private store ${root}`, result.command, result.stderr);
  return { root, roots, ...parseGcSummary(result.stdout + "\n" + result.stderr) };
}

/** `7 store paths deleted, 0.98 MiB freed` (Nix prints it on stdout or stderr, depending on the version). */
export function parseGcSummary(text: string): { deletedPaths: number; freedBytes: number } {
  const m = /(\d+) store paths? deleted, ([\d.]+) (B|KiB|MiB|GiB|TiB) freed/.exec(text);
  if (!m) {
    const deleted = [...text.matchAll(/^deleting '\/nix\/store\/[^']+'$/gm)].length;
    return { deletedPaths: deleted, freedBytes: 0 };
  }
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[m[3] as "B" | "KiB" | "MiB" | "GiB" | "TiB"];
  return { deletedPaths: Number(m[1]), freedBytes: Math.round(Number(m[2]) * unit) };
}
