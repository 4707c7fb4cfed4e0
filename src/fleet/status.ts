import type { Layout } from "../base/layout.js";
import type { GenerationRecord } from "../generations/record.js";
import { listGenerations } from "../generations/store.js";
import { readCheckStatus, readSubscription, type CheckStatus } from "./subscription.js";
import { compareVersions } from "./versions.js";

// The fleet part of `ext status`: what the machine follows, what it runs, and how the last check went.

export interface SubscriptionStatus {
  url: string;
  name: string;
  fingerprints: string[];
  schedule: string;
  /** The published version the current generation is (null: the current set was not imported). */
  installedVersion: string | null;
  /** The newest version imported so far, and its generation (after a rollback it is not current). */
  newestImported: { version: string; generation: number } | null;
  lastCheck: CheckStatus | null;
}

export async function subscriptionStatus(l: Layout, current: GenerationRecord | null): Promise<SubscriptionStatus | null> {
  const sub = await readSubscription(l);
  if (!sub) return null;
  let newest: SubscriptionStatus["newestImported"] = null;
  for (const g of await listGenerations(l)) {
    if (g.origin?.url !== sub.url) continue;
    if (newest === null || compareVersions(g.origin.version, newest.version) > 0) newest = { version: g.origin.version, generation: g.id };
  }
  return {
    url: sub.url,
    name: sub.name,
    fingerprints: sub.fingerprints,
    schedule: sub.schedule,
    installedVersion: current?.origin?.url === sub.url ? current.origin.version : null,
    newestImported: newest,
    lastCheck: (await readCheckStatus(l)) ?? null,
  };
}

export function formatSubscriptionStatus(s: SubscriptionStatus | null): string[] {
  if (!s) return [];
  const lines = [
    `subscription: ${s.url} (checked ${s.schedule})`,
    `  installed:  ${s.installedVersion === null ? "no published version is current" : `version ${s.installedVersion}`}`,
  ];
  if (s.newestImported && s.newestImported.version !== s.installedVersion) {
    lines.push(`  newest:     version ${s.newestImported.version} (generation ${s.newestImported.generation}; 'sudo ext rollback --to ${s.newestImported.generation}' returns to it)`);
  }
  const c = s.lastCheck;
  lines.push(c ? `  last check: ${c.at} ${c.result} via ${c.via}: ${c.message}` : "  last check: never ('sudo ext pull' checks now)");
  return lines;
}
