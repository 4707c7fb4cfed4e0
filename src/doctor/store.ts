import { describeStore } from "../store/index.js";
import type { DoctorInput, Finding } from "./types.js";

// Which Nix store ext uses, and why: the system store (/nix/store) or a private chroot store
// (src/store/). On hosts where /nix cannot exist (Fedora Atomic with composefs) only the private one works.

export async function checkStore(input: DoctorInput): Promise<Finding[]> {
  const d = describeStore(input.nix.store);
  const details = { kind: d.kind, root: d.root, path: d.path, mode: d.mode, from: d.from, reason: d.reason };
  if (d.kind === "system") {
    // Nix makes /nix/store on first use where it may (a fresh nix-bin): that is no problem.
    if (!(await input.host.exists(d.path)) && d.problems.length > 0) {
      return [{
        check: "nix-store",
        status: "error",
        message: `ext uses the system store (${d.reason}), but ${d.problems.join("; ")}`,
        fix: "let ext keep a private store: drop '--store system' (the default, --store auto, picks a private store under /var/lib/ext/nix), or install Nix so that /nix/store exists",
        details,
      }];
    }
    if (d.problems.length > 0) {
      return [{
        check: "nix-store",
        status: "warning",
        message: `ext uses the system store ${d.path} (${d.reason}), but ${d.problems.join("; ")}`,
        fix: "run ext as root, start the Nix daemon, or use a private store (--store auto)",
        details,
      }];
    }
    const made = await input.host.exists(d.path);
    return [{ check: "nix-store", status: "ok", message: `system store ${d.path}${made ? "" : " (Nix creates it on first use)"} (${d.reason})`, fix: null, details }];
  }
  const exists = await input.host.exists(d.path);
  return [{
    check: "nix-store",
    status: "ok",
    message: `private store ${d.path}${exists ? "" : " (created on first use)"}: ${d.reason}`,
    fix: null,
    details: { ...details, exists },
  }];
}
