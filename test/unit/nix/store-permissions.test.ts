import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkStorePath, prepareStorePath } from "../../../src/nix/store-permissions.js";

// Nix ≥ 2.34 refuses a store below a world-writable directory or a symlink; ext checks first.
let base: string;
beforeEach(() => {
  // Below $HOME, not /tmp: /tmp is itself world-writable and would be reported in every case.
  base = mkdtempSync(join(homedir(), ".ext-perm-"));
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe("the private store's directories", () => {
  it("ext's own world-writable directories are made 0755 (a tmpfs /var/lib/ext is 1777)", () => {
    const state = join(base, "var/lib/ext");
    mkdirSync(state, { recursive: true });
    chmodSync(state, 0o1777);
    expect(checkStorePath(join(state, "nix"), state).worldWritable).toEqual([{ path: state, ours: true, sticky: true }]);
    expect(prepareStorePath(join(state, "nix"), state)).toBe(join(state, "nix"));
    expect(statSync(state).mode & 0o7777).toBe(0o755);
    expect(statSync(join(state, "nix")).isDirectory()).toBe(true);
  });

  it("a world-writable directory that is not ext's is a permission error saying what to change", () => {
    const lib = join(base, "var/lib");
    mkdirSync(join(lib, "ext"), { recursive: true });
    chmodSync(lib, 0o777);
    let err: { message: string; hint: string; exitCode: number } | undefined;
    try {
      prepareStorePath(join(lib, "ext/nix"), join(lib, "ext"));
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.message).toBe(`Nix refuses a store below a world-writable directory: ${lib} (for the store ${lib}/ext/nix)`);
    expect(err?.hint).toMatch(new RegExp(`chmod o-w ${lib}'\\), or put the store elsewhere with --store DIR`));
    expect(err?.exitCode).toBe(4);
    // Nothing was created or changed.
    expect(() => statSync(join(lib, "ext/nix"))).toThrow();
    expect(statSync(lib).mode & 0o7777).toBe(0o777);
    // A sticky shared directory (/tmp-like) is not to be chmod'ed: the hint says to move the store.
    chmodSync(lib, 0o1777);
    try {
      prepareStorePath(join(lib, "ext/nix"), join(lib, "ext"));
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.hint).toBe(`${lib} is shared by every user: put the store elsewhere with --store DIR (below directories only their owner can write)`);
  });

  it("a symlink on the way is resolved: Nix gets the real path (~ → /var/home on Fedora Atomic)", () => {
    mkdirSync(join(base, "var/home/me"), { recursive: true });
    symlinkSync("var/home", join(base, "home"));
    const check = checkStorePath(join(base, "home/me/.cache/ext/nix"), join(base, "home/me/.cache/ext"));
    expect(check.realRoot).toBe(join(base, "var/home/me/.cache/ext/nix"));
    expect(check.worldWritable).toEqual([]);
  });
});
