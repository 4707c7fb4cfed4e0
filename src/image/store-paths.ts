import { join } from "node:path";
import { UnsafeImageError } from "../errors.js";
import type { StoreLocation } from "../nix/types.js";

export const NIX_STORE = "/nix/store";
/** Same length as NIX_STORE: rewriting one into the other keeps every byte offset. */
export const RELOCATED_STORE = "/usr/store";
/** Where the relocated store lives inside the stage and the image. */
export const STAGE_STORE_REL = "usr/store";

// Nix base32 (no e, o, u, t) hash and the characters Nix allows in store path names.
const STORE_PATH = /^\/nix\/store\/([0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+)$/;

/** `<hash>-<name>` of a logical store path; throws on anything that is not one. */
export function storeBaseName(path: string): string {
  const m = STORE_PATH.exec(path);
  if (!m || m[1] === undefined) {
    throw new UnsafeImageError(`'${path}' is not a store path of the form /nix/store/<hash>-<name>`);
  }
  return m[1];
}

/** Where the bytes of a logical /nix/store path live for this store (chroot stores keep them under root). */
export function physicalPath(store: StoreLocation, logical: string): string {
  return store.root === "/" ? logical : join(store.root, logical);
}

/** `/nix/store/<x>/…` → `/usr/store/<x>/…` (the path as seen once the image is merged). */
export function relocatedPath(logical: string): string {
  if (logical !== NIX_STORE && !logical.startsWith(NIX_STORE + "/")) {
    throw new UnsafeImageError(`'${logical}' is not inside ${NIX_STORE}`);
  }
  return RELOCATED_STORE + logical.slice(NIX_STORE.length);
}
