import type { NixContext } from "./types.js";
import { nixCommand } from "./command.js";

export interface NixVersion {
  /** The whole first line of `nix --version`, e.g. `nix (Nix) 2.8.0`. */
  raw: string;
  major: number;
  minor: number;
  patch: number;
  /** Lix numbers its releases 2.90+, which says nothing about which Nix flags it has. */
  flavour: "nix" | "lix" | "determinate";
}

/** Parses `nix --version`; the version is the last dotted number (Determinate prints its own first). */
export function parseNixVersion(output: string): NixVersion {
  const raw = output.trim().split("\n")[0] ?? "";
  const matches = [...raw.matchAll(/(\d+)\.(\d+)(?:\.(\d+))?/g)];
  const last = matches[matches.length - 1];
  if (!last) throw new Error(`cannot read a version from 'nix --version' output: ${JSON.stringify(raw)}`);
  const flavour = /\blix\b/i.test(raw) ? "lix" : /determinate/i.test(raw) ? "determinate" : "nix";
  return { raw, major: Number(last[1]), minor: Number(last[2]), patch: Number(last[3] ?? 0), flavour };
}

export function atLeast(v: NixVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** What differs between Nix versions that ext relies on. */
export interface NixFeatures {
  /** `nix path-info --json-format N` (Nix ≥ 2.33); without it newer Nix warns that bare `--json` is deprecated. */
  pathInfoJsonFormat: boolean;
  /** `FLAKE#attr^out,man` selects outputs (Nix ≥ 2.9, and every Lix). Without it `FLAKE#attr.man` is
   *  the only way; with it `.man` means the attribute, which for a plain `derivation` Nix ≥ 2.26 builds
   *  as `out` (recorded on 2.26.3 and 2.34.8), so the caret is the one that means the output. */
  caretOutputs: boolean;
}

export function featuresOf(v: NixVersion): NixFeatures {
  return { pathInfoJsonFormat: v.flavour !== "lix" && atLeast(v, 2, 33), caretOutputs: v.flavour !== "nix" || atLeast(v, 2, 9) };
}

// One `nix --version` per context: every command of a transaction shares the context.
const cache = new WeakMap<NixContext, Promise<NixVersion>>();

export function nixVersion(ctx: NixContext): Promise<NixVersion> {
  let pending = cache.get(ctx);
  if (!pending) {
    pending = nixCommand(ctx, ["--version"], { global: false }).then((r) => parseNixVersion(r.stdout));
    pending.catch(() => cache.delete(ctx));
    cache.set(ctx, pending);
  }
  return pending;
}
