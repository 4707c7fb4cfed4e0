import { open } from "node:fs/promises";
import { ErofsImage } from "./erofs-reader.js";

// A verity DDI (`ext publish --ddi`, docs/fleet.md) is a GPT disk of three partitions: the EROFS image
// ext builds anyway (root), its dm-verity hash tree (root-verity) and a signature of the tree's root
// hash (root-verity-sig). systemd-sysext merges it with dm-verity; ext reads the EROFS partition in
// place (its description, its structure) and checks the hash and the signature in user space
// (src/image/verity.ts). Only what ext needs of GPT is read: the header at LBA 1 and its entries.
// The partition types are the Discoverable Partitions Specification's (`systemd-id128 show`).

export type Designator = "root" | "root-verity" | "root-verity-sig";

const TYPES: Record<string, { arch: string; designator: Designator }> = {
  "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": { arch: "x86-64", designator: "root" },
  "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5": { arch: "x86-64", designator: "root-verity" },
  "41092b05-9fc8-4523-994f-2def0408b176": { arch: "x86-64", designator: "root-verity-sig" },
  "b921b045-1df0-41c3-af44-4c6f280d3fae": { arch: "arm64", designator: "root" },
  "df3300ce-d69f-4c92-978c-9bfb0f38d820": { arch: "arm64", designator: "root-verity" },
  "6db69de6-29f4-4758-a7a5-962190f00ce3": { arch: "arm64", designator: "root-verity-sig" },
};

export interface DdiPartition {
  designator: Designator;
  arch: string;
  /** The partition's own UUID (for verity partitions, derived from the root hash). */
  uuid: string;
  /** Bytes from the start of the file. */
  offset: number;
  size: number;
}

export interface Ddi {
  sectorSize: number;
  partitions: DdiPartition[];
  /** The EROFS partition systemd-sysext would mount. */
  data: DdiPartition;
  hash?: DdiPartition;
  signature?: DdiPartition;
}

export class DdiFormatError extends Error {}

const GPT_MAGIC = "EFI PART";

/** A GPT GUID as stored (the first three fields little-endian) → its usual text. */
function guid(b: Buffer): string {
  const h = (x: Buffer) => x.toString("hex");
  const le = (x: Buffer) => h(Buffer.from(x).reverse());
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

/** The file's GPT, when it has one (null: not a disk image, e.g. a plain EROFS image). */
export async function readDdi(path: string): Promise<Ddi | null> {
  const fh = await open(path, "r");
  try {
    // systemd-repart writes 512-byte sectors to a regular file; 4096 is tried for images made for such disks.
    for (const sectorSize of [512, 4096]) {
      const header = Buffer.alloc(92);
      const { bytesRead } = await fh.read(header, 0, 92, sectorSize);
      if (bytesRead < 92 || header.toString("latin1", 0, 8) !== GPT_MAGIC) continue;
      const entriesLba = Number(header.readBigUInt64LE(72));
      const count = header.readUInt32LE(80);
      const entrySize = header.readUInt32LE(84);
      if (count > 1024 || entrySize < 128 || entrySize > 4096) throw new DdiFormatError("its partition table is implausible");
      const table = Buffer.alloc(count * entrySize);
      const read = await fh.read(table, 0, table.length, entriesLba * sectorSize);
      if (read.bytesRead < table.length) throw new DdiFormatError("its partition table is cut short");
      const partitions: DdiPartition[] = [];
      for (let i = 0; i < count; i++) {
        const e = table.subarray(i * entrySize, (i + 1) * entrySize);
        const known = TYPES[guid(e.subarray(0, 16))];
        if (!known) continue;
        const first = Number(e.readBigUInt64LE(32));
        const last = Number(e.readBigUInt64LE(40));
        partitions.push({ ...known, uuid: guid(e.subarray(16, 32)), offset: first * sectorSize, size: (last - first + 1) * sectorSize });
      }
      const one = (d: Designator) => {
        const found = partitions.filter((p) => p.designator === d);
        if (found.length > 1) throw new DdiFormatError(`it has ${found.length} ${d} partitions`);
        return found[0];
      };
      const data = one("root");
      if (!data) throw new DdiFormatError("it has no root partition (a sysext DDI keeps its file system there)");
      const hash = one("root-verity");
      const signature = one("root-verity-sig");
      return { sectorSize, partitions, data, ...(hash ? { hash } : {}), ...(signature ? { signature } : {}) };
    }
    return null;
  } finally {
    await fh.close();
  }
}

/** The image's EROFS file system, in place: the file itself, or a DDI's root partition. */
export async function openErofs(path: string): Promise<ErofsImage> {
  const ddi = await readDdi(path);
  return ErofsImage.open(path, ddi?.data.offset ?? 0);
}

/** Copies a partition into a file of its own (fsck.erofs and veritysetup read files from byte 0). */
export async function extractPartition(path: string, part: DdiPartition, to: string): Promise<void> {
  const src = await open(path, "r");
  try {
    const dst = await open(to, "wx", 0o600);
    try {
      const buf = Buffer.alloc(1024 * 1024);
      for (let done = 0; done < part.size;) {
        const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, part.size - done), part.offset + done);
        if (bytesRead === 0) throw new DdiFormatError(`its ${part.designator} partition goes past the end of the file`);
        await dst.write(buf, 0, bytesRead);
        done += bytesRead;
      }
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}
