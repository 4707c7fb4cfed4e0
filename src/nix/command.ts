import path from "node:path";
import { run, type RunResult } from "../exec.js";
import type { NixContext, StoreLocation } from "./types.js";
import { validateStorePath } from "./validate.js";
import { prepareStorePath } from "./store-permissions.js";

// Every nix call goes through here so that each one carries the flags ext depends on: flakes are
// experimental on Nix 2.8, and a chroot store must be named on every command or Nix silently uses
// the system store.

export interface NixCommandOptions {
  /** Add the experimental-features and store flags (all but `nix --version`). */
  global?: boolean;
  /** Forward stderr lines to ctx.onLog (progress and build logs). */
  log?: boolean;
  /** Evaluate with nixpkgs' unfree packages allowed: `--impure` and NIXPKGS_ALLOW_UNFREE=1, the
   *  documented way for flakes (a flake's nixpkgs ignores ~/.config/nixpkgs in pure evaluation). Only
   *  for the packages the user allowed (tools.json allowUnfree, `ext add --allow-unfree`), never for
   *  a whole command line: each such package is evaluated and built by its own calls. */
  allowUnfree?: boolean;
}

export function globalArgs(store: StoreLocation): string[] {
  const args = ["--extra-experimental-features", "nix-command flakes"];
  if (store.root !== "/") {
    // Where the files are (`real`) is named, not left to Nix: it derives it from the root and a
    // compiled-in "/nix/store", which in a relocated Nix (a bootstrap image's) reads /usr/store.
    const root = path.resolve(store.root);
    args.push("--store", `${root}?real=${path.join(root, "nix/store")}`);
  }
  return args;
}

// A chroot store's directories are checked (and ext's own fixed) once per process, before Nix sees them.
const prepared = new Set<string>();

/** Runs `nix <args>`; never throws on a non-zero exit, callers translate stderr into typed errors. */
export async function nixCommand(ctx: NixContext, args: readonly string[], options: NixCommandOptions = {}): Promise<RunResult> {
  if (ctx.store.root !== "/" && options.global !== false && !prepared.has(ctx.store.root)) {
    prepareStorePath(path.resolve(ctx.store.root), ctx.store.owned ?? path.resolve(ctx.store.root));
    prepared.add(ctx.store.root);
  }
  const argv = options.global === false ? [...args] : [...globalArgs(ctx.store), ...args];
  if (options.allowUnfree) argv.push("--impure");
  // The store directory is always named: ext's store paths are /nix/store/… whatever Nix was built
  // with, and the Nix of a bootstrap image (docs/install.md) was relocated with it, so its compiled-in
  // default now reads /usr/store. For any other Nix this is its own default.
  const env = { NIX_STORE_DIR: "/nix/store", ...ctx.env };
  return run("nix", argv, {
    env: options.allowUnfree ? { ...env, NIXPKGS_ALLOW_UNFREE: "1" } : env,
    reject: false,
    onStderrLine: options.log === false ? undefined : ctx.onLog,
  });
}

/** Where the bytes of a (logical `/nix/store/…`) store path are on this machine. */
export function physicalPath(store: StoreLocation, storePath: string): string {
  const parts = storePath.split("/");
  validateStorePath(parts.slice(0, 4).join("/"));
  if (parts.includes("..")) throw new Error(`store path ${JSON.stringify(storePath)} climbs out of the store`);
  return store.root === "/" ? storePath : path.join(path.resolve(store.root), storePath);
}
