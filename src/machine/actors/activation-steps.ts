import { writeJournal } from "../../base/journal.js";
import { imagePath } from "../../base/layout.js";
import { storePathsOf, type GenerationRecord } from "../../generations/record.js";
import { writeGeneration } from "../../generations/store.js";
import { linkActiveImage } from "../../sysext/link.js";
import { missingFiles } from "../../sysext/check.js";
import { HostView } from "../../image/host.js";
import { ActivationError } from "../../errors.js";
import type { TxEnv } from "../types.js";

export function releaseFile(extensionName: string): string {
  return `usr/lib/extension-release.d/extension-release.${extensionName}`;
}

/** Writes the new generation's record. `current` still points at the old one until finalize. */
export async function commitStep(env: TxEnv, record: GenerationRecord, created: boolean): Promise<void> {
  env.journal.nextGeneration = record.id;
  env.journal.createdGeneration = created;
  env.journal.nextImage = record.image?.sha256 ?? null;
  await writeJournal(env.layout, env.journal);
  if (created) await writeGeneration(env.layout, record);
  await rootGenerations(env);
}

/** In ext's private store, every generation's store paths are Nix GC roots from the moment its record
 *  exists: otherwise a `nix store gc` on that store (by hand, or Nix's automatic collection when the
 *  disk fills) would delete what the current generation and rollback need, and the next `ext add` would
 *  have to build or fetch them again. `ext gc` narrows the roots to the generations it keeps. The system
 *  store is the user's: ext adds no roots there. */
async function rootGenerations(env: TxEnv): Promise<void> {
  if (env.nix.store.root === "/") return;
  const [{ syncRoots }, { listGenerations }] = await Promise.all([import("../../store/gc.js"), import("../../generations/store.js")]);
  const records = await listGenerations(env.layout);
  await syncRoots(env.nix.store.root, storePathsOf(records));
}

export async function activateStep(env: TxEnv, record: GenerationRecord): Promise<void> {
  env.reporter.phase("activating", record.image ? `generation ${record.id}` : "no packages left: removing the extension");
  await linkActiveImage(env.layout, env.extensionName, record.image ? imagePath(env.layout, record.image.sha256) : null);
  await env.refresh(env.layout);
}

/** The new files are visible under /usr and the previous generation's own files are gone. */
export async function checkStep(env: TxEnv, record: GenerationRecord, previous: GenerationRecord | null): Promise<void> {
  const release = releaseFile(env.extensionName);
  const present = record.image ? [release, ...record.links] : [];
  const absent = record.image ? [] : [release];
  // A previous link that is still ours (into /usr/store) is a leftover; the host's own file, visible
  // again once a package allowed to shadow it is gone, is not.
  const host = new HostView(env.layout.root);
  const stale = [];
  for (const l of (previous?.links ?? []).filter((x) => !record.links.includes(x))) {
    if (await host.isOwnLink(l)) stale.push(l);
  }
  const { missing, unexpected } = await missingFiles(env.layout, { present, absent: [...absent, ...stale] });
  if (missing.length > 0 || unexpected.length > 0) {
    throw new ActivationError(`after merging, /usr does not show generation ${record.id}`, {
      details: [
        ...missing.slice(0, 10).map((m) => `missing: /${m}`),
        ...unexpected.slice(0, 10).map((m) => `still present: /${m}`),
      ].join("\n"),
      hint: "another extension or the host may shadow these files; see 'systemd-sysext status'",
    });
  }
}
