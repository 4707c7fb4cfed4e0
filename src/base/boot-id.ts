import { readFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";

// The kernel's id of this boot: the boot selector counts tries by it, and the stage cache belongs to
// one boot (nothing staged is fsynced).

/** This boot's id: given explicitly (tests and trying things under --root: `--boot-id`, $EXT_BOOT_ID,
 *  read once by the CLI), or the kernel's random boot_id. */
export async function readBootId(explicit?: string): Promise<string> {
  if (explicit !== undefined && explicit !== "") return explicit;
  try {
    return (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim().replace(/-/g, "");
  } catch {
    // Never a constant: two boots must not look like one (the selector would count no try).
    return `random-${randomBytes(16).toString("hex")}`;
  }
}
