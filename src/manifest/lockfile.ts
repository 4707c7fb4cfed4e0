import type { InstalledPackage } from "../generations/record.js";
import type { LockedSource } from "../nix/types.js";
import { LOCK_VERSION, type LockData, type LockPackageEntry, type LockSourceEntry, type ManifestEntry } from "./types.js";

// tools.lock.json: what a tools.json resolved to. Each source is pinned to one revision; each package
// records the exact reference it was resolved from and its store paths. With it, apply keeps packages
// without asking Nix (the store paths say what goes into the image), and a second machine builds the
// very same image.

export function pinOf(locked: LockedSource): LockSourceEntry {
  const pin: LockSourceEntry = { locked: locked.locked };
  if (locked.rev !== undefined) pin.rev = locked.rev;
  if (locked.narHash !== undefined) pin.narHash = locked.narHash;
  if (locked.lastModified !== undefined) pin.lastModified = locked.lastModified;
  return pin;
}

export function sameOutputs(a: string[] | undefined, b: string[] | undefined): boolean {
  return [...(a ?? [])].sort().join(",") === [...(b ?? [])].sort().join(",");
}

/** A lock entry still stands for the package tools.json asks for. */
export function lockEntryMatches(entry: LockPackageEntry, wanted: ManifestEntry): boolean {
  return entry.attr === wanted.attr && entry.source === wanted.source && sameOutputs(entry.outputs, wanted.outputs);
}

/** The package a lock entry describes, as a generation would hold it. */
export function installedFromLock(name: string, e: LockPackageEntry): InstalledPackage {
  const p: InstalledPackage = {
    name,
    attr: e.attr,
    source: e.resolvedFrom,
    pname: e.pname,
    version: e.version,
    outPaths: { ...e.outPaths },
  };
  if (e.outputs !== undefined) p.outputs = [...e.outputs];
  if (e.drvPath !== undefined) p.drvPath = e.drvPath;
  if (e.description !== undefined) p.description = e.description;
  if (e.license !== undefined) p.license = e.license;
  if (e.homepage !== undefined) p.homepage = e.homepage;
  return p;
}

function entryOf(wanted: ManifestEntry, p: InstalledPackage): LockPackageEntry {
  // Field order as in the schema, so the file reads the same each time.
  const ordered = { attr: p.attr, source: wanted.source, resolvedFrom: p.source } as LockPackageEntry;
  if (wanted.outputs !== undefined) ordered.outputs = [...wanted.outputs];
  ordered.pname = p.pname;
  ordered.version = p.version;
  ordered.outPaths = Object.fromEntries(Object.entries(p.outPaths).sort(([a], [b]) => a.localeCompare(b)));
  if (p.drvPath !== undefined) ordered.drvPath = p.drvPath;
  if (p.description !== undefined) ordered.description = p.description;
  if (p.license !== undefined) ordered.license = p.license;
  if (p.homepage !== undefined) ordered.homepage = p.homepage;
  return ordered;
}

/** The lock for `entries`, from the packages of a generation that holds them. Packages the
 *  generation lacks are left out (the caller checks they are all there). */
export function lockFor(entries: ManifestEntry[], installed: InstalledPackage[], pins: ReadonlyMap<string, LockSourceEntry>, system: string): LockData {
  const byName = new Map(installed.map((p) => [p.name, p]));
  const packages: Record<string, LockPackageEntry> = {};
  for (const wanted of [...entries].sort((a, b) => a.name.localeCompare(b.name))) {
    const p = byName.get(wanted.name);
    if (p) packages[wanted.name] = entryOf(wanted, p);
  }
  const sources: Record<string, LockSourceEntry> = {};
  for (const source of [...new Set(entries.map((e) => e.source))].sort()) {
    const pin = pins.get(source);
    if (pin) sources[source] = normalisePin(pin);
  }
  return { version: LOCK_VERSION, system, sources, packages };
}

function normalisePin(pin: LockSourceEntry): LockSourceEntry {
  const out: LockSourceEntry = { locked: pin.locked };
  if (pin.rev !== undefined) out.rev = pin.rev;
  if (pin.narHash !== undefined) out.narHash = pin.narHash;
  if (pin.lastModified !== undefined) out.lastModified = pin.lastModified;
  return out;
}

export function lockText(lock: LockData): string {
  return JSON.stringify(lock, null, 2) + "\n";
}

/** Same content, whatever the key order or formatting of the file. */
export function sameLock(a: LockData | undefined, b: LockData): boolean {
  if (!a) return false;
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (typeof v === "object" && v !== null) {
    return `{${Object.keys(v).filter((k) => k !== "$schema").sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** A reference that already names one tree (a narHash or a revision), and its pin, without Nix. */
export function pinFromReference(ref: string): LockSourceEntry | undefined {
  const query = queryOf(ref);
  const narHash = query.get("narHash");
  const rev = query.get("rev") ?? /^(?:github|gitlab|sourcehut):[^/?]+\/[^/?]+\/([0-9a-f]{40})(?:\?|$)/.exec(ref)?.[1];
  if (narHash === undefined && rev === undefined) return undefined;
  const pin: LockSourceEntry = { locked: ref };
  if (rev !== undefined) pin.rev = rev;
  if (narHash !== undefined) pin.narHash = narHash;
  const lastModified = Number(query.get("lastModified") ?? "");
  if (query.has("lastModified") && Number.isInteger(lastModified) && lastModified >= 0) pin.lastModified = lastModified;
  return pin;
}

/** What a person would have written for a pinned reference: the same without the pin. */
export function unpinnedReference(ref: string): string {
  const q = ref.indexOf("?");
  if (q < 0) return ref;
  const pinKeys = new Set(["narHash", "lastModified", "rev", "revCount", "lastModifiedDate"]);
  const rest = ref.slice(q + 1).split("&").filter((kv) => kv.length > 0 && !pinKeys.has(kv.split("=")[0] ?? ""));
  return ref.slice(0, q) + (rest.length > 0 ? `?${rest.join("&")}` : "");
}

/** Query parameters of a flake reference. Not URLSearchParams: it would read the '+' of a narHash as a space. */
function queryOf(ref: string): Map<string, string> {
  const q = ref.indexOf("?");
  const map = new Map<string, string>();
  if (q < 0) return map;
  for (const kv of ref.slice(q + 1).split("&")) {
    const eq = kv.indexOf("=");
    if (eq <= 0) continue;
    try {
      map.set(kv.slice(0, eq), decodeURIComponent(kv.slice(eq + 1)));
    } catch {
      map.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
  }
  return map;
}
