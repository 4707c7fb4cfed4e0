import { mkdtemp, rm, writeFile, stat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { createHash } from "node:crypto";
import { layout, imagePath, type Layout } from "../../../src/base/layout.js";
import { ensureStateDirs, writeCurrent, writeGeneration } from "../../../src/generations/store.js";
import type { GenerationRecord } from "../../../src/generations/record.js";
import { linkActiveImage } from "../../../src/sysext/link.js";
import { markActivated } from "../../../src/boot/pending.js";
import { recoverAtBoot } from "../../../src/machine/recover.js";
import { selectBoot, type SelectResult } from "../../../src/boot/select.js";
import { blessBoot, type BlessResult } from "../../../src/boot/bless.js";
import { silentReporter } from "../../../src/base/reporter.js";

// A machine under a temporary --root, for driving the selector and bless through boot sequences:
// generations are records plus image files (content-addressed, not real EROFS: nothing is merged),
// activation is what the transaction does to the link, the pointer and the boot state, and a boot
// is "fresh /run, new boot id, ext boot select, then bless if the boot is good".

export class Sim {
  boots = 0;
  clock = Date.parse("2025-01-01T00:00:00Z");
  private constructor(readonly root: string, readonly l: Layout) {}

  static async create(): Promise<Sim> {
    const root = await mkdtemp(join(tmpdir(), "ext-boot-"));
    const l = layout(root);
    await ensureStateDirs(l);
    return new Sim(root, l);
  }

  async dispose(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  now(): Date {
    this.clock += 60_000;
    return new Date(this.clock);
  }

  /** Generation `id` holding `packages`; an empty list is the empty set (no image). */
  async generation(id: number, packages: string[]): Promise<GenerationRecord> {
    let image: GenerationRecord["image"] = null;
    if (packages.length > 0) {
      const bytes = `image of ${packages.join(",")}`;
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      await writeFile(imagePath(this.l, sha256), bytes).catch(() => {});
      image = { sha256, size: bytes.length, compression: "lz4" };
    }
    const record: GenerationRecord = {
      recordVersion: 1,
      id,
      createdAt: this.now().toISOString(),
      command: `ext add ${packages.join(" ")}`,
      extensionName: "ext",
      source: { original: "path:/fixtures" },
      packages: packages.map((name) => ({ name, attr: name, version: "1", source: "path:/fixtures", pname: name, outputs: ["out"], outPaths: { out: `/nix/store/${"0".repeat(32)}-${name}` } })),
      closure: { paths: [], narSize: 0 },
      links: packages.map((p) => `usr/bin/${p}`),
      image,
      imageKey: image ? `key-${image.sha256}` : null,
      parent: null,
    };
    await writeGeneration(this.l, record);
    return record;
  }

  /** What a successful transaction leaves: link, pointer, and the pending mark. */
  async activate(record: GenerationRecord): Promise<void> {
    await linkActiveImage(this.l, "ext", record.image ? imagePath(this.l, record.image.sha256) : null);
    await writeCurrent(this.l, record.id);
    await markActivated(this.l, record.id, record.image?.sha256 ?? null, silentReporter, this.now());
  }

  /** One boot: /run is empty again, a new boot id; the selector runs; bless runs if the boot is good. */
  async boot(opts: { cmdline?: string; good: boolean }): Promise<{ select: SelectResult; bless?: BlessResult; merged: string | null }> {
    this.boots++;
    await rm(join(this.root, "run"), { recursive: true, force: true });
    const bootId = `boot${this.boots}`;
    const select = await selectBoot(this.l, { extensionName: "ext", recover: recoverAtBoot, cmdline: opts.cmdline ?? "root=/dev/vda quiet", bootId, now: this.now() });
    const merged = await this.merged();
    if (!opts.good) return { select, merged };
    const bless = await blessBoot(this.l, { bootId, now: this.now() });
    return { select, bless, merged };
  }

  /** Which image systemd-sysext would merge for "ext": /run/extensions before /var/lib/extensions,
   *  an empty directory of the same name hiding both. Answered by image sha (by inode). */
  async merged(): Promise<string | null> {
    const run = join(this.l.runtimeExtensionsDir, "ext");
    if (await isDir(run)) return null;
    for (const candidate of [join(this.l.runtimeExtensionsDir, "ext.raw"), join(this.l.extensionsDir, "ext.raw")]) {
      const s = await stat(candidate).catch(() => undefined);
      if (!s) continue;
      for (const n of await readdir(this.l.imagesDir)) {
        const i = await stat(join(this.l.imagesDir, n));
        if (i.ino === s.ino) return n.replace(/\.raw$/, "");
      }
      return "foreign";
    }
    return null;
  }

  async current(): Promise<number | null> {
    return (JSON.parse(await readFile(this.l.currentFile, "utf8")) as { generation: number | null }).generation;
  }
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}
