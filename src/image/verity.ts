import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExtError } from "../errors.js";
import { run, tail } from "../exec.js";
import { extractPartition, type Ddi } from "./ddi.js";

// What dm-verity and systemd would check when systemd-sysext merges a signed verity DDI, checked in
// user space before the image goes anywhere sysext looks (ext pull; no device-mapper needed):
//   - the signature partition is systemd's JSON ({"rootHash", "signature": base64 PKCS#7}) and its
//     PKCS#7 signs the root hash, by the subscribed certificate (openssl, as systemd's own userspace
//     check: the signer taken from that certificate only, no chain);
//   - the root and root-verity partitions are the ones that root hash names (systemd finds them by
//     UUID: the hash's first and last 128 bits);
//   - the data partition hashes to that root hash through the hash partition (`veritysetup verify`,
//     which reads files, no dm). A changed byte anywhere fails one of the three.

export class VerityError extends ExtError {
  override readonly code = "bad-image";
}

const REFUSED = "it was not installed; nothing was changed";

export interface VerityCheck {
  rootHash: string;
}

/** `image`: the name shown in messages; `file`: the bytes checked (default: the same file). */
export async function checkSignedDdi(image: string, ddi: Ddi, certificate: string, file = image): Promise<VerityCheck> {
  if (!ddi.hash || !ddi.signature) {
    throw new VerityError(`${image} is a disk image without ${!ddi.hash ? "a root-verity (hash)" : "a root-verity-sig (signature)"} partition: refused`, {
      hint: "a subscription with a certificate takes only signed verity DDIs ('ext publish --ddi --key KEY --cert CERT'); " + REFUSED,
    });
  }
  const sig = await readSignature(file, image, ddi);
  const rootHash = sig.rootHash;
  const uuidOf = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  if (ddi.data.uuid !== uuidOf(rootHash.slice(0, 32)) || ddi.hash.uuid !== uuidOf(rootHash.slice(-32))) {
    throw new VerityError(`${image}: its partitions are not the ones its signed root hash names (systemd would not find them): refused`, { hint: REFUSED });
  }
  const scratch = await mkdtemp(join(tmpdir(), "ext-verity-"));
  try {
    const hashFile = join(scratch, "roothash");
    const sigFile = join(scratch, "roothash.p7s");
    await writeFile(hashFile, rootHash);
    await writeFile(sigFile, sig.signature);
    const checked = await run("openssl", [
      "smime", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", hashFile,
      "-certfile", certificate, "-nointern", "-noverify", "-out", "/dev/null",
    ], { reject: false });
    if (checked.exitCode !== 0) {
      throw new VerityError(`the verity signature of ${image} does not verify with the subscription's certificate: refused`, {
        details: tail(checked.stderr, 5), hint: REFUSED,
      });
    }
    const data = join(scratch, "root.erofs");
    await extractPartition(file, ddi.data, data);
    const verified = await run("veritysetup", ["verify", data, file, rootHash, `--hash-offset=${ddi.hash.offset}`], { reject: false });
    if (verified.exitCode !== 0) {
      throw new VerityError(`the data of ${image} does not match its verity hash tree and signed root hash (veritysetup verify): refused`, {
        details: tail(verified.stderr || verified.stdout, 5), hint: REFUSED,
      });
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return { rootHash };
}

/** systemd-repart's signature partition: one JSON object, then zeros to the partition's end. */
async function readSignature(file: string, image: string, ddi: Ddi): Promise<{ rootHash: string; signature: Buffer }> {
  const part = ddi.signature!;
  const fh = await open(file, "r");
  let raw: Buffer;
  try {
    raw = Buffer.alloc(Math.min(part.size, 64 * 1024));
    await fh.read(raw, 0, raw.length, part.offset);
  } finally {
    await fh.close();
  }
  const end = raw.indexOf(0);
  let doc: unknown;
  try {
    doc = JSON.parse(raw.subarray(0, end < 0 ? raw.length : end).toString("utf8"));
  } catch {
    throw new VerityError(`the signature partition of ${image} is not systemd's JSON: refused`, { hint: REFUSED });
  }
  const o = doc as { rootHash?: unknown; signature?: unknown };
  if (typeof o.rootHash !== "string" || !/^[0-9a-f]{64,}$/.test(o.rootHash) || typeof o.signature !== "string") {
    throw new VerityError(`the signature partition of ${image} has no root hash and signature: refused`, { hint: REFUSED });
  }
  return { rootHash: o.rootHash, signature: Buffer.from(o.signature, "base64") };
}
