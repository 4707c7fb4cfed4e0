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

/** gpgv: the detached signature SIG of FILE was made by a key of KEYRING, or SignatureError. */
export async function verifyDetached(keyring: string, file: string, signature: string, what: string): Promise<void> {
  const out = await withHome((home) => run("gpgv", ["--homedir", home, "--keyring", keyring, signature, file], { reject: false }));
  if (out.exitCode !== 0) {
    throw new SignatureError(`the signature of ${what} does not verify with the subscription's key: refused, nothing was installed`, {
      details: out.stderr.trim().split("\n").slice(-4).join("\n"),
      hint: "the list was changed or signed by another key; if the publisher's key changed, subscribe again with the new one (sudo ext subscribe URL --key NEW.asc)",
    });
  }
}
