import { join } from "node:path";
import { isExtError, type ExtError } from "../errors.js";
import { imageLabeller, labelPolicy, parseSelinuxConfig, policyFileContexts, type LabelPolicy, type SelinuxConfig } from "../image/selinux.js";
import { imagePath } from "../base/layout.js";
import { readCurrentGeneration } from "../generations/store.js";
import type { DoctorInput, Finding, ImageLabel } from "./types.js";

// Whether images of this system carry SELinux labels, from which policy, and what /usr/store gets
// (src/image/selinux.ts). An SELinux host whose policy ext cannot read would get images that its
// policy denies, so that is an error.

/** What the host's SELinux setting gives, read once per doctor run: both checks below need it, and
 *  parsing a whole file_contexts is the costly part of `ext doctor` on an SELinux host. */
type HostPolicy =
  | { kind: "none"; state: string | null }
  | { kind: "unreadable"; config: SelinuxConfig; file: string }
  | { kind: "invalid"; config: SelinuxConfig; file: string; error: ExtError }
  | { kind: "policy"; config: SelinuxConfig; file: string; policy: LabelPolicy };

const hostPolicies = new WeakMap<DoctorInput, Promise<HostPolicy>>();

function hostPolicy(input: DoctorInput): Promise<HostPolicy> {
  let read = hostPolicies.get(input);
  if (read === undefined) {
    read = readHostPolicy(input);
    hostPolicies.set(input, read);
  }
  return read;
}

async function readHostPolicy(input: DoctorInput): Promise<HostPolicy> {
  const root = input.layout.root;
  const text = await input.host.readText(join(root, "etc/selinux/config"));
  const config = text === undefined ? undefined : parseSelinuxConfig(text);
  if (!config || config.state === "disabled") return { kind: "none", state: config?.state ?? null };
  const file = policyFileContexts(root, config);
  const contexts = await input.host.readText(file);
  if (contexts === undefined) return { kind: "unreadable", config, file };
  try {
    return { kind: "policy", config, file, policy: labelPolicy(contexts, file) };
  } catch (e) {
    if (!isExtError(e)) throw e;
    return { kind: "invalid", config, file, error: e };
  }
}

export async function checkSelinux(input: DoctorInput): Promise<Finding[]> {
  const host = await hostPolicy(input);
  if (host.kind === "none") {
    return [{ check: "selinux", status: "ok", message: "SELinux is not used here: images carry no labels (--selinux-contexts FILE labels images for hosts that use it)", fix: null, details: { state: host.state } }];
  }
  const { config, file } = host;
  const details = { state: config.state, type: config.type, fileContexts: file };
  if (host.kind === "unreadable") {
    return [{
      check: "selinux",
      status: "error",
      message: `SELinux is ${config.state} (policy ${config.type}) but ${file} cannot be read: images would carry no labels`,
      fix: `install the policy (${config.type}), or name its file_contexts with --selinux-contexts FILE`,
      details,
    }];
  }
  if (host.kind === "invalid") {
    return [{ check: "selinux", status: "error", message: host.error.message, fix: host.error.hint ?? "name a complete file_contexts with --selinux-contexts FILE", details }];
  }
  const kernel = input.layout.root === "/" ? await input.host.readText("/sys/fs/selinux/enforce") : undefined;
  const running = kernel === undefined ? "" : kernel.trim() === "1" ? "; the running kernel enforces it" : "; the running kernel is permissive";
  const c = host.policy.contexts;
  return [{
    check: "selinux",
    status: "ok",
    message: `SELinux ${config.state} (policy ${config.type})${running}: images are labelled from ${file} — /usr/store programs ${typeOf(c.bin)}, libraries ${typeOf(c.lib)}, manuals ${typeOf(c.man)}, the rest ${typeOf(c.share)}`,
    fix: null,
    details: { ...details, contexts: c },
  }];
}

/** system_u:object_r:bin_t:s0 → bin_t */
function typeOf(context: string): string {
  return context.split(":")[2] ?? context;
}

/** Whether the files of the active image carry the labels the host's policy gives them, read back
 *  from the image itself (not from how ext would build it): an image built in CI with another
 *  policy, or before the policy changed, shows here. Only /usr and /opt count: systemd-sysext merges
 *  nothing else. */
export async function checkSelinuxImage(input: DoctorInput): Promise<Finding[]> {
  const current = await readCurrentGeneration(input.layout).catch(() => null);
  if (!current?.image) return [{ check: "selinux-image", status: "ok", message: "no active image: no labels to compare", fix: null }];
  const image = imagePath(input.layout, current.image.sha256);
  const host = await hostPolicy(input);
  if (host.kind === "unreadable" || host.kind === "invalid") return []; // the selinux check reports it
  const entries = await input.host.imageLabels(image);
  const what = `the active image (generation ${current.id})`;
  if (entries === undefined) {
    return [{ check: "selinux-image", status: "warning", message: `${what} cannot be read as EROFS: its SELinux labels are unknown`, fix: "sudo ext doctor, then sudo ext repair", details: { image } }];
  }
  const merged = entries.filter((e) => /^\/(usr|opt)(\/|$)/.test(e.path));
  const labelled = merged.filter((e) => e.label !== undefined);
  if (host.kind === "none") {
    return [{
      check: "selinux-image",
      status: labelled.length > 0 ? "info" : "ok",
      message: labelled.length > 0
        ? `${what} carries SELinux labels on ${labelled.length} of ${merged.length} entries (made for an SELinux host); this host does not use SELinux and ignores them`
        : `${what} carries no SELinux labels, as this host (no SELinux) needs`,
      fix: null,
      details: { entries: merged.length, labelled: labelled.length },
    }];
  }
  const expected = imageLabeller(host.policy);
  const unlabelled = merged.filter((e) => e.label === undefined);
  const differ: (ImageLabel & { expected: string | undefined })[] = [];
  for (const e of labelled) {
    const want = expected(e.path, e.kind);
    if (want !== e.label) differ.push({ ...e, expected: want });
  }
  const details = { image, fileContexts: host.file, entries: merged.length, unlabelled: unlabelled.length, differ: differ.length, examples: differ.slice(0, 5).map((d) => ({ path: d.path, label: d.label, expected: d.expected ?? null })) };
  const fix = "pack the set again with this policy: the next 'ext add', 'remove' or 'apply' that changes the set does (the labels are part of the image key); to do it now, remove and add back any one package";
  if (unlabelled.length > 0) {
    return [{
      check: "selinux-image",
      status: "error",
      message: `${what}: ${unlabelled.length} of ${merged.length} entries have no SELinux label (e.g. ${unlabelled[0]!.path}); SELinux treats them as unlabeled_t and denies their use`,
      fix,
      details,
    }];
  }
  if (differ.length > 0) {
    const d = differ[0]!;
    return [{
      check: "selinux-image",
      status: "warning",
      message: `${what}: ${differ.length} of ${merged.length} entries carry labels this host's policy does not give them (e.g. ${d.path}: ${d.label}, the policy says ${d.expected ?? "no label"})`,
      fix,
      details,
    }];
  }
  return [{ check: "selinux-image", status: "ok", message: `${what}: all ${merged.length} entries carry the labels ${host.file} gives them`, fix: null, details }];
}
