import { join } from "node:path";
import { isExtError } from "../errors.js";
import { labelPolicy, parseSelinuxConfig, policyFileContexts } from "../image/selinux.js";
import type { DoctorInput, Finding } from "./types.js";

// Whether images of this system carry SELinux labels, from which policy, and what /usr/store gets
// (src/image/selinux.ts). An SELinux host whose policy ext cannot read would get images that its
// policy denies, so that is an error.

export async function checkSelinux(input: DoctorInput): Promise<Finding[]> {
  const root = input.layout.root;
  const text = await input.host.readText(join(root, "etc/selinux/config"));
  const config = text === undefined ? undefined : parseSelinuxConfig(text);
  const kernel = root === "/" ? await input.host.readText("/sys/fs/selinux/enforce") : undefined;
  const running = kernel === undefined ? "" : kernel.trim() === "1" ? "; the running kernel enforces it" : "; the running kernel is permissive";
  if (!config || config.state === "disabled") {
    return [{ check: "selinux", status: "ok", message: "SELinux is not used here: images carry no labels (--selinux-contexts FILE labels images for hosts that use it)", fix: null, details: { state: config?.state ?? null } }];
  }
  const file = policyFileContexts(root, config);
  const contexts = await input.host.readText(file);
  const details = { state: config.state, type: config.type, fileContexts: file };
  if (contexts === undefined) {
    return [{
      check: "selinux",
      status: "error",
      message: `SELinux is ${config.state} (policy ${config.type}) but ${file} cannot be read: images would carry no labels`,
      fix: `install the policy (${config.type}), or name its file_contexts with --selinux-contexts FILE`,
      details,
    }];
  }
  try {
    const policy = labelPolicy(contexts, file);
    const c = policy.contexts;
    return [{
      check: "selinux",
      status: "ok",
      message: `SELinux ${config.state} (policy ${config.type})${running}: images are labelled from ${file} — /usr/store programs ${typeOf(c.bin)}, libraries ${typeOf(c.lib)}, manuals ${typeOf(c.man)}, the rest ${typeOf(c.share)}`,
      fix: null,
      details: { ...details, contexts: c },
    }];
  } catch (e) {
    if (!isExtError(e)) throw e;
    return [{ check: "selinux", status: "error", message: e.message, fix: e.hint ?? "name a complete file_contexts with --selinux-contexts FILE", details }];
  }
}

/** system_u:object_r:bin_t:s0 → bin_t */
function typeOf(context: string): string {
  return context.split(":")[2] ?? context;
}
