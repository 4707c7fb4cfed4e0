import { chmodSync, lstatSync, mkdirSync, realpathSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { PermissionError } from "../errors.js";

// Nix (2.34 and later, checked on Debian sid) refuses a store below a directory that is world-writable
// or a symlink: `Path "/var/lib" is world-writable or a symlink`. Such a directory lets any user swap
// the store under Nix, so the rule is right for older Nix too. ext checks before Nix does, so that the
// user hears what to change: the directories ext made itself (its state directory and below) are
// fixed, a directory that is not ext's is explained. A symlink on the way (/home → var/home on Fedora
// Atomic) is followed here, and Nix is given the real path.

export interface StorePathCheck {
  /** The store root with every symlink on the way resolved (what Nix is given). */
  realRoot: string;
  /** Existing directories on the way that anyone may write, and whether ext may fix them. */
  worldWritable: { path: string; ours: boolean; sticky: boolean }[];
}

/** Reads, changes nothing. `owned` is the directory below which ext made everything (its state dir). */
export function checkStorePath(root: string, owned: string): StorePathCheck {
  const realRoot = resolveExisting(root);
  const realOwned = resolveExisting(owned);
  const worldWritable: StorePathCheck["worldWritable"] = [];
  for (let dir = realRoot; ; dir = dirname(dir)) {
    const st = lstatOrUndefined(dir);
    if (st?.isDirectory() && (st.mode & 0o002) !== 0) worldWritable.push({ path: dir, ours: within(dir, realOwned), sticky: (st.mode & 0o1000) !== 0 });
    if (dir === dirname(dir)) break;
  }
  return { realRoot, worldWritable: worldWritable.reverse() };
}

/** Makes the store's directories ext owns safe for Nix (mode 0755), or says what the user must change. */
export function prepareStorePath(root: string, owned: string): string {
  const check = checkStorePath(root, owned);
  const foreign = check.worldWritable.filter((w) => !w.ours);
  if (foreign.length > 0) {
    const list = foreign.map((w) => w.path).join(", ");
    // A sticky one (/tmp, /var/tmp) is meant to be shared: the store belongs elsewhere.
    const first = foreign[0]!;
    throw new PermissionError(`Nix refuses a store below a world-writable directory: ${list} (for the store ${check.realRoot})`, {
      hint: first.sticky
        ? `${first.path} is shared by every user: put the store elsewhere with --store DIR (below directories only their owner can write)`
        : `make it writable by its owner only ('chmod o-w ${first.path}'), or put the store elsewhere with --store DIR`,
    });
  }
  for (const w of check.worldWritable) chmodSync(w.path, 0o755);
  mkdirSync(check.realRoot, { recursive: true, mode: 0o755 });
  return check.realRoot;
}

/** realpath of the longest existing prefix, with the rest appended. */
function resolveExisting(path: string): string {
  const rest: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      return join(realpathSync(p), ...rest.reverse());
    } catch {
      if (p === dirname(p)) return path;
      rest.push(p.slice(dirname(p).length).replace(/^\//, ""));
    }
  }
}

function within(dir: string, parent: string): boolean {
  const rel = relative(parent, dir);
  return rel === "" || (!rel.startsWith("..") && !rel.startsWith(sep));
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}
