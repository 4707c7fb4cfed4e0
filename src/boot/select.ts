import { link, mkdir, readdir, rmdir, symlink, unlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode } from "../errors.js";
import { imagePath, type Layout } from "../base/layout.js";
import { acquireLock } from "../base/lock.js";
import { listGenerationIds, readCurrent, readGeneration, writeCurrent } from "../generations/store.js";
import { activeImageSha, linkActiveImage } from "../sysext/link.js";
import { parseCmdline, readBootId, readCmdline } from "./cmdline.js";
import { decideBoot, type Runtime, type Selection, type World } from "./decide.js";
import { readBootState, readGoodBackup, setAsideDamaged, writeBootState } from "./state.js";

// `ext boot select`, run by ext-boot-select.service before systemd-sysext.service: read the state,
// decide (src/boot/decide.ts), carry it out. Local files only: no Nix, no network, no merge (the
// systemd-sysext.service that follows merges what this leaves in /var/lib/extensions and
// /run/extensions; /run/extensions takes precedence for the same name).

export interface SelectOptions {
  extensionName: string;
  /** Kernel command line text; default /proc/cmdline. */
  cmdline?: string;
  /** Boot id; default /proc/sys/kernel/random/boot_id. */
  bootId?: string;
  now?: Date;
  /** Finishes or undoes a transaction journal left by a run killed before the reboot, without
   *  merging (systemd-sysext.service merges next); returns what it did. The transaction's own undo
   *  (src/machine/recover.ts recoverAtBoot), passed in: boot selection sits below the transaction. */
  recover: (l: Layout) => Promise<string[]>;
}

export interface SelectResult {
  bootId: string;
  generation: number | null;
  how: Selection["boot"]["how"];
  triesLeft?: number;
  /** The persistent choice changed (a revert): the generation now current. */
  revertedTo?: number | null;
  runtime: Runtime["kind"];
  messages: string[];
}

export async function selectBoot(l: Layout, opts: SelectOptions): Promise<SelectResult> {
  const bootId = await readBootId(opts.bootId);
  const cmdline = parseCmdline(await readCmdline(opts.cmdline));
  const now = (opts.now ?? new Date()).toISOString();

  if (!(await exists(l.stateDir))) {
    // ext was never used here; honour ext.disable anyway (nothing else can be linked).
    await clearRuntime(l, opts.extensionName);
    return { bootId, generation: null, how: "none", runtime: "none", messages: ["ext has no state on this system"] };
  }

  const lock = await acquireLock(l, "ext boot select", { wait: true, timeoutMs: 30_000 });
  try {
    const notes = await opts.recover(l);
    const world = await gatherWorld(l, opts.extensionName, notes);
    const read = await readBootState(l);
    const selection = decideBoot({
      read,
      backup: read.kind === "ok" ? { good: [] } : await readGoodBackup(l),
      world,
      cmdline,
      bootId,
      now,
      extensionName: opts.extensionName,
      notes,
    });
    await apply(l, opts.extensionName, selection, read.kind === "ok" ? read.state.good : undefined);
    return {
      bootId,
      generation: selection.boot.generation,
      how: selection.boot.how,
      ...(selection.boot.triesLeft !== undefined ? { triesLeft: selection.boot.triesLeft } : {}),
      ...(selection.persistent ? { revertedTo: selection.persistent.generation } : {}),
      runtime: selection.runtime.kind,
      messages: selection.boot.messages,
    };
  } finally {
    await lock.release();
  }
}

async function apply(l: Layout, name: string, s: Selection, previousGood: Parameters<typeof writeBootState>[2]): Promise<void> {
  if (!s.rerun) {
    // A revert: link first, then the pointer, then the state that records it. Stopped in between,
    // the next boot finds the pending generation still out of tries and reverts again.
    if (s.persistent) {
      await linkActiveImage(l, name, s.persistent.image === null ? null : imagePath(l, s.persistent.image));
      await writeCurrent(l, s.persistent.generation);
    }
    if (s.setAsideDamaged) await setAsideDamaged(l);
    await writeBootState(l, s.state, previousGood);
  }
  await clearRuntime(l, name);
  await applyRuntime(l, name, s.runtime);
}

/** Only what ext puts in /run/extensions under its own name. */
async function clearRuntime(l: Layout, name: string): Promise<void> {
  await unlink(join(l.runtimeExtensionsDir, `${name}.raw`)).catch((e) => {
    if (errnoCode(e) !== "ENOENT") throw e;
  });
  await rmdir(join(l.runtimeExtensionsDir, name)).catch((e) => {
    // Not empty or not a directory: something ext did not make; leave it.
    if (!["ENOENT", "ENOTEMPTY", "ENOTDIR"].includes(errnoCode(e) ?? "")) throw e;
  });
}

async function applyRuntime(l: Layout, name: string, r: Runtime): Promise<void> {
  if (r.kind === "none") return;
  await mkdir(l.runtimeExtensionsDir, { recursive: true });
  if (r.kind === "mask") {
    // An empty directory of the same name shadows <name>.raw (first found wins) and is skipped by
    // systemd-sysext as having no extension-release, without failing the other extensions.
    await mkdir(join(l.runtimeExtensionsDir, name));
    return;
  }
  const target = join(l.runtimeExtensionsDir, `${name}.raw`);
  try {
    // A hard link where /run and the state share a file system (--root); else a symlink, which
    // systemd-sysext follows on a real root (it ignores symlinks only under --root).
    await link(imagePath(l, r.image), target);
  } catch (e) {
    if (errnoCode(e) !== "EXDEV") throw e;
    await symlink(l.root === "/" ? imagePath(l, r.image) : join("/", imagePath(l, r.image).slice(l.root.length)), target);
  }
}

async function gatherWorld(l: Layout, name: string, notes: string[]): Promise<World> {
  const generations = new Map<number, string | null>();
  for (const id of await listGenerationIds(l)) {
    try {
      generations.set(id, (await readGeneration(l, id)).image?.sha256 ?? null);
    } catch {
      notes.push(`generation ${id}'s record is unreadable; it is not used`);
    }
  }
  const images = new Set<string>();
  try {
    for (const n of await readdir(l.imagesDir)) {
      const m = /^([0-9a-f]{64})\.raw$/.exec(n);
      if (m) images.add(m[1]!);
    }
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
  }
  let current: number | null;
  try {
    current = await readCurrent(l);
  } catch {
    // Damaged pointer: what is linked is what would boot; name the generation holding that image.
    const linked = await activeImageSha(l, name).catch(() => null);
    const match = [...generations].filter(([, image]) => image !== null && image === linked).map(([id]) => id).sort((a, b) => b - a)[0];
    current = match ?? null;
    notes.push(`current.json is unreadable; taking generation ${current ?? "none"} (the linked image) as current`);
  }
  return { current, generations, images };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
