import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ExitCode, ExtError, UsageError } from "../errors.js";
import { run } from "../exec.js";
import { systemdArchitecture } from "../image/names.js";

// `ext publish --ddi --verity-key KEY.pem --verity-cert CERT.pem`: the EROFS image ext built (its
// reproducible bytes, unchanged) wrapped by systemd-repart into a signed verity DDI — GPT with the image
// as the root partition (CopyBlocks=), its dm-verity hash tree (root-verity) and the root hash's PKCS#7
// signature (root-verity-sig). systemd-sysext verifies such an image with dm-verity when it merges it,
// and `ImagePolicy=root=signed` can require it. Same inputs, same bytes, because nothing repart makes
// is left to chance: the data partition is copied, not formatted; the seed (disk and signature
// partition UUIDs, the verity salt) is derived from the image's sha256; the verity partitions' UUIDs
// come from the root hash; and an RSA PKCS#1 v1.5 signature of the root hash carries no time.
// `--copy-source` (repart formatting its own erofs) was tried first: its bytes vary between runs.

/** repart ≥ 254: --offline=yes (a regular file, no loop device, so no root) and Minimize=best. */
export const MIN_REPART = 254;

export interface VerityKeys {
  key: string;
  cert: string;
}

async function repartVersion(): Promise<number | null> {
  const r = await run("systemd-repart", ["--version"], { reject: false }).catch(() => null);
  if (r === null || r.exitCode !== 0) return null;
  const m = /^systemd (\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : null;
}

export async function requireRepart(): Promise<void> {
  const version = await repartVersion();
  if (version !== null && version >= MIN_REPART) return;
  throw new ExtError(version === null
    ? "--ddi needs systemd-repart, which is not on this host"
    : `--ddi needs systemd-repart ≥ ${MIN_REPART} (for --offline=yes: a DDI built in a regular file, without root or loop devices); this host has systemd-repart ${version}`, {
    exitCode: ExitCode.missingTool,
    hint: "publish DDIs on Debian ≥ 13 (apt install systemd-repart libcryptsetup12) or another host with systemd ≥ 254; without --ddi ext publishes plain EROFS images",
  });
}

/** A UUID from the image's sha256: repart's seed, so that the same image gives the same disk. */
export function seedOf(sha256: string): string {
  const h = createHash("sha256").update(`ext-ddi:${sha256}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Wraps `erofs` (sha256 `sha256`) into a signed verity DDI at `output`; `scratch` holds the definitions. */
export async function makeVerityDdi(erofs: string, sha256: string, output: string, keys: VerityKeys, scratch: string): Promise<void> {
  const arch = systemdArchitecture();
  const defs = join(scratch, "repart.d");
  await mkdir(defs, { recursive: true });
  const partition = (lines: string[]) => ["[Partition]", ...lines, ""].join("\n");
  await writeFile(join(defs, "10-root.conf"), partition([`Type=root-${arch}`, `CopyBlocks=${resolve(erofs)}`, "Verity=data", "VerityMatchKey=root"]));
  await writeFile(join(defs, "20-root-verity.conf"), partition([`Type=root-${arch}-verity`, "Verity=hash", "VerityMatchKey=root", "Minimize=best"]));
  await writeFile(join(defs, "30-root-verity-sig.conf"), partition([`Type=root-${arch}-verity-sig`, "Verity=signature", "VerityMatchKey=root"]));
  await run("systemd-repart", [
    "--empty=create", "--size=auto", "--dry-run=no", "--offline=yes", "--no-pager",
    `--definitions=${defs}`, `--private-key=${resolve(keys.key)}`, `--certificate=${resolve(keys.cert)}`,
    `--seed=${seedOf(sha256)}`, output,
  ], { env: { SOURCE_DATE_EPOCH: "0", SYSTEMD_LOG_LEVEL: "warning" } });
}

export function checkVerityOptions(ddi: boolean, key: string | undefined, cert: string | undefined): VerityKeys | undefined {
  if (!ddi) {
    if (key !== undefined || cert !== undefined) throw new UsageError("--verity-key and --verity-cert sign a DDI: they need --ddi");
    return undefined;
  }
  if (key === undefined || cert === undefined) {
    throw new UsageError("--ddi needs --verity-key KEY.pem and --verity-cert CERT.pem (an unsigned DDI is not published: machines could not check it)", {
      hint: "openssl req -x509 -newkey rsa:4096 -nodes -keyout verity.key -out verity.crt -days 3650 -subj /CN=fleet",
    });
  }
  return { key, cert };
}
