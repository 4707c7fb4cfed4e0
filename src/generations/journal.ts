import { unlink } from "node:fs/promises";
import { errnoCode } from "../errors.js";
import { writeJsonAtomic } from "../fsutil.js";
import { readJsonFile } from "./store.js";
import type { Layout } from "./layout.js";

// The journal says what an unfinished transaction had done, written before each step takes effect.
// The next ext run reads it to finish or undo (src/machine/recover.ts). Its absence means the
// state on disk is consistent.

export type JournalPhase =
  | "plan" | "resolve" | "realise" | "close" | "stage" | "pack" | "verify"
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

export async function readJournal(l: Layout): Promise<Journal | undefined> {
  return readJsonFile<Journal>(l.journalFile);
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
