import { HostView } from "../../image/host.js";
import { missingFiles } from "../../sysext/check.js";
import { ActivationError } from "../../errors.js";
import type { GenerationRecord } from "../../generations/record.js";
import type { TxEnv } from "../types.js";
import { need, type Step } from "../step.js";

// After merging, /usr shows the new generation: its release file and links are there, and the
// previous generation's own links are gone.
export const checkStep: Step = {
  name: "check",
  description: "after merging, /usr shows the new generation and not the previous one",
  when: "changing",
  async run({ env, made }) {
    const plan = need(made, "plan");
    await checkMerged(env, need(made, "record"), plan.kind === "noop" ? null : plan.current);
  },
};

export function releaseFile(extensionName: string): string {
  return `usr/lib/extension-release.d/extension-release.${extensionName}`;
}

/** The new files are visible under /usr and the previous generation's own files are gone. */
export async function checkMerged(env: TxEnv, record: GenerationRecord, previous: GenerationRecord | null): Promise<void> {
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
