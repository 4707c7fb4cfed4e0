import { mkdir, readFile, readdir, rm, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Layout } from "../base/layout.js";
import { UsageError, errnoCode } from "../errors.js";
import { writeFileAtomic } from "../fsutil.js";
import { enableUnit, quoteExecArg, templatesDir, unitDir, writeUnitFile } from "../boot/units.js";
import { addToKeyring, keyFingerprints, writeKeyring } from "./keys.js";
import { hasSysupdate, renderTransfer, transferFile } from "./sysupdate.js";
import { importKeyring, incomingDir, keyringFile, readSubscription, subscriptionFile, verityCertFile, writeSubscription, type Subscription } from "./subscription.js";
import { run } from "../exec.js";
import { readManifest } from "../manifest/index.js";

// `ext subscribe URL --key KEY`: everything a machine needs to follow a publication, idempotent:
//   /var/lib/ext/subscription.json           the URL, the extension name, the keys' fingerprints
//   /var/lib/ext/subscription/keyring.gpg     the key, for ext's own pull (gpgv)
//   /etc/systemd/import-pubring.gpg           the key added for systemd-sysupdate (systemd-pull reads it)
//   /var/lib/ext/sysupdate.d/ext-NAME.transfer  from templates/ext-pull.transfer
//   /etc/systemd/system/ext-pull.{service,timer}, the timer enabled (timers.target.wants)
//   /var/lib/ext/incoming/                     where verified downloads land
// Nothing is downloaded: the first `ext pull` (or the timer) does that.

export const UPDATE_UNITS = ["ext-pull.service", "ext-pull.timer"] as const;

/** systemd-sysext has no ImagePolicy= setting: its policy is the merging command's --image-policy=.
 *  This drop-in gives the boot-time merge one that takes only signed verity images (`systemd-analyze
 *  image-policy` accepts it in 257 and 262). It holds for every extension on the host, not only ext's. */
export const REQUIRE_SIGNED_POLICY = "root=signed+absent:usr=signed+absent";
const REQUIRE_SIGNED_DROP_IN = [
  "# Written by 'ext subscribe --require-signed' (docs/fleet.md): the boot-time merge takes only signed verity images.",
  "[Service]",
  "ExecStart=",
  `ExecStart=systemd-sysext refresh --image-policy=${REQUIRE_SIGNED_POLICY}`,
  "",
].join("\n");

export function requireSignedDropIn(l: Layout): string {
  return join(unitDir(l), "systemd-sysext.service.d", "50-ext-require-signed.conf");
}

export interface SubscribeOptions {
  url?: string;
  key?: string;
  /** Take url, key and schedule from this tools.json's "subscription" entry. */
  manifest?: string;
  schedule?: string;
  /** PEM certificate that signs the published verity DDIs; with it plain images are refused. */
  verityCert?: string;
  /** Also make the boot-time merge (systemd-sysext.service) require signed verity images. */
  requireSigned?: boolean;
  extCommand: string;
  extensionName: string;
}

export interface SubscribeResult {
  subscription: Subscription;
  files: string[];
  sysupdate: boolean;
}

const DEFAULT_SCHEDULE = "daily";

