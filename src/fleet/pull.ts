import { access, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Layout } from "../base/layout.js";
import type { Reporter } from "../base/reporter.js";
import type { TxRequest } from "../machine/types.js";
import { listGenerations } from "../generations/store.js";
import { ExitCode, ExtError, isExtError } from "../errors.js";
import { hasSysupdate, sysupdateUpdate } from "./sysupdate.js";
import { checkKeyTimes } from "./keys.js";
import { download, fetchList, incomingVersions, pruneIncoming, TamperedError } from "./fetch.js";
import type { SumEntry } from "./sums.js";
import { sha256File } from "../image/pack.js";
import { compareVersions } from "./versions.js";
import { incomingDir, keyringFile, requireSubscription, verityCertFile, writeCheckStatus, type CheckStatus, type Subscription } from "./subscription.js";

// `ext pull`: one check of the subscription, as ext-pull.timer runs it. Fetch and verify the
// newest published version (systemd-sysupdate where the host has it, else ext's own pull of the same
// files with the same checks), then make it a generation. A version is imported once: after
// `ext rollback` the next check does not bring it back; only a newer version does. Every outcome,
// failures included, is written to subscription-status.json for `ext status`.

export type Via = "auto" | "sysupdate" | "ext";

/** How far ahead of this machine's clock a signature may be before ext says so. */
const CLOCK_SLACK_MS = 10 * 60_000;

export interface PullOptions {
  via?: Via;
}

/** What a transaction reports, as pull reads it (src/cli/transact.ts has the whole result). */
export interface ImportOutcome {
  status: "done" | "noop";
  generation: number | null;
  reason?: string;
}

/** What pull is given by its command (src/cli/commands/subscribe.ts): the transaction runs there,
 *  so this module needs nothing from cli/. */
export interface PullEnv<T extends ImportOutcome> {
  layout: Layout;
  reporter: Reporter;
  /** Runs the import request as a transaction for the extension the subscription names. */
  transact(extensionName: string, request: Extract<TxRequest, { kind: "import" }>): Promise<T>;
}

export interface PullResult<T extends ImportOutcome = ImportOutcome> {
  via: "sysupdate" | "ext";
  newest: string | null;
  /** The transaction, when one ran. */
  transaction: T | null;
  /** Why nothing was installed, when nothing was. */
  reason?: string;
}

export async function pull<T extends ImportOutcome>(ctx: PullEnv<T>, opts: PullOptions = {}): Promise<PullResult<T>> {
  const sub = await requireSubscription(ctx.layout);
  const via = await chooseVia(ctx, opts.via ?? "auto");
  const started = new Date().toISOString();
  let newest: string | null = null;
  try {
    const expired = await checkKeyTimes(keyringFile(ctx.layout));
    /** The list ext verified itself, where it did (systemd-sysupdate with an expired key in the keyring). */
    let checked: SumEntry[] | null = null;
    const incoming = incomingDir(ctx.layout);
    await mkdir(incoming, { recursive: true, mode: 0o755 });
    if (via === "sysupdate") {
      ctx.reporter.phase("checking", `${sub.url} (systemd-sysupdate)`);
      // systemd-pull accepts a signature by an expired (sub)key dated before its expiry and does not say
      // which key signed. Where the keyring has such a key, ext checks the signed list itself first
      // (the same files; verifyDetached names the signer); the download is still systemd-sysupdate's.
      if (expired.length > 0) checked = await checkList(sub, keyringFile(ctx.layout));
      await sysupdateUpdate(ctx.layout);
    } else {
      ctx.reporter.phase("checking", sub.url);
      await ownPull(ctx, sub, incoming);
    }
    const have = (await incomingVersions(incoming, sub.name))[0];
    newest = have?.version ?? null;
    if (!have) {
      const reason = `${sub.url} lists no ${sub.name}_<version>.raw yet`;
      await record(ctx, { at: started, result: "up-to-date", via, newest, generation: null, message: reason });
      return { via, newest, transaction: null, reason };
    }
    const imported = (await listGenerations(ctx.layout)).filter((g) => g.origin?.url === sub.url);
    const already = imported.find((g) => g.origin && compareVersions(g.origin.version, have.version) >= 0);
    if (already) {
      const reason = `version ${already.origin!.version} was installed as generation ${already.id}; nothing newer is published`;
      await record(ctx, { at: started, result: "up-to-date", via, newest, generation: already.id, message: reason });
      return { via, newest, transaction: null, reason };
    }
    // systemd-pull fetched the list again after ext's check: a server that switched lists between the
    // two (to one signed by the expired key) must not get its image in. What is imported is only a
    // file that the list ext verified names, with that sha256.
    if (checked) await matchesChecked(sub.url, have.file, checked);
    const certificate = await exists(verityCertFile(ctx.layout)) ? verityCertFile(ctx.layout) : undefined;
    let transaction: T;
    try {
      transaction = await ctx.transact(sub.name, { kind: "import", image: have.file, version: have.version, url: sub.url, ...(certificate ? { certificate } : {}) });
    } catch (e) {
      // A download whose signed list matched but whose contents the import refused (a verity DDI that
      // does not verify, an image that is not ext's) is not kept: nothing refused stays in incoming/,
      // and the next check fetches the version again rather than finding it "already there".
      if (isExtError(e) && e.code === "bad-image") await rm(have.file, { force: true });
      throw e;
    }
    await record(ctx, {
      at: started, result: "installed", via, newest, generation: transaction.generation,
      message: transaction.status === "noop" ? transaction.reason ?? "" : `version ${have.version} is generation ${transaction.generation}`,
    });
    return { via, newest, transaction };
  } catch (e) {
    const message = isExtError(e) ? e.message : e instanceof Error ? e.message : String(e);
    await record(ctx, { at: started, result: "failed", via, newest, generation: null, message }).catch(() => {});
    throw e;
  }
}

