import type { CommandContext } from "../context.js";
import { asRoot } from "../context.js";
import { transact, formatTransaction, type TransactionResult } from "../transact.js";
import { readCurrentGeneration } from "../../generations/store.js";
import { UsageError } from "../../errors.js";
import type { PackageSpec } from "../../machine/types.js";
import type { InstalledPackage } from "../../generations/record.js";
import { nixPinner, previewSet, refreshingNix, resolveManifest, unpinnedReference, type Preview } from "../../manifest/index.js";
import { loadTracked, manifestContext, updateLock, type LockUpdate } from "../manifest-sync.js";
import { formatPreview } from "./diff.js";
import { autoUpgrade, formatAutoUpgradeRun, type AutoUpgradeResult } from "./auto-upgrade.js";

// `ext upgrade [PKG…]`: pin each source (of the named packages, or of all) to its newest revision,
// resolve those packages again, show the version changes, and apply them in one transaction
// (--dry-run: only show). With a tracked tools.json the lock gets the new pins; without one, the
// installed packages are upgraded from the sources they came from.

export interface UpgradeOptions {
  packages: string[];
  dryRun?: boolean;
  /** What ext-upgrade.timer runs (src/cli/commands/auto-upgrade.ts). */
  auto?: boolean;
}

export interface UpgradeResult {
  file: string | null;
  dryRun: boolean;
  /** Sources pinned again: old pin (null: none) → new pin. */
  sources: { source: string; from: string | null; to: string }[];
  plan: Preview;
  transaction: TransactionResult | null;
  lock: LockUpdate | null;
}

export async function upgrade(ctx: CommandContext, opts: UpgradeOptions): Promise<UpgradeResult | AutoUpgradeResult> {
  if (opts.auto) {
    if (opts.packages.length > 0 || opts.dryRun) throw new UsageError("--auto upgrades everything and takes no package names nor --dry-run", { hint: "it is what ext-upgrade.timer runs ('ext setup --auto-upgrade WHEN'); 'ext upgrade --dry-run' shows what would change" });
    return autoUpgrade(ctx, (c) => upgradeSet(c, { packages: [] }));
  }
  return upgradeSet(ctx, opts);
}

async function upgradeSet(ctx: CommandContext, opts: UpgradeOptions): Promise<UpgradeResult> {
  if (!opts.dryRun) await asRoot(ctx, opts.packages.length ? `upgrading ${opts.packages.join(", ")}` : "upgrading the installed packages", ["upgrade", ...opts.packages]);
  const nix = refreshingNix(ctx.nix);
  const current = await readCurrentGeneration(ctx.layout);
  const tracked = await loadTracked(ctx);

  if (tracked) {
    const { manifest, lock } = tracked;
    const unknown = opts.packages.filter((n) => !manifest.entries.some((e) => e.name === n));
    if (unknown.length > 0) {
      throw new UsageError(`not in ${manifest.shown}: ${unknown.join(", ")}`, { hint: `it lists: ${manifest.entries.map((e) => e.name).join(", ") || "nothing"}` });
    }
    const selected = manifest.entries.filter((e) => opts.packages.length === 0 || opts.packages.includes(e.name));
    const refresh = new Set(selected.map((e) => e.source));
    const resolution = await resolveManifest(manifest, lock, nix, {
      refresh,
      reresolve: new Set(selected.map((e) => e.name)),
      pin: nixPinner(nix),
    });
    const sources = [...refresh].map((source) => ({ source, from: lock?.data.sources[source]?.locked ?? null, to: resolution.pins.get(source)!.locked }));
    const plan = await previewSet(ctx.nix, current, resolution.specs, resolution.locked);
    const mctx = manifestContext(ctx, manifest);
    if (opts.dryRun) return { file: manifest.file, dryRun: true, sources, plan, transaction: null, lock: null };
    // Nothing new: keep the generation; the lock still records that the sources were checked.
    const transaction = plan.unchanged ? null : await transact(mctx, { kind: "set", packages: resolution.specs, locked: resolution.locked });
    const lockUpdate = await updateLock(mctx, manifest, lock, plan.unchanged ? unchangedPins(resolution.pins, lock?.data.sources) : resolution.pins);
    return { file: manifest.file, dryRun: false, sources, plan, transaction, lock: lockUpdate };
  }

  // No tracked file: the installed packages, each from the newest revision of its source.
  const installed = current?.packages ?? [];
  const unknown = opts.packages.filter((n) => !installed.some((p) => p.name === n));
  if (unknown.length > 0) {
    throw new UsageError(`not installed: ${unknown.join(", ")}`, { hint: installed.length > 0 ? `installed are: ${installed.map((p) => p.name).join(", ")}` : "nothing is installed" });
  }
  const selected = installed.filter((p) => opts.packages.length === 0 || opts.packages.includes(p.name));
  const pinner = nixPinner(nix);
  const pins = new Map<string, string>();
  const sources: UpgradeResult["sources"] = [];
  for (const original of new Set(selected.map((p) => unpinnedReference(p.source)))) {
    const pin = await pinner(original);
    pins.set(original, pin.locked);
    sources.push({ source: original, from: null, to: pin.locked });
  }
  const specs: PackageSpec[] = installed.map((p) => specFromInstalled(p, selected.includes(p) ? pins.get(unpinnedReference(p.source))! : p.source));
  const plan = await previewSet(ctx.nix, current, specs, []);
  if (opts.dryRun || plan.unchanged) return { file: null, dryRun: !!opts.dryRun, sources, plan, transaction: null, lock: null };
  const transaction = await transact(ctx, { kind: "set", packages: specs });
  return { file: null, dryRun: false, sources, plan, transaction, lock: null };
}

/** When the upgrade found nothing new, a source whose pin only differs in its timestamp keeps the old
 *  pin, so the lock does not change for nothing. */
function unchangedPins(fresh: ReadonlyMap<string, { locked: string; narHash?: string; rev?: string }>, old: Record<string, { locked: string; narHash?: string; rev?: string }> | undefined) {
  const out = new Map(fresh);
  for (const [source, pin] of fresh) {
    const before = old?.[source];
    if (before && (before.narHash ?? before.rev) === (pin.narHash ?? pin.rev)) out.set(source, before);
  }
  return out as Map<string, { locked: string }>;
}

function specFromInstalled(p: InstalledPackage, source: string): PackageSpec {
  const spec: PackageSpec = { name: p.name, attr: p.attr, source };
  if (p.outputs !== undefined) spec.outputs = [...p.outputs];
  if (p.priority !== undefined) spec.priority = p.priority;
  if (p.allowShadow) spec.allowShadow = true;
  if (p.allowUnfree) spec.allowUnfree = true;
  return spec;
}

export function formatUpgrade(r: UpgradeResult | AutoUpgradeResult): string[] {
  if ("auto" in r) return formatAutoUpgradeRun(r, formatUpgrade);
  const lines: string[] = [];
  for (const s of r.sources) if (s.from !== s.to) lines.push(`${s.source}: ${s.from === null ? "" : `${s.from} → `}${s.to}`);
  if (r.plan.unchanged) {
    lines.push("everything is up to date");
    if (r.lock?.written) lines.push(`wrote ${r.lock.file}`);
    return lines;
  }
  if (r.dryRun || !r.transaction) return [...lines, ...formatPreview(r.file ?? "the upgrade", r.plan)];
  lines.push(...r.plan.changed.map((c) => `${c.name} ${c.from} → ${c.to}`));
  lines.push(...formatTransaction(r.transaction));
  if (r.lock?.written) lines.push(`wrote ${r.lock.file}`);
  return lines;
}
