import { isAbsolute } from "node:path";
import { object, readStateFile } from "../base/state-file.js";
import { writeJsonAtomic } from "../fsutil.js";
import type { Layout } from "../base/layout.js";

// The tracked tools.json: `ext apply FILE` remembers FILE in /var/lib/ext/config.json, so that
// `ext add` / `ext remove` keep it in step and `ext apply`, `ext diff`, `ext upgrade` find it without
// being told. Other keys of config.json belong to other parts of ext and are kept as they are.

const KEY = "trackedFile";

async function readConfig(l: Layout): Promise<Record<string, unknown>> {
  return (await readStateFile(l.configFile, (v) => object(v, ""),
    `fix it or remove it (sudo rm ${l.configFile}): ext then tracks no tools.json`)) ?? {};
}

/** The absolute path of the tracked tools.json, or null. */
export async function trackedFile(l: Layout): Promise<string | null> {
  const value = (await readConfig(l))[KEY];
  return typeof value === "string" && isAbsolute(value) ? value : null;
}

/** Tracks `file` (absolute), or nothing (null). Writes only when it changes. */
export async function setTrackedFile(l: Layout, file: string | null): Promise<boolean> {
  const config = await readConfig(l);
  const before = typeof config[KEY] === "string" ? config[KEY] : null;
  if (before === file) return false;
  if (file === null) delete config[KEY];
  else config[KEY] = file;
  await writeJsonAtomic(l.configFile, config);
  return true;
}
