import { unlink } from "node:fs/promises";
import { errnoCode } from "../errors.js";
import { writeJsonAtomic } from "../fsutil.js";
import { extensionNameProblem } from "../image/names.js";
import { ShapeError, bool, count, field, id, list, nullable, object, oneOf, optional, readStateFile, sha256, str } from "./state-file.js";
import type { Layout } from "./layout.js";

// The journal says what an unfinished transaction had done, written before each step takes effect.
// The next ext run reads it to finish or undo (src/machine/recover.ts). Its absence means the
// state on disk is consistent.

export type JournalPhase =
  | "plan" | "resolve" | "realise" | "close" | "stage" | "pack" | "import" | "verify"
  | "commit" | "activate" | "check" | "finalize" | "rollback";

export interface Journal {
  txid: string;
  pid: number;
  command: string;
  startedAt: string;
  phase: JournalPhase;
  extensionName: string;
  /** The generation that was current when the transaction began. */
  previousGeneration: number | null;
  /** sha256 of the image that was linked when the transaction began (null: none linked). */
  previousImage: string | null;
  /** The generation being made or switched to. */
  nextGeneration?: number;
  /** True when nextGeneration's record was written by this transaction (and must go on undo). */
  createdGeneration?: boolean;
  nextImage?: string | null;
  /** True when the image file was created by this transaction (and may go on undo). */
  createdImage?: boolean;
  /** Temporary paths to remove on undo. */
  temp: string[];
}

const PHASES: readonly JournalPhase[] = [
  "plan", "resolve", "realise", "close", "stage", "pack", "import", "verify", "commit", "activate", "check", "finalize", "rollback",
];

export async function readJournal(l: Layout): Promise<Journal | undefined> {
  return readStateFile(l.journalFile, journalShape,
    `ext cannot tell what the interrupted command did. Move it away (sudo mv ${l.journalFile} /root/), then check 'ext status' and 'ext generations'; 'sudo ext rollback --to N' links a known generation again`);
}

/** What undo relies on: image names are sha256s and the extension name a plain name, so nothing in the
 *  journal can make recovery link or delete a path of its choosing. */
function journalShape(value: unknown): Journal {
  const o = object(value, "");
  const extensionName = field(o, "", "extensionName", str);
  if (extensionNameProblem(extensionName) !== undefined) throw new ShapeError(`'extensionName' is not a valid extension name`);
  return {
    txid: field(o, "", "txid", str),
    pid: field(o, "", "pid", count),
    command: field(o, "", "command", str),
    startedAt: field(o, "", "startedAt", str),
    phase: field(o, "", "phase", oneOf(PHASES)),
    extensionName,
    previousGeneration: field(o, "", "previousGeneration", nullable(id)),
    previousImage: field(o, "", "previousImage", nullable(sha256)),
    ...optional(o, "", "nextGeneration", id),
    ...optional(o, "", "createdGeneration", bool),
    ...optional(o, "", "nextImage", nullable(sha256)),
    ...optional(o, "", "createdImage", bool),
    temp: field(o, "", "temp", list(str)),
  };
}

export async function writeJournal(l: Layout, journal: Journal): Promise<void> {
  await writeJsonAtomic(l.journalFile, journal);
}

export async function clearJournal(l: Layout): Promise<void> {
  try {
    await unlink(l.journalFile);
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
  }
}
