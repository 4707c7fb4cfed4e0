import { join, resolve } from "node:path";

// Every path ext writes on a host, in one place. `root` is "/" or the --root directory.

export interface Layout {
  root: string;
  stateDir: string;
  imagesDir: string;
  generationsDir: string;
  tmpDir: string;
  stageCacheDir: string;
  currentFile: string;
  journalFile: string;
  lockFile: string;
  bootStateFile: string;
  configFile: string;
  extensionsDir: string;
  runtimeExtensionsDir: string;
  usrDir: string;
}

export function layout(root = "/"): Layout {
  const r = resolve(root);
  const stateDir = join(r, "var/lib/ext");
  return {
    root: r,
    stateDir,
    imagesDir: join(stateDir, "images"),
    generationsDir: join(stateDir, "generations"),
    // Same file system as images/, so a finished image is renamed into place, never copied.
    tmpDir: join(stateDir, "tmp"),
    // Relocated store paths kept between transactions (src/image/stage-cache.ts); renamed to and from
    // tmp/, so it must be on tmp/'s file system.
    stageCacheDir: join(stateDir, "staged"),
    currentFile: join(stateDir, "current.json"),
    journalFile: join(stateDir, "journal.json"),
    lockFile: join(stateDir, "lock"),
    bootStateFile: join(stateDir, "boot.json"),
    configFile: join(stateDir, "config.json"),
    extensionsDir: join(r, "var/lib/extensions"),
    runtimeExtensionsDir: join(r, "run/extensions"),
    usrDir: join(r, "usr"),
  };
}

export function imagePath(l: Layout, sha256: string): string {
  return join(l.imagesDir, `${sha256}.raw`);
}

export function generationPath(l: Layout, id: number): string {
  return join(l.generationsDir, `${id}.json`);
}

export function activeLinkPath(l: Layout, extensionName: string): string {
  return join(l.extensionsDir, `${extensionName}.raw`);
}
