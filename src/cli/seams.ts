import { appendFileSync } from "node:fs";
import type { TxHooks } from "../machine/types.js";

// The environment variables that let tests and bench/ look inside a transaction, read once where
// the command's context is made and passed to the machine as hooks:
//   EXT_TEST_PAUSE_AT=<step>  sleeps there for a minute (so an end-to-end test can kill -9 then)
//   EXT_TEST_FAIL_AT=<step>   fails there
//   EXT_TIMINGS=<file>        one JSON line per step, {phase, start, end} in ms since the process
//                             started (bench/ splits `ext add` by step with it)
// and the two that stand in for the kernel's view of this boot (the boot tests, trying `ext boot`
// under --root): EXT_BOOT_ID (the boot selector's tries, the stage cache's boot) and EXT_BOOT_CMDLINE.
// EXT_SYSEXT_IMAGE_POLICY (read by src/sysext/sysext.ts, where systemd-sysext runs) is passed as
// --image-policy= to ext's merges: the DDI tests' stand-in for dm-verity, which this kernel lacks.
// EXT_APPEND_IMAGES=0 turns off appending to the previous image (on by default where mkfs.erofs can
// append, docs/design.md): every image is then a full pack, for tests that need one.

export function hooksFromEnvironment(env: NodeJS.ProcessEnv): TxHooks {
  const pauseAt = env["EXT_TEST_PAUSE_AT"];
  const failAt = env["EXT_TEST_FAIL_AT"];
  const timings = env["EXT_TIMINGS"];
  const hooks: TxHooks = {};
  if (pauseAt || failAt) {
    hooks.beforeStep = async (step) => {
      if (step === pauseAt) await new Promise((r) => setTimeout(r, 60_000));
      if (step === failAt) throw new Error(`injected failure at ${step}`);
    };
  }
  if (timings) {
    hooks.afterStep = (phase, start, end) => {
      try {
        appendFileSync(timings, JSON.stringify({ phase, start, end }) + "\n");
      } catch {
        /* an unwritable timings file only loses the figures */
      }
    };
  }
  return hooks;
}

/** This boot as the environment gives it; absent: the kernel's (/proc). */
export interface BootGiven {
  id?: string;
  cmdline?: string;
}

/** false with EXT_APPEND_IMAGES=0 (see above); any other value, or none, leaves appending on. */
export function appendImagesFromEnvironment(env: NodeJS.ProcessEnv): boolean {
  return env["EXT_APPEND_IMAGES"] !== "0";
}

export function bootFromEnvironment(env: NodeJS.ProcessEnv): BootGiven {
  const id = env["EXT_BOOT_ID"];
  const cmdline = env["EXT_BOOT_CMDLINE"];
  return { ...(id ? { id } : {}), ...(cmdline !== undefined ? { cmdline } : {}) };
}
