import { lstat } from "node:fs/promises";
import { activeLinkPath, imagePath } from "../../base/layout.js";
import { kindOf } from "../../base/state-file.js";
import { StateError } from "../../errors.js";
import { assertImageIntact } from "../../generations/image-integrity.js";
import { activeImageSha } from "../../sysext/link.js";
import { readCurrentGeneration } from "../../generations/store.js";
import { sha256File } from "../../image/pack.js";
import type { TxEnv } from "../types.js";
import { need, type Step } from "../step.js";
import { pipeline } from "./lazy.js";

// Before an image goes where systemd-sysext looks: its bytes are the ones its record names, and it
// is a valid extension image. An image packed by this transaction, or reused after reuse hashed
// it, is proven already; a rollback's image was packed long ago and is hashed here.
export const verifyStep: Step = {
  name: "verify",
  description: "the image is intact and a valid extension; the active link is ext's",
  when: "changing",
  async run({ env, made }) {
    const record = need(made, "record");
    await assertLinkIsOurs(env);
    if (record.image === null) return;
    const image = record.image;
    const proven = made.packed !== undefined || made.reusedImage != null;
    await (await pipeline()).verifyPacked(env, imagePath(env.layout, image.sha256), env.reporter,
      proven ? undefined : () => assertImageIntact(env.layout, image, `generation ${record.id}`));
  },
};

/** Activation replaces (or removes) `/var/lib/extensions/<name>.raw`, and an undo puts back what the
 *  journal says was there: only ext's images. Something else under that name is not ext's to replace,
 *  so the transaction stops here, before anything visible changes. */
async function assertLinkIsOurs(env: TxEnv): Promise<void> {
  if ((await activeImageSha(env.layout, env.extensionName)) !== "foreign") return;
  const file = activeLinkPath(env.layout, env.extensionName);
  const s = await lstat(file);
  // The current generation's bytes, whose file in images/ was replaced or removed: the link is ext's,
  // the damage is in images/ (what the message must name).
  const current = s.isFile() ? await readCurrentGeneration(env.layout).catch(() => null) : null;
  if (current?.image && s.size === current.image.size && (await sha256File(file)) === current.image.sha256) {
    const image = imagePath(env.layout, current.image.sha256);
    throw new StateError(`the image of generation ${current.id}, ${image}, is not the file linked as ${file} any more: it was replaced or removed outside ext`, {
      hint: "sudo ext repair packs it again from its store paths and links it",
    });
  }
  throw new StateError(`${file} is ${s.isFile() ? "a file that is none of ext's images" : kindOf(s)}: ext will not replace what it did not put there`, {
    hint: `move it away (sudo mv ${file} /root/) and run the command again; if another tool needs that name, give ext another one with --name`,
  });
}
