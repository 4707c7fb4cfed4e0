import { createHash } from "node:crypto";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { ShapeError } from "../../base/state-file.js";
import type { GenerationRecord } from "../../generations/record.js";
import { readPublication, type Publication } from "../../pipeline/publication.js";
import { ExtError, errnoCode } from "../../errors.js";
import type { Plan, TxEnv, TxRequest } from "../types.js";
import { need, type Step } from "../step.js";
import { packStep, placeImage } from "./pack.js";
import { recordHeader } from "./describe.js";
import { DdiFormatError, readDdi, type Ddi } from "../../image/ddi.js";
import { checkSignedDdi } from "../../image/verity.js";

// A verified published image becomes a generation through the same transaction as `ext add`:
//   plan (planImport: read the image's description, nothing written)
//   → import (this step: copy it into images/<sha256>.raw, journalled like pack)
//   → verify → commit → activate → check → finalize, and the same undo on any failure.
// So an imported set is listed, diffed, rolled back, reverted at boot and collected by `ext gc` like
// any other. The file in incoming/ stays as sysupdate left it (sysupdate counts its instances there).

export interface ImportedImage {
  /** The verified download (incoming/NAME_VERSION.raw). */
  file: string;
  version: string;
  url: string;
  publication: Publication;
  /** The subscription's verity certificate: the image must be a verity DDI it signed. */
  certificate?: string;
}

type ImportRequest = Extract<TxRequest, { kind: "import" }>;
type ImportPlan = Extract<Plan, { kind: "import" }>;

export class ImportError extends ExtError {
  override readonly code = "bad-image";
}

export async function planImport(env: TxEnv, request: ImportRequest, current: GenerationRecord | null): Promise<Plan> {
  let publication: Publication;
  try {
    publication = await readPublication(request.image, env.extensionName);
  } catch (e) {
    if (!(e instanceof ShapeError) && errnoCode(e) === undefined) throw e;
    throw new ImportError(`${request.image} cannot become a generation: ${e instanceof Error ? e.message : String(e)}`, {
      hint: "the publisher must make it with 'ext publish' for this extension name; nothing was changed",
    });
  }
  if (publication.version !== request.version) {
    throw new ImportError(`${request.image} says it is version ${publication.version}, not ${request.version}: refused`, { hint: "the file was renamed after it was published; nothing was changed" });
  }
  if (current?.origin?.version === request.version && current.origin.url === request.url) {
    return { kind: "noop", reason: `version ${request.version} is already generation ${current.id}`, current };
  }
  return {
    kind: "import", current,
    image: { file: request.image, version: request.version, url: request.url, publication, ...(request.certificate ? { certificate: request.certificate } : {}) },
  };
}

/** Copies the download into images/ under its sha256 (hashed while copying) and describes the
 *  generation. The image's name is recorded in the journal before it appears, as pack does, so an
 *  undo removes an image this transaction brought in — with pack's own undo. Verify does not hash
 *  it again: `packed` says it was hashed while copied. */
export const importStep: Step = {
  name: "import",
  description: "copy a verified published image into images/ and describe its generation (ext pull)",
  when: "importing",
  async run({ env, made, journal }) {
    const plan = need(made, "plan") as ImportPlan;
    env.reporter.phase("importing", `version ${plan.image.version}`);
    const scratch = join(env.layout.tmpDir, `import-${journal.data.txid}.raw`);
    await journal.addTemp(scratch);
    const { sha256, size } = await copyHashing(plan.image.file, scratch);
    // The copy is what becomes the image: its signature and hash tree are checked, not the download's.
    await checkSignature(scratch, plan.image.file, plan.image.certificate);
    const final = await placeImage(env, journal, { path: scratch, sha256, size });
    const p = plan.image.publication;
    const record: GenerationRecord = {
      ...await recordHeader(env),
      source: { original: plan.image.url },
      packages: p.packages,
      closure: p.closure,
      image: { sha256, size, compression: p.compression },
      imageKey: null,
      links: p.links,
      parent: plan.current?.id ?? null,
      origin: { url: plan.image.url, version: plan.image.version },
    };
    return { record, packed: { path: final, sha256, size } };
  },
  // The same facts as pack's (nextImage, createdImage): the same undo.
  ...(packStep.undo ? { undo: packStep.undo } : {}),
};

/** A subscription with a verity certificate takes only DDIs it signed (checked as dm-verity would,
 *  src/image/verity.ts); one without takes plain EROFS images: a DDI it could not check is refused
 *  rather than left to whatever the kernel's keyring trusts. */
async function checkSignature(copy: string, shown: string, certificate: string | undefined): Promise<void> {
  let ddi: Ddi | null;
  try {
    ddi = await readDdi(copy);
  } catch (e) {
    if (e instanceof DdiFormatError) throw new ImportError(`${shown} cannot become a generation: ${e.message}`, { hint: "nothing was changed" });
    throw e;
  }
  if (certificate === undefined) {
    if (ddi === null) return;
    throw new ImportError(`${shown} is a verity DDI, and this subscription has no certificate to check its signature: refused`, {
      hint: "subscribe again with the publisher's certificate: sudo ext subscribe URL --key KEY.asc --verity-cert CERT.pem; nothing was changed",
    });
  }
  if (ddi === null) {
    throw new ImportError(`${shown} is a plain EROFS image, and this subscription takes only signed verity DDIs (it has a --verity-cert): refused`, {
      hint: "the publisher must publish with 'ext publish --ddi --verity-key KEY --verity-cert CERT'; nothing was changed",
    });
  }
  await checkSignedDdi(shown, ddi, certificate, copy);
}

async function copyHashing(from: string, to: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  const src = await open(from, "r");
  let size = 0;
  try {
    const dst = await open(to, "wx", 0o444);
    try {
      const buf = Buffer.alloc(1024 * 1024);
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        await dst.write(buf, 0, bytesRead);
        size += bytesRead;
      }
      await dst.sync();
    } finally {
      await dst.close();
    }
  } catch (e) {
    if (errnoCode(e) === "ENOSPC") {
      throw new ExtError(`no space left to import ${from} into ${to}`, { hint: "free space under /var/lib/ext ('ext gc' removes images no kept generation uses); nothing was changed" });
    }
    throw e;
  } finally {
    await src.close();
  }
  if ((await stat(to)).size !== size) throw new ExtError(`the copy of ${from} is incomplete`);
  return { sha256: hash.digest("hex"), size };
}
