import { imagePath } from "../../base/layout.js";
import { linkActiveImage } from "../../sysext/link.js";
import { need, type Step } from "../step.js";

// The new image is linked as /var/lib/extensions/<name>.raw (one rename) and merged. Undo links
// the image that was active before (or none) and merges again.
export const activateStep: Step = {
  name: "activate",
  description: "link the new image where systemd-sysext looks and merge it",
  when: "changing",
  async run({ env, made }) {
    const record = need(made, "record");
    env.reporter.phase("activating", record.image ? `generation ${record.id}` : "no packages left: removing the extension");
    await linkActiveImage(env.layout, env.extensionName, record.image ? imagePath(env.layout, record.image.sha256) : null);
    await env.refresh(env.layout);
  },
  async undo({ layout, journal, merge }) {
    const previous = journal.previousImage === null ? null : imagePath(layout, journal.previousImage);
    await linkActiveImage(layout, journal.extensionName, previous);
    await merge(layout);
  },
};
