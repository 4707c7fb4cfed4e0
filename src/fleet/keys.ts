import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../exec.js";
import { ExtError, UsageError, errnoCode } from "../errors.js";
import { writeFileAtomic } from "../fsutil.js";

// The OpenPGP side of a subscription, through Debian's gpg and gpgv. Every call gets a throw-away
// --homedir: ext never reads or writes root's ~/.gnupg, and no agent or trust database is involved.

export class SignatureError extends ExtError {
  override readonly code = "bad-signature";
}

async function withHome<T>(fn: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(join(tmpdir(), "ext-gpg-"));
  try {
    return await fn(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** The fingerprints of the public keys in FILE (armored or binary); a secret key or none is refused. */
export async function keyFingerprints(file: string): Promise<string[]> {
  try {
    await readFile(file);
  } catch (e) {
    throw new UsageError(`cannot read the key ${file} (${errnoCode(e) ?? String(e)})`);
  }
  const out = await withHome((home) => run("gpg", ["--homedir", home, "--batch", "--with-colons", "--show-keys", file], { reject: false }));
  const records = out.stdout.split("\n").map((l) => l.split(":"));
  if (records.some((r) => r[0] === "sec" || r[0] === "ssb")) {
    throw new UsageError(`${file} holds a secret key`, { hint: "give machines the public key only: gpg --export --armor KEYID > fleet.asc" });
  }
  const fingerprints: string[] = [];
  for (const [i, r] of records.entries()) {
    if (r[0] === "pub" && records[i + 1]?.[0] === "fpr") fingerprints.push(records[i + 1]![9] ?? "");
  }
  if (out.exitCode !== 0 || fingerprints.length === 0) {
    throw new UsageError(`${file} holds no OpenPGP public key`, { hint: "export the key that signs SHA256SUMS: gpg --export --armor KEYID > fleet.asc" });
  }
  return fingerprints.filter((f) => f !== "");
}

/** Writes FILE's keys as a binary keyring (gpg --dearmor of an armored key; a binary key as it is). */
export async function writeKeyring(file: string, target: string): Promise<void> {
  const bytes = await readFile(file);
  if (!bytes.subarray(0, 64).toString("latin1").includes("-----BEGIN PGP")) {
    await writeFileAtomic(target, bytes);
    return;
  }
  await withHome(async (home) => {
    const out = join(home, "keyring.gpg");
    await run("gpg", ["--homedir", home, "--batch", "--dearmor", "--output", out, file]);
    await writeFileAtomic(target, await readFile(out));
  });
}

/** Adds the keys to systemd-pull's keyring; returns true when the keyring did not exist before. */
export async function addToKeyring(keyring: string, importKeyringPath: string): Promise<boolean> {
  try {
    await copyFile(keyring, importKeyringPath, 1 /* COPYFILE_EXCL */);
    return true;
  } catch (e) {
    if (errnoCode(e) !== "EEXIST") throw e;
  }
  await withHome((home) => run("gpg", ["--homedir", home, "--batch", "--no-default-keyring", "--keyring", importKeyringPath, "--import", keyring]));
  return false;
}

/** What gpgv said about a good signature: when it was made (seconds since the epoch, by the signer's
 *  clock). */
export interface GoodSignature {
  signedAt: number | null;
}

/** gpgv: the detached signature SIG of FILE was made by a key of KEYRING, or SignatureError.
 *  gpgv (2.2 and 2.4) accepts a signature made in the future and one by an expired key made before
 *  it expired; `checkKeyTimes` refuses the second before anything is fetched, the caller warns
 *  about the first (signedAt). */
export async function verifyDetached(keyring: string, file: string, signature: string, what: string, now = Date.now()): Promise<GoodSignature> {
  const out = await withHome((home) => run("gpgv", ["--homedir", home, "--status-fd", "1", "--keyring", keyring, signature, file], { reject: false }));
  if (out.exitCode !== 0) {
    const clock = /created .* in the future \(time warp or clock problem\)/.exec(out.stderr);
    throw new SignatureError(clock
      ? `the signature of ${what} cannot be checked: the key ${clock[0]}: refused, nothing was installed`
      : `the signature of ${what} does not verify with the subscription's key: refused, nothing was installed`, {
      details: out.stderr.trim().split("\n").slice(-4).join("\n"),
      hint: clock
        ? "is this machine's clock right (date; timedatectl)? gpgv cannot use a key newer than the clock"
        : "the list was changed or signed by another key; if the publisher's key changed, subscribe again with the new one (sudo ext subscribe URL --key NEW.asc)",
    });
  }
  const valid = /^\[GNUPG:\] VALIDSIG (\S+) \S+ (\d+)/m.exec(out.stdout);
  // The key that made the signature may be a subkey that expired while its primary key did not:
  // gpgv accepts it when the signature is dated before the expiry, a date the signer chooses.
  const signer = valid ? (await keyTimes(keyring)).get(valid[1]!) : undefined;
  if (signer?.expires != null && signer.expires <= Math.floor(now / 1000)) {
    throw new KeyTimeError(`${what} is signed by ${signer.subkey ? "the subkey" : "the key"} ${signer.id} of the subscription's key, which expired on ${day(signer.expires)} (this machine's clock: ${day(Math.floor(now / 1000))}): refused, nothing was installed`, {
      hint: EXPIRED_HINT,
    });
  }
  return { signedAt: valid ? Number(valid[2]) : null };
}

interface KeyTime {
  /** The long key ID. */
  id: string;
  subkey: boolean;
  created: number;
  expires: number | null;
}

/** Every key of KEYRING, primary keys and subkeys, by fingerprint: when it was made and expires. */
async function keyTimes(keyring: string): Promise<Map<string, KeyTime>> {
  const out = await withHome((home) => run("gpg", ["--homedir", home, "--batch", "--with-colons", "--show-keys", keyring], { reject: false }));
  const records = out.stdout.split("\n").map((l) => l.split(":"));
  const keys = new Map<string, KeyTime>();
  for (const [i, r] of records.entries()) {
    if ((r[0] !== "pub" && r[0] !== "sub") || records[i + 1]?.[0] !== "fpr") continue;
    keys.set(records[i + 1]![9] ?? "", { id: r[4] ?? "?", subkey: r[0] === "sub", created: Number(r[5]), expires: r[6] ? Number(r[6]) : null });
  }
  return keys;
}

const day = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
const EXPIRED_HINT = "the publisher must sign with a key that has not expired (gpg --quick-set-expire, or a new key), and this machine subscribe again with it (sudo ext subscribe URL --key NEW.asc); if the date above is wrong, fix this machine's clock";

export class KeyTimeError extends ExtError {
  override readonly code = "key-time";
}

/** Before anything is fetched: the subscription's keyring has a key this machine's clock finds
 *  valid — not expired, not created after now. gpgv and systemd-pull's gpg both accept a signature by
 *  an expired key if it carries a date before the expiry, and that date is the signer's to choose:
 *  a key that leaked after it expired could still sign. So an expired key is refused here, for both
 *  engines, and a key from the future (this machine's clock is behind) is named as a clock problem
 *  instead of gpg's "Bad public key". Returns the fingerprints of the keyring's expired keys and
 *  subkeys beside the valid one: a signature by one of them is refused by verifyDetached, and
 *  through systemd-sysupdate, which does not say who signed, pull checks the list itself first. */
export async function checkKeyTimes(keyring: string, now = Date.now()): Promise<string[]> {
  const keys = await keyTimes(keyring);
  const seconds = Math.floor(now / 1000);
  const expired = (k: KeyTime) => k.expires !== null && Number.isFinite(k.expires) && k.expires <= seconds;
  const problems: { kind: "expired" | "future"; text: string }[] = [];
  let valid = false;
  for (const k of keys.values()) {
    if (k.subkey) continue;
    if (Number.isFinite(k.created) && k.created > seconds) problems.push({ kind: "future", text: `${k.id} was created on ${day(k.created)}, after this machine's clock (${day(seconds)})` });
    else if (expired(k)) problems.push({ kind: "expired", text: `${k.id} expired on ${day(k.expires!)} (this machine's clock: ${day(seconds)})` });
    else valid = true;
  }
  if (valid || problems.length === 0) return [...keys].filter(([, k]) => expired(k)).map(([fingerprint]) => fingerprint);
  const future = problems.every((p) => p.kind === "future");
  throw new KeyTimeError(`the subscription's key ${problems.map((p) => p.text).join("; ")}: refused, nothing was fetched`, {
    hint: future
      ? "is this machine's clock right (date; timedatectl)? A key cannot be used before it was made"
      : EXPIRED_HINT,
  });
}
