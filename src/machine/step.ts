import type { Journal } from "../base/journal.js";
import type { Layout } from "../base/layout.js";
import type { GenerationRecord, ImageInfo, InstalledPackage } from "../generations/record.js";
import type { ClosureEntry } from "../nix/types.js";
import type { PackResult, StageReport } from "../image/types.js";
import type { PreparedBase } from "../image/append.js";
import { ExtError } from "../errors.js";
import type { Plan, TxEnv, TxRequest } from "./types.js";

// What a step of the transaction is. Each step is one file in steps/ and one line of the list in
// steps/index.ts; the machine (transaction.ts) is built from that list.

/** The routing that is a real decision, named: a step runs only when its decision holds. */
export type Decision =
  /** The plan changes something (not "nothing to do"). */
  | "changing"
  /** A new generation is made (not a switch to an existing one). */
  | "building"
  /** … and it needs a new image: packages left, and no earlier image with the same key to reuse. */
  | "packing"
  /** A published image becomes the new generation (ext pull: steps/import.ts). */
  | "importing";

/** What the steps make, each step adding its part. */
export interface Made {
  plan: Plan;
  packages: InstalledPackage[];
  closure: ClosureEntry[];
  imageKey: string | null;
  /** An earlier generation's image with the same key, proven intact (stage and pack skipped). */
  reusedImage: ImageInfo | null;
  stageDir: string;
  stageReport: StageReport;
  /** The current image's copy being made for an append (steps/prepare.ts), taken by pack. */
  appendBase: { copy: string; work: Promise<PreparedBase>; settled: Promise<void> };
  /** `appended`: packed by appending to the previous generation's image (how many in a row). */
  packed: PackResult & { appended?: number };
  record: GenerationRecord;
}

/** The facts a step records in the journal before it makes them true, so that an undo (now or
 *  after a crash) knows what to put back. */
export type JournalFacts = Partial<Pick<Journal, "nextGeneration" | "createdGeneration" | "nextImage" | "createdImage">>;

export interface TxJournal {
  readonly data: Readonly<Journal>;
  /** Writes the journal with these facts added. */
  note(facts: JournalFacts): Promise<void>;
  /** Writes the journal with one more temporary path (removed on undo, confined to tmp/). */
  addTemp(path: string): Promise<void>;
}

/** What a step sees: the transaction's environment and request, what earlier steps made, and
 *  the journal it records its facts in. */
export interface Tx {
  env: TxEnv;
  request: TxRequest;
  made: Readonly<Partial<Made>>;
  journal: TxJournal;
}

/** What an undo has: the journal alone (a crash leaves nothing else), and the merge to run after
 *  the link was put back (none at boot: systemd-sysext.service merges next). */
export interface UndoInput {
  layout: Layout;
  journal: Journal;
  merge: (l: Layout) => Promise<void>;
  warn: (message: string) => void;
}

export interface Step {
  /** The step's name: its journal phase and the machine's state. */
  name: string;
  /** What it does, for people (the machine's state description, docs). */
  description: string;
  /** When it runs; always when absent. */
  when?: Decision;
  /** Does the step's work and returns what it made. */
  run(tx: Tx): Promise<Partial<Made> | void>;
  /** Puts back what the step did, reading only the journal; idempotent (a crash during an undo is
   *  undone again). Runs for every step the journal shows as started, last step first. */
  undo?(u: UndoInput): Promise<void>;
}

/** What an earlier step must have made; its absence is a bug in the list's order, not a user's error. */
export function need<K extends keyof Made>(made: Readonly<Partial<Made>>, key: K): Made[K] {
  const value = made[key];
  if (value === undefined) throw new ExtError(`internal: the transaction has no ${key} yet`);
  return value as Made[K];
}

export function decided(decision: Decision | undefined, made: Readonly<Partial<Made>>): boolean {
  const plan = made.plan;
  switch (decision) {
    case undefined:
      return true;
    case "changing":
      return plan !== undefined && plan.kind !== "noop";
    case "importing":
      return plan?.kind === "import";
    case "building":
      return plan?.kind === "build";
    case "packing":
      return plan?.kind === "build" && (made.packages ?? []).length > 0 && made.reusedImage == null;
  }
}