export async function subscribe(l: Layout, opts: SubscribeOptions): Promise<SubscribeResult> {
  const wanted = await fromManifest(opts);
  const url = checkUrl(wanted.url);
  if (wanted.key === undefined) throw new UsageError("a subscription needs the key that signs SHA256SUMS", { hint: "ext subscribe URL --key fleet.asc (gpg --export --armor KEYID on the publishing side)" });
  const schedule = wanted.schedule ?? DEFAULT_SCHEDULE;
  if (!/^[A-Za-z0-9 *:,./~-]{1,100}$/.test(schedule)) throw new UsageError(`'${schedule}' is not an OnCalendar= schedule ext accepts`, { hint: "e.g. daily, hourly, 'Mon *-*-* 03:00'" });
  if (opts.requireSigned && opts.verityCert === undefined) {
    throw new UsageError("--require-signed needs --verity-cert CERT.pem", { hint: "the certificate of 'ext publish --ddi' that signs the images this machine takes" });
  }
  const fingerprints = await keyFingerprints(wanted.key);
  const previous = await readSubscription(l);
  const files: string[] = [];
  await writeKeyring(wanted.key, keyringFile(l));
  files.push(keyringFile(l));
  if (opts.verityCert !== undefined) {
    await writeFileAtomic(verityCertFile(l), await readCertificate(resolve(opts.verityCert)));
    files.push(verityCertFile(l));
  } else {
    // A subscription says what it checks: subscribing again without a certificate drops the old one.
    await unlink(verityCertFile(l)).catch((e) => {
      if (errnoCode(e) !== "ENOENT") throw e;
    });
  }
  const sysupdate = await hasSysupdate();
  let createdImportKeyring = previous?.createdImportKeyring ?? false;
  if (sysupdate) {
    await mkdir(dirname(importKeyring(l)), { recursive: true });
    createdImportKeyring = (await addToKeyring(keyringFile(l), importKeyring(l))) || createdImportKeyring;
    files.push(importKeyring(l));
  }
  if (opts.requireSigned) {
    await mkdir(dirname(requireSignedDropIn(l)), { recursive: true });
    await writeUnitFile(requireSignedDropIn(l), REQUIRE_SIGNED_DROP_IN);
    files.push(requireSignedDropIn(l));
  } else {
    await unlink(requireSignedDropIn(l)).catch((e) => {
      if (errnoCode(e) !== "ENOENT") throw e;
    });
  }
  await writeFileAtomic(transferFile(l, opts.extensionName), await renderTransfer(url, opts.extensionName));
  files.push(transferFile(l, opts.extensionName));
  for (const unit of UPDATE_UNITS) {
    const path = join(unitDir(l), unit);
    const template = await readFile(join(templatesDir(), unit), "utf8");
    const command = opts.extensionName === "ext" ? opts.extCommand : `${opts.extCommand} --name ${quoteExecArg(opts.extensionName)}`;
    await writeUnitFile(path, template.replace(/@EXT@/g, command).replace(/@SCHEDULE@/g, schedule));
    files.push(path);
  }
  files.push((await enableUnit(unitDir(l), "ext-pull.timer", "timers.target")).wantsLink);
  // Downloads were verified against the previous channel's list and key: kept, an `ext_7.raw` of
  // another channel would pass for this one's version 7. Generations never point into incoming/
  // (the import copies into images/), so another URL or key starts from an empty directory.
  const sameChannel = previous != null && previous.url === url && previous.fingerprints.join() === fingerprints.join();
  await mkdir(incomingDir(l), { recursive: true, mode: 0o755 });
  // Its contents, not the directory: it may be a mount point of its own (a bigger disk for downloads).
  if (!sameChannel) for (const name of await readdir(incomingDir(l))) await rm(join(incomingDir(l), name), { recursive: true, force: true });
  const subscription: Subscription = {
    url, name: opts.extensionName, fingerprints, schedule, createdImportKeyring,
    subscribedAt: previous?.url === url ? previous.subscribedAt : new Date().toISOString(),
  };
  await writeSubscription(l, subscription);
  files.push(subscriptionFile(l));
  return { subscription, files, sysupdate };
}

/** Removes what subscribe installed; the generations it made stay (they are history). */
export async function unsubscribe(l: Layout): Promise<string[]> {
  const sub = await readSubscription(l);
  const paths = [
    join(unitDir(l), "timers.target.wants", "ext-pull.timer"),
    ...UPDATE_UNITS.map((u) => join(unitDir(l), u)),
    ...(sub ? [transferFile(l, sub.name)] : []),
    keyringFile(l),
    verityCertFile(l),
    requireSignedDropIn(l),
    ...(sub?.createdImportKeyring ? [importKeyring(l)] : []),
    subscriptionFile(l),
  ];
  const removed: string[] = [];
  for (const p of paths) {
    try {
      await unlink(p);
      removed.push(p);
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e;
    }
  }
  return removed;
}

/** One PEM X.509 certificate, as openssl reads it; anything else (a private key above all) is refused. */
async function readCertificate(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read the verity certificate ${file}: ${errnoCode(e) ?? String(e)}`);
  }
  if (/PRIVATE KEY/.test(text)) throw new UsageError(`${file} holds a private key: give the certificate (--verity-cert CERT.pem), never the key`);
  const parsed = await run("openssl", ["x509", "-noout", "-in", file], { reject: false });
  if (parsed.exitCode !== 0 || !text.includes("BEGIN CERTIFICATE")) {
    throw new UsageError(`${file} is not a PEM X.509 certificate`, { hint: "the --verity-cert the publisher gave 'ext publish --ddi' (openssl x509 -in FILE -noout -text shows it)" });
  }
  return text;
}

function checkUrl(url: string | undefined): string {
  if (url === undefined) throw new UsageError("name the URL the images are published at", { hint: "ext subscribe https://updates.example/ext --key fleet.asc, or a tools.json with a \"subscription\" entry" });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`'${url}' is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`'${url}' is not an http or https URL`, { hint: "systemd-sysupdate's url-file transfers fetch over HTTP(S); serve the published directory with any web server" });
  }
  if (parsed.search || parsed.hash || parsed.username) throw new UsageError(`'${url}' has a query, fragment or credentials; give the directory's plain URL`);
  return url.replace(/\/+$/, "");
}

async function fromManifest(opts: SubscribeOptions): Promise<{ url?: string; key?: string; schedule?: string }> {
  if (opts.manifest === undefined) return { ...(opts.url ? { url: opts.url } : {}), ...(opts.key ? { key: resolve(opts.key) } : {}), ...(opts.schedule ? { schedule: opts.schedule } : {}) };
  const m = await readManifest(opts.manifest);
  const s = m.data.subscription;
  if (!s) throw new UsageError(`${m.shown} has no "subscription" entry`, { hint: 'add "subscription": { "url": "https://…", "key": "fleet.asc" } (docs/fleet.md)' });
  return {
    url: opts.url ?? s.url,
    ...(opts.key ? { key: resolve(opts.key) } : s.key ? { key: resolve(dirname(m.file), s.key) } : {}),
    ...(opts.schedule ?? s.schedule ? { schedule: opts.schedule ?? s.schedule } : {}),
  };
}
