import { access, constants, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../exec.js";
import { ExtError, errnoCode } from "../errors.js";
import type { Layout } from "../base/layout.js";
import { templatesDir } from "../boot/units.js";
import { definitionsDir, incomingDir } from "./subscription.js";

// systemd-sysupdate drives the download where the host has it (systemd ≥ 251; on Debian 13 and later
// it is in the systemd-container package). ext gives it its own definitions directory, so
// `systemd-sysupdate` without --definitions (the OS's updates) never sees ext's transfer.

export const SYSUPDATE = "/usr/lib/systemd/systemd-sysupdate";

export class UpdateFailedError extends ExtError {
  override readonly code = "update-failed";
}

export async function hasSysupdate(): Promise<boolean> {
  try {
    await access(SYSUPDATE, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function transferFile(l: Layout, name: string): string {
  return join(definitionsDir(l), `ext-${name}.transfer`);
}

export async function renderTransfer(url: string, name: string): Promise<string> {
  const template = await readFile(join(templatesDir(), "ext-pull.transfer"), "utf8");
  // sysupdate reads specifiers (%…) in Path=; a URL's %-escapes must reach it as they are.
  return template.replace(/@URL@/g, url.replace(/%/g, "%%")).replace(/@NAME@/g, name);
}

/** `systemd-sysupdate update` over ext's definitions: downloads and verifies, or says why not. */
export async function sysupdateUpdate(l: Layout): Promise<void> {
  await removePartials(incomingDir(l));
  const args = ["--definitions", definitionsDir(l), "--no-pager", ...(l.root !== "/" ? ["--root", l.root] : []), "update"];
  const out = await run(SYSUPDATE, args, { reject: false, env: { SYSTEMD_LOG_LEVEL: "info" } });
  if (out.exitCode === 0) return;
  await removePartials(incomingDir(l));
  throw new UpdateFailedError(`systemd-sysupdate refused the update: ${explain(out.stderr)}; nothing was installed`, {
    details: out.stderr.trim().split("\n").slice(-8).join("\n"),
    hint: "the active set is unchanged; 'ext status' shows the last check; the next check tries again",
  });
}

/** systemd 262 keeps a refused download as `.sysupdate.partial.NAME` ("acquired and partially
 *  installed") and then refuses that version until it is vacuumed; 257 uses `.#sysupdateNAME…` temp
 *  names. A download in ext's incoming/ that did not pass is worth nothing: it goes, before each run
 *  (a killed run's) and after a failed one, so the next check downloads it again. */
export async function removePartials(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return;
    throw e;
  }
  for (const n of names) {
    if (n.startsWith(".sysupdate.partial.") || n.startsWith(".#sysupdate")) await rm(join(dir, n), { force: true });
  }
}

/** The line of sysupdate's (and systemd-pull's) output that says what went wrong. */
export function explain(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  // Most specific first: systemd-pull also prints ordinary progress lines that name the .gpg file.
  const patterns: [RegExp, string][] = [
    [/BAD signature|Signature verification failed|No public key|Can't check signature/i, "the signature of SHA256SUMS does not verify with the subscription's key"],
    [/did not check out|tampered with|does not match expected checksum/i, "the downloaded image does not match its signed SHA256SUMS"],
    [/No space left|Failed to write file/i, "the download could not be written (is the disk full?)"],
    [/partial file|Premature end|connection (was )?(closed|reset)|Connection died/i, "the download broke off before its end (the server closed the connection)"],
    [/Connection refused|Could not resolve|Could not connect|Couldn't connect|timed out|HTTP request .* failed|\b404\b|Failed to connect/i, "the server cannot be reached or does not serve the files"],
  ];
  for (const [re, meaning] of patterns) {
    const hit = lines.find((l) => re.test(l));
    if (hit) return `${meaning} (${hit})`;
  }
  return lines.at(-1) ?? "it failed without a message";
}
