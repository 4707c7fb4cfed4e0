import { join } from "node:path";
import type { Layout } from "../base/layout.js";
import { readStateFile, field, object, list, str, bool, nullable, oneOf, count } from "../base/state-file.js";
import { writeJsonAtomic } from "../fsutil.js";
import { UsageError } from "../errors.js";

// A machine's subscription (ext subscribe): where its extension set is published and the key that
// must have signed it. Kept in /var/lib/ext/subscription.json; the outcome of the last check in
// subscription-status.json, which `ext status` shows.

export interface Subscription {
  url: string;
  /** The extension name the images carry (NAME_VERSION.raw ↔ extension-release.NAME). */
  name: string;
  /** Fingerprints of the keys in the subscription's keyring. */
  fingerprints: string[];
  /** OnCalendar= of ext-pull.timer. */
  schedule: string;
  /** ext created /etc/systemd/import-pubring.gpg (sysupdate's keyring); unsubscribe may remove it. */
  createdImportKeyring: boolean;
  subscribedAt: string;
}

export type CheckResult = "installed" | "up-to-date" | "failed";

export interface CheckStatus {
  at: string;
  result: CheckResult;
  /** How the files were fetched and verified. */
  via: "sysupdate" | "ext";
  /** The newest version the server listed (when the list was read and trusted). */
  newest: string | null;
  /** The generation the check made or found. */
  generation: number | null;
  message: string;
}

export function subscriptionFile(l: Layout): string {
  return join(l.stateDir, "subscription.json");
}

export function statusFile(l: Layout): string {
  return join(l.stateDir, "subscription-status.json");
}

/** The verified downloads, one file per version, before they become generations. */
export function incomingDir(l: Layout): string {
  return join(l.stateDir, "incoming");
}

/** The subscription's keys, as a binary OpenPGP keyring (what gpgv --keyring reads). */
export function keyringFile(l: Layout): string {
  return join(l.stateDir, "subscription", "keyring.gpg");
}

/** The publisher's verity certificate (ext subscribe --verity-cert): with it, only signed verity DDIs
 *  are imported (src/image/verity.ts checks them against it). */
export function verityCertFile(l: Layout): string {
  return join(l.stateDir, "subscription", "verity.crt");
}

/** ext's sysupdate transfer definitions (systemd-sysupdate --definitions=). */
export function definitionsDir(l: Layout): string {
  return join(l.stateDir, "sysupdate.d");
}

/** systemd-pull's keyring for signed SHA256SUMS (systemd's src/import/pull-common.c). */
export function importKeyring(l: Layout): string {
  return join(l.root, "etc/systemd/import-pubring.gpg");
}

function subscriptionShape(value: unknown): Subscription {
  const o = object(value, "");
  return {
    url: field(o, "", "url", str),
    name: field(o, "", "name", str),
    fingerprints: field(o, "", "fingerprints", list(str)),
    schedule: field(o, "", "schedule", str),
    createdImportKeyring: field(o, "", "createdImportKeyring", bool),
    subscribedAt: field(o, "", "subscribedAt", str),
  };
}

function statusShape(value: unknown): CheckStatus {
  const o = object(value, "");
  return {
    at: field(o, "", "at", str),
    result: field(o, "", "result", oneOf(["installed", "up-to-date", "failed"] as const)),
    via: field(o, "", "via", oneOf(["sysupdate", "ext"] as const)),
    newest: field(o, "", "newest", nullable(str)),
    generation: field(o, "", "generation", nullable(count)),
    message: field(o, "", "message", str),
  };
}

export async function readSubscription(l: Layout): Promise<Subscription | undefined> {
  return readStateFile(subscriptionFile(l), subscriptionShape, `move it away (sudo mv ${subscriptionFile(l)} /root/) and run 'ext subscribe URL --key FILE' again`);
}

export async function requireSubscription(l: Layout): Promise<Subscription> {
  const s = await readSubscription(l);
  if (!s) throw new UsageError("this machine has no subscription", { hint: "subscribe first: sudo ext subscribe URL --key KEY.asc (docs/fleet.md)" });
  return s;
}

export async function writeSubscription(l: Layout, s: Subscription): Promise<void> {
  await writeJsonAtomic(subscriptionFile(l), s);
}

export async function readCheckStatus(l: Layout): Promise<CheckStatus | undefined> {
  return readStateFile(statusFile(l), statusShape, `move it away (sudo mv ${statusFile(l)} /root/); the next 'ext pull' writes it again`);
}

export async function writeCheckStatus(l: Layout, s: CheckStatus): Promise<void> {
  await writeJsonAtomic(statusFile(l), s);
}
