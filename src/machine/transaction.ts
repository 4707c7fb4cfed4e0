import { assign, createActor, fromPromise, setup, toPromise } from "xstate";
import { randomBytes } from "node:crypto";
import { writeJournal, type Journal } from "../base/journal.js";
import type { Layout } from "../base/layout.js";
import { readCurrent } from "../generations/store.js";
import { activeImageSha } from "../sysext/link.js";
import { refresh } from "../sysext/sysext.js";
import { changedVisibleState, undo } from "./undo.js";
import { decided, type Made, type Step, type Tx, type TxJournal } from "./step.js";
import { STEPS, type StepName } from "./steps/index.js";
import { settlePrepared } from "./steps/prepare.js";
import type { TxEnv, TxOutcome, TxRequest } from "./types.js";

// The machine is built from the ordered list of steps (steps/index.ts): each step is a state that
// invokes it; when it is done, the machine goes to the next step whose decision holds; any failure
// goes to rollingBack, which runs the same undo as crash recovery, then to failed.

interface Context {
  tx: Tx & { journal: RunJournal };
  error?: unknown;
  rollbackError?: unknown;
}

/** The journal as the machine runs it: steps note facts; only the machine names the phase. */
export interface RunJournal extends TxJournal {
  enter(phase: string): Promise<void>;
}

export function runJournal(l: Layout, initial: Journal): RunJournal {
  let data = initial;
  // The file is written first: what is in memory (and undone on failure) is what is on disk.
  const write = async (next: Journal) => {
    await writeJournal(l, next);
    data = next;
  };
  return {
    get data() {
      return data;
    },
    enter: (phase) => write({ ...data, phase }),
    note: (facts) => write({ ...data, ...facts }),
    addTemp: (path) => write({ ...data, temp: [...data.temp, path] }),
  };
}

/** Replaces steps' work (unit tests: a step that fails, a check that passes without a merge).
 *  The machine around it — journal, hooks, routing, undo — is the real one. */
export type StepOverrides = Partial<Record<StepName, Step["run"]>>;

/** One step as the machine runs it: the journal names it, the hooks see it, then its work.
 *  Also how `ext repair` runs stage and pack outside a transaction (src/repair/). */
export async function runStep(step: Step, tx: Tx & { journal: RunJournal }, run: Step["run"] = step.run): Promise<Partial<Made> | void> {
  const start = performance.now();
  try {
    await tx.journal.enter(step.name);
    await tx.env.hooks?.beforeStep?.(step.name);
    return await run(tx);
  } finally {
    tx.env.hooks?.afterStep?.(step.name, start, performance.now());
  }
}

function stepActor(step: Step, overrides: StepOverrides) {
  const run = overrides[step.name as StepName] ?? step.run;
  return fromPromise<Partial<Made> | void, Context["tx"]>(({ input: tx }) => runStep(step, tx, run));
}

const rollbackActor = fromPromise<void, Context["tx"]>(async ({ input: { env, journal, made } }) => {
  const { reporter } = env;
  // Work started ahead (a copy being written to tmp/) ends before the temporary files go.
  await settlePrepared(made);
  // The step that failed is shown as failed, not settled as done by the next line.
  reporter.settle?.(false);
  // "rolling back" only when there is something a person could see to put back: an unknown
  // package or a failed build changed nothing, and removing scratch files is not a rollback.
  const visible = changedVisibleState(journal.data);
  if (visible) reporter.phase("rolling back");
  // The journal keeps the phase that failed: it tells undo which steps to undo, and a crash during
  // the undo is undone again by the next run.
  let warnings: string[];
  try {
    warnings = await undo(env.layout, journal.data, env.refresh);
  } catch (e) {
    if (visible) reporter.settle?.(false);
    throw e;
  }
  if (visible) reporter.settle?.(true);
  for (const w of warnings) reporter.warn(w);
});

export function transactionMachine(steps: readonly Step[] = STEPS, overrides: StepOverrides = {}) {
  const withOutput = (made: Partial<Made>, output: unknown): Partial<Made> => ({ ...made, ...((output ?? {}) as Partial<Made>) });
  /** From step i, the next step whose decision holds, given what step i made. */
  const next = (i: number) => [
    ...steps.slice(i + 1).map((s) => ({
      guard: ({ context, event }: { context: Context; event: unknown }) => decided(s.when, withOutput(context.tx.made, (event as { output?: unknown }).output)),
      target: s.name,
    })),
    { target: "done" },
  ].map((t) => ({ ...t, actions: "keep" as const }));
  const states = Object.fromEntries(steps.map((s, i) => [s.name, {
    description: s.description,
    invoke: {
      src: s.name,
      input: ({ context }: { context: Context }) => context.tx,
      onDone: next(i),
      onError: { target: "rollingBack", actions: "recordError" as const },
    },
  }]));
  return setup({
    types: {
      context: {} as Context,
      input: {} as Context["tx"],
      output: {} as TxOutcome,
    },
    actors: { ...Object.fromEntries(steps.map((s) => [s.name, stepActor(s, overrides)])), rollback: rollbackActor },
    actions: {
      keep: assign({ tx: ({ context, event }) => ({ ...context.tx, made: withOutput(context.tx.made, (event as { output?: unknown }).output) }) }),
      recordError: assign({ error: ({ event }) => (event as unknown as { error: unknown }).error }),
    },
  }).createMachine({
    id: "transaction",
    context: ({ input }) => ({ tx: input }),
    initial: steps[0]!.name,
    states: {
      ...states,
      rollingBack: {
        description: "undo from the journal: the same code crash recovery runs",
        invoke: {
          src: "rollback",
          input: ({ context }) => context.tx,
          onDone: { target: "failed" },
          onError: { target: "failed", actions: assign({ rollbackError: ({ event }) => event.error }) },
        },
      },
      done: { type: "final" },
      failed: { type: "final" },
    },
    output: ({ context }): TxOutcome => outcomeOf(context),
  });
}

function outcomeOf(context: Context): TxOutcome {
  if (context.error !== undefined) {
    return { status: "failed", error: context.error, rolledBack: context.rollbackError === undefined, ...(context.rollbackError !== undefined ? { rollbackError: context.rollbackError } : {}) };
  }
  const { plan, record, reusedImage } = context.tx.made;
  if (!plan || plan.kind === "noop") return { status: "noop", reason: plan?.reason ?? "", generation: plan?.current?.id ?? null };
  return { status: "done", record: record!, previous: plan.current?.id ?? null, reusedImage: plan.kind === "build" && reusedImage != null };
}

export interface RunOptions {
  overrides?: StepOverrides;
}

export async function runTransaction(env: Omit<TxEnv, "refresh"> & { refresh?: TxEnv["refresh"] }, request: TxRequest, options: RunOptions = {}): Promise<TxOutcome> {
  const previousImage = await activeImageSha(env.layout, env.extensionName);
  const journal = runJournal(env.layout, {
    txid: randomBytes(8).toString("hex"),
    pid: process.pid,
    command: env.command,
    startedAt: new Date().toISOString(),
    phase: STEPS[0]!.name,
    extensionName: env.extensionName,
    previousGeneration: await readCurrent(env.layout),
    previousImage: previousImage === "foreign" ? null : previousImage,
    temp: [],
  });
  const tx = { env: { ...env, refresh: env.refresh ?? refresh }, request, made: {}, journal };
  const actor = createActor(transactionMachine(STEPS, options.overrides), { input: tx });
  actor.start();
  return toPromise(actor);
}