async function chooseVia(ctx: { reporter: Reporter }, via: Via): Promise<"sysupdate" | "ext"> {
  const present = await hasSysupdate();
  if (via === "sysupdate" && !present) {
    throw new ExtError("systemd-sysupdate is not on this host", {
      exitCode: ExitCode.missingTool,
      hint: "it ships with systemd ≥ 251 (Debian 13 and later: apt install systemd-container); 'ext pull --via ext' fetches the same files with ext's own verification (gpgv + sha256)",
    });
  }
  if (via !== "auto") return via;
  if (present) return "sysupdate";
  ctx.reporter.info("systemd-sysupdate is not on this host (Debian 12 has none): fetching with ext's own verification of the same files (gpgv signature of SHA256SUMS, sha256 of the image)");
  return "ext";
}

/** The subscription's signed list verified by ext (fetched into a scratch directory, then dropped). */
async function checkList(sub: Subscription, keyring: string): Promise<SumEntry[]> {
  const scratch = await mkdtemp(join(tmpdir(), "ext-pull-"));
  try {
    return (await fetchList(sub.url, sub.name, keyring, scratch)).entries;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** FILE (a download of systemd-sysupdate's) is one that ENTRIES list, with their sha256; else it is
 *  removed and refused. */
async function matchesChecked(url: string, file: string, entries: readonly SumEntry[]): Promise<void> {
  const name = basename(file);
  const entry = entries.find((e) => e.file === name);
  const got = await sha256File(file);
  if (entry?.sha256 === got) return;
  await rm(file, { force: true });
  throw new TamperedError(`${name} from ${url} is not the file of the SHA256SUMS ext verified (${entry ? `listed ${entry.sha256.slice(0, 16)}…, got ${got.slice(0, 16)}…` : "not listed there"}): the list changed between ext's check and systemd-sysupdate's download; refused, nothing was installed`, {
    hint: "a publisher who published just then: the next check takes it; otherwise the server is serving other lists to other requests — tell whoever runs it",
  });
}

async function ownPull(ctx: { layout: Layout; reporter: Reporter }, sub: Subscription, incoming: string): Promise<void> {
  await pruneIncoming(incoming, sub.name, 2);
  const scratch = await mkdtemp(join(tmpdir(), "ext-pull-"));
  try {
    const listed = await fetchList(sub.url, sub.name, keyringFile(ctx.layout), scratch);
    // Not refused: a signature needs the key whatever its date, and versions, not dates, decide
    // what is newer. A wrong clock on either side is worth saying, though.
    if (listed.signedAt !== null && listed.signedAt * 1000 > Date.now() + CLOCK_SLACK_MS) {
      ctx.reporter.warn(`${sub.url}/SHA256SUMS was signed on ${new Date(listed.signedAt * 1000).toISOString()}, in the future by this machine's clock (${new Date().toISOString()}): is this clock or the publisher's wrong?`);
    }
    if (!listed.newest) return;
    const have = (await incomingVersions(incoming, sub.name))[0];
    if (have && compareVersions(have.version, listed.newest.version) >= 0) return;
    await download(sub.url, listed.newest.entry, incoming, ctx.reporter);
    await pruneIncoming(incoming, sub.name, 2);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

async function record(ctx: { layout: Layout }, status: CheckStatus): Promise<void> {
  await writeCheckStatus(ctx.layout, status);
}
