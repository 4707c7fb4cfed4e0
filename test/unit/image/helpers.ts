import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ClosureEntry } from "../../../src/nix/types.js";

// A fake chroot store in a temp dir: <root>/nix/store/<hash>-<name>/…, built from a plain description.

const ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";

/** A valid Nix base32 hash derived from a name, so tests read well and stay deterministic. */
export function hashFor(name: string): string {
  let h = 0;
  let out = "";
  for (let i = 0; i < 32; i++) {
    h = (h * 31 + name.charCodeAt(i % name.length) + i) >>> 0;
    out += ALPHABET[h % 32];
  }
  return out;
}

export function storePath(name: string): string {
  return `/nix/store/${hashFor(name)}-${name}`;
}

export type Node = string | Buffer | { link: string } | { exec: string | Buffer } | { mode: number; data: string | Buffer };

export interface TempDirs {
  make(prefix: string): string;
  cleanup(): void;
}

export function tempDirs(): TempDirs {
  const made: string[] = [];
  return {
    make(prefix) {
      const d = mkdtempSync(join(tmpdir(), `ext-${prefix}-`));
      made.push(d);
      return d;
    },
    cleanup() {
      for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** Writes store paths: `{ name: { "bin/foo": "…", "lib/x": { link: "…" } } }` under `<root>/nix/store`. */
export function writeStore(root: string, paths: Record<string, Record<string, Node>>): ClosureEntry[] {
  const closure: ClosureEntry[] = [];
  for (const [name, files] of Object.entries(paths)) {
    const sp = storePath(name);
    const base = join(root, sp);
    mkdirSync(base, { recursive: true });
    for (const [rel, node] of Object.entries(files)) {
      const full = join(base, rel);
      mkdirSync(dirname(full), { recursive: true });
      if (typeof node === "string" || Buffer.isBuffer(node)) {
        writeFileSync(full, node);
        chmodSync(full, 0o444);
      } else if ("link" in node) {
        symlinkSync(node.link, full);
      } else if ("exec" in node) {
        writeFileSync(full, node.exec);
        chmodSync(full, 0o555);
      } else {
        writeFileSync(full, node.data);
        chmodSync(full, node.mode);
      }
    }
    closure.push({ path: sp, narSize: 0, references: [] });
  }
  return closure;
}

/** A host root with the given directories, files and symlinks (relative paths). */
export function writeHost(root: string, spec: { dirs?: string[]; files?: string[]; links?: Record<string, string> }): string {
  for (const d of spec.dirs ?? []) mkdirSync(join(root, d), { recursive: true });
  for (const f of spec.files ?? []) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), "host\n");
  }
  for (const [from, to] of Object.entries(spec.links ?? {})) {
    mkdirSync(dirname(join(root, from)), { recursive: true });
    symlinkSync(to, join(root, from));
  }
  return root;
}
