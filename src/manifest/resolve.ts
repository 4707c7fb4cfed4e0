import type { InstalledPackage } from "../generations/record.js";
import type { PackageSpec } from "../machine/types.js";
import type { NixContext } from "../nix/types.js";
import { existsSync } from "node:fs";
import { lockSource, physicalPath } from "../nix/index.js";
import { UsageError } from "../errors.js";
import { installedFromLock, lockEntryMatches, pinOf } from "./lockfile.js";
import type { Lock, Manifest } from "./read.js";
import type { LockSourceEntry, ManifestEntry } from "./types.js";

// tools.json + its lock → the request for one "set" transaction. A package the lock still describes
// is handed over as resolved (its store paths), so the transaction keeps it without Nix; any other
// is resolved from its source's pinned revision, pinning the source first when the lock has no pin.
// With a complete lock nothing here runs Nix.

export type Pinner = (source: string) => Promise<LockSourceEntry>;

export interface Resolution {
  specs: PackageSpec[];
  /** Packages the lock describes, kept without Nix when the transaction can. */
  locked: InstalledPackage[];
  /** Manifest source → its pin (from the lock, or pinned now). */
  pins: Map<string, LockSourceEntry>;
  /** Sources pinned by this call (through Nix). */
  pinned: string[];
  /** Packages that Nix must resolve (not taken from the lock). */
  toResolve: string[];
}

export interface ResolveOptions {
  /** Pin these sources again, ignoring the lock's pins (ext upgrade). */
  refresh?: ReadonlySet<string>;
  /** Resolve these packages again even when the lock describes them (ext upgrade). */
  reresolve?: ReadonlySet<string>;
  /** How to pin a source; default `nix flake metadata` through lockSource. */
  pin?: Pinner;
  /** Whether a store path is in the local store; default: look at the file system (no Nix). */
  present?: (storePath: string) => boolean;
}

export function nixPinner(nix: NixContext): Pinner {
  return async (source) => pinOf(await lockSource(nix, source));
}

/** A Nix context that fetches sources again instead of trusting its download cache (ext upgrade):
 *  `tarball-ttl = 0` is what `--refresh` sets. */
export function refreshingNix(nix: NixContext): NixContext {
  const base = nix.env?.["NIX_CONFIG"] ?? process.env["NIX_CONFIG"] ?? "";
  return { ...nix, env: { ...(nix.env ?? {}), NIX_CONFIG: `${base}\ntarball-ttl = 0\n` } };
}

export function specOf(entry: ManifestEntry, source: string): PackageSpec {
  const spec: PackageSpec = { name: entry.name, attr: entry.attr, source };
  if (entry.outputs !== undefined) spec.outputs = [...entry.outputs];
  if (entry.priority !== undefined) spec.priority = entry.priority;
  if (entry.allowShadow) spec.allowShadow = true;
  if (entry.allowUnfree) spec.allowUnfree = true;
  return spec;
}

export async function resolveManifest(manifest: Pick<Manifest, "entries">, lock: Lock | undefined, nix: NixContext, opts: ResolveOptions = {}): Promise<Resolution> {
  const pin = opts.pin ?? nixPinner(nix);
  const present = opts.present ?? ((p: string) => existsSync(physicalPath(nix.store, p)));
  const pins = new Map<string, LockSourceEntry>();
  for (const [source, p] of Object.entries(lock?.data.sources ?? {})) {
    if (!opts.refresh?.has(source)) pins.set(source, p);
  }
  const sameSystem = lock === undefined || lock.data.system === nix.system;
  const pinned: string[] = [];
  const pinFor = async (source: string): Promise<LockSourceEntry> => {
    let p = pins.get(source);
    if (!p) {
      p = await pin(source);
      pins.set(source, p);
      pinned.push(source);
    }
    return p;
  };
  for (const source of opts.refresh ?? []) await pinFor(source);

  const specs: PackageSpec[] = [];
  const locked: InstalledPackage[] = [];
  const toResolve: string[] = [];
  const seen = new Set<string>();
  for (const entry of manifest.entries) {
    if (seen.has(entry.name)) throw new UsageError(`package '${entry.name}' is listed twice`);
    seen.add(entry.name);
    const fromLock = lock?.data.packages[entry.name];
    if (fromLock && !opts.reresolve?.has(entry.name) && lockEntryMatches(fromLock, entry)) {
      // Store paths of another system, or missing here (garbage-collected, another machine), are
      // built again from the exact reference they came from, not demanded from a substituter.
      if (sameSystem && Object.values(fromLock.outPaths).every(present)) locked.push(installedFromLock(entry.name, fromLock));
      specs.push(specOf(entry, fromLock.resolvedFrom));
      continue;
    }
    const p = await pinFor(entry.source);
    specs.push(specOf(entry, p.locked));
    toResolve.push(entry.name);
  }
  return { specs, locked, pins, pinned, toResolve };
}
