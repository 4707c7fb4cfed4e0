import type { CommandContext } from "../context.js";
import { readCurrentGeneration } from "../../generations/store.js";
import { readJournal } from "../../base/journal.js";
import { activeImageSha } from "../../sysext/link.js";
import { isMerged } from "../../sysext/sysext.js";
import { formatBytes } from "../output.js";
import { bootSummary, formatBootSummary, type BootSummary } from "../../boot/report.js";
import { describeStore, formatStore, type StoreDescription } from "../../store/index.js";
import { subscriptionStatus, formatSubscriptionStatus, type SubscriptionStatus } from "../../fleet/status.js";
import { autoUpgradeStatus, formatAutoUpgrade, type AutoUpgradeStatus } from "../../fleet/auto-upgrade.js";

export interface StatusResult {
  root: string;
  extensionName: string;
  generation: number | null;
  packages: string[];
  image: { sha256: string; size: number } | null;
  /** The image linked in /var/lib/extensions: the current one, none, or a file ext did not put there. */
  linked: string | null;
  linkedMatchesGeneration: boolean;
  merged: boolean;
  /** An unfinished transaction is waiting for recovery (run any ext command that changes state). */
  interrupted: { command: string; phase: string } | null;
  /** Boot selection (ext setup): pending generation and its tries, last good, last boot, last revert. */
  boot: BootSummary | null;
  /** The Nix store ext uses (system or private) and why. */
  store: StoreDescription;
  /** The subscription (ext subscribe), the version installed and the last check; null without one. */
  subscription: SubscriptionStatus | null;
  /** ext setup --auto-upgrade: the timer, its schedule and the last run of `ext upgrade --auto`. */
  autoUpgrade: AutoUpgradeStatus;
}

export async function status(ctx: CommandContext): Promise<StatusResult> {
  const current = await readCurrentGeneration(ctx.layout);
  const linked = await activeImageSha(ctx.layout, ctx.extensionName);
  const journal = await readJournal(ctx.layout);
  return {
    root: ctx.layout.root,
    extensionName: ctx.extensionName,
    generation: current?.id ?? null,
    packages: current?.packages.map((p) => p.name) ?? [],
    image: current?.image ? { sha256: current.image.sha256, size: current.image.size } : null,
    linked,
    linkedMatchesGeneration: (current?.image?.sha256 ?? null) === linked,
    merged: await isMerged(ctx.layout, ctx.extensionName),
    interrupted: journal ? { command: journal.command, phase: journal.phase } : null,
    boot: await bootSummary(ctx.layout, ctx.boot?.id),
    store: describeStore(ctx.nix.store),
    subscription: await subscriptionStatus(ctx.layout, current),
    autoUpgrade: await autoUpgradeStatus(ctx.layout),
  };
}

export function formatStatus(s: StatusResult): string[] {
  const lines = [
    `generation: ${s.generation ?? "none"}${s.packages.length ? ` (${s.packages.join(", ")})` : ""}`,
    `image:      ${s.image ? `${s.image.sha256.slice(0, 12)} ${formatBytes(s.image.size)}` : "none"}`,
    `linked:     ${s.linked === null ? "nothing" : s.linked === "foreign" ? "a file ext did not put there" : s.linked.slice(0, 12)}${s.linkedMatchesGeneration ? "" : "  (does not match the current generation)"}`,
    `merged:     ${s.merged ? "yes" : "no"}`,
    `nix store:  ${formatStore(s.store)}`,
    ...s.store.problems.map((p) => `            problem: ${p}`),
  ];
  if (s.interrupted) lines.push(`interrupted: '${s.interrupted.command}' during ${s.interrupted.phase}; the next ext command recovers it`);
  lines.push(...formatBootSummary(s.boot));
  lines.push(...formatSubscriptionStatus(s.subscription));
  lines.push(...formatAutoUpgrade(s.autoUpgrade));
  return lines;
}
