import { rm } from "node:fs/promises";
import type { Layout } from "../base/layout.js";
import type { Journal } from "../base/journal.js";
import { unconfinedReason } from "../generations/confine.js";

/** Removes the journal's temporary paths, only those inside ext's tmp/ (src/generations/confine.ts):
 *  a journal changed outside ext must not make recovery delete anything else. */
export async function removeTemp(l: Layout, journal: Journal): Promise<string[]> {
  const warnings: string[] = [];
  for (const path of journal.temp) {
    const reason = await unconfinedReason(l.tmpDir, path);
    if (reason === "already gone") continue;
    if (reason !== null) {
      warnings.push(`the journal names ${JSON.stringify(path)} as a temporary file, but it is ${reason}: left alone`);
      continue;
    }
    await rm(path, { recursive: true, force: true });
  }
  return warnings;
}
