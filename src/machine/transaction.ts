import { assign, createActor, fromPromise, setup, toPromise } from "xstate";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { writeJournal, type JournalPhase } from "../generations/journal.js";
import { listGenerations, nextGenerationId, readCurrent } from "../generations/store.js";
import type { GenerationRecord, InstalledPackage } from "../generations/record.js";
import { plan as planStep } from "./actors/plan.js";
import { realiseStep, closeStep } from "./actors/nix-steps.js";
import { activateStep, checkStep, commitStep } from "./actors/activation-steps.js";
import { changedVisibleState, finish, undo } from "./undo.js";
import { markActivated } from "../boot/pending.js";
import { activeImageSha } from "../sysext/link.js";
import { refresh } from "../sysext/sysext.js";
import type { ClosureEntry } from "../nix/types.js";
import type { StageReport } from "../image/types.js";
import type { Plan, TxContext, TxEnv, TxOutcome, TxRequest } from "./types.js";

// The transaction, in order. This file is the one place that decides what follows what:
//
//   plan → realise → close → stage → pack → verify → commit → activate → check → done
//            (switch to an existing generation: plan → verify → commit → activate → check)
//   any failure → rollingBack (undo from the journal, the same code crash recovery runs) → failed
//
// Each step is an actor; before it runs, the journal on disk names it, so a process killed inside
// any step is finished or undone by the next ext run.

/** An actor that journals its phase before doing anything. */
function step<I extends { env: TxEnv }, O>(phase: JournalPhase, fn: (input: I) => Promise<O>) {
  return fromPromise<O, I>(async ({ input }) => {
    const started = performance.now();
    try {
      input.env.journal.phase = phase;
      await writeJournal(input.env.layout, input.env.journal);
      await faultInjection(phase);
      return await fn(input);
    } finally {
      recordTiming(phase, started);
    }
  });
}

/** EXT_TIMINGS=<file>: one JSON line per step, {phase, start, end} in ms since the process started
 *  (bench/ reads them to split `ext add` by phase). A measurement aid: it never fails a transaction. */
function recordTiming(phase: string, started: number): void {
  const file = process.env["EXT_TIMINGS"];
  if (!file) return;
  try {
    appendFileSync(file, JSON.stringify({ phase, start: started, end: performance.now() }) + "\n");
  } catch {
    /* an unwritable timings file only loses the figures */
  }
}

/** Seams for the end-to-end crash and failure tests, which drive the real CLI in a namespace:
 *  EXT_TEST_PAUSE_AT=<phase> sleeps there (so a test can kill -9 at that moment),
 *  EXT_TEST_FAIL_AT=<phase> fails there. Unit tests use machine.provide() instead. */
async function faultInjection(phase: JournalPhase): Promise<void> {
  if (process.env["EXT_TEST_PAUSE_AT"] === phase) await new Promise((r) => setTimeout(r, 60_000));
  if (process.env["EXT_TEST_FAIL_AT"] === phase) throw new Error(`injected failure at ${phase}`);
}

type BuildPlan = Extract<Plan, { kind: "build" }>;
type ImportPlan = Extract<Plan, { kind: "import" }>;

/** The image code (stage, pack, verify and what they use) loads when a step needs it: a transaction
 *  that finds nothing to do never does. */
const imageSteps = () => import("./actors/image-steps.js");

export const actors = {
  plan: step("plan", ({ env, request }: { env: TxEnv; request: TxRequest }) => planStep(env, request)),
  realise: step("realise", ({ env, plan }: { env: TxEnv; plan: BuildPlan }) => realiseStep(env, plan)),
  close: step("close", async ({ env, packages }: { env: TxEnv; packages: InstalledPackage[] }) => {
    const closure = await closeStep(env, packages);
    const { imageKeyFor, findReusableImage } = await imageSteps();
    const key = packages.length > 0 ? imageKeyFor(env, packages, closure) : null;
    const reused = key ? await findReusableImage(env, key) : null;
    return { closure, key, reused };
  }),
  stage: step("stage", async ({ env, packages, closure, previousPaths }: { env: TxEnv; packages: InstalledPackage[]; closure: ClosureEntry[]; previousPaths: string[] }) =>
    (await imageSteps()).stageStep(env, packages, closure, previousPaths)),
  pack: step("pack", async ({ env, stageDir, report }: { env: TxEnv; stageDir: string; report?: StageReport }) =>
    (await imageSteps()).packStep(env, stageDir, report)),
  verify: step("verify", async ({ env, record, proven }: { env: TxEnv; record: GenerationRecord; proven: boolean }) =>
    (await imageSteps()).verifyStep(env, record, proven)),
  commit: step("commit", ({ env, record, created }: { env: TxEnv; record: GenerationRecord; created: boolean }) =>
    commitStep(env, record, created)),
  activate: step("activate", ({ env, record }: { env: TxEnv; record: GenerationRecord }) => activateStep(env, record)),
  check: step("check", ({ env, record, previous }: { env: TxEnv; record: GenerationRecord; previous: GenerationRecord | null }) =>
    checkStep(env, record, previous)),
  // A published image (src/fleet/import.ts): copied into images/ and described from its own contents.
  importImage: step("import", async ({ env, plan }: { env: TxEnv; plan: ImportPlan }) =>
    (await import("../fleet/import.js")).importStep(env, plan)),
  describe: fromPromise<GenerationRecord, TxContext>(({ input }) => describeGeneration(input)),
  finalize: step("finalize", async ({ env }: { env: TxEnv }) => {
    for (const w of await finish(env.layout, env.journal)) env.reporter.warn(w);
    // The new set is on trial for the next boots until one is blessed (src/boot; never throws).
    await markActivated(env.layout, env.journal.nextGeneration, env.journal.nextImage, env.reporter);
  }),
  rollback: fromPromise<void, { env: TxEnv }>(async ({ input }) => {
    const { reporter, journal } = input.env;
    // The step that failed is shown as failed, not settled as done by the next line.
    reporter.settle?.(false);
    // "rolling back" only when there is something a person could see to put back: an unknown
    // package or a failed build changed nothing, and removing scratch files is not a rollback.
    const visible = changedVisibleState(journal);
    if (visible) reporter.phase("rolling back");
    // The journal keeps the phase that failed: it tells undo whether the link was touched,
    // and a crash during the undo is undone again by the next run.
    let warnings: string[];
    try {
      warnings = await undo(input.env.layout, journal, input.env.refresh);
    } catch (e) {
      if (visible) reporter.settle?.(false);
      throw e;
    }
    if (visible) reporter.settle?.(true);
    for (const w of warnings) reporter.warn(w);
  }),
};

export const transactionMachine = setup({
  types: {
    context: {} as TxContext,
    input: {} as { env: TxEnv; request: TxRequest },
    output: {} as TxOutcome,
  },
  actors,
  guards: {
    nothingToDo: ({ event }) => (event as unknown as { output: Plan }).output.kind === "noop",
    isSwitch: ({ event }) => (event as unknown as { output: Plan }).output.kind === "switch",
    isImport: ({ event }) => (event as unknown as { output: Plan }).output.kind === "import",
    emptySet: ({ context }) => (context.packages ?? []).length === 0,
    imageReused: ({ context }) => context.reusedImage != null,
  },
  actions: {
    recordError: assign({ error: ({ event }) => (event as unknown as { error: unknown }).error }),
  },
}).createMachine({
  id: "transaction",
  context: ({ input }) => ({ env: input.env, request: input.request }),
  initial: "plan",
  states: {
    plan: {
      invoke: {
        src: "plan",
        input: ({ context }) => ({ env: context.env, request: context.request }),
        onDone: [
          { guard: "nothingToDo", target: "finalize", actions: assign({ plan: ({ event }) => event.output }) },
          {
            guard: "isSwitch",
            target: "verify",
            actions: assign({
              plan: ({ event }) => event.output,
              record: ({ event }) => (event.output as Extract<Plan, { kind: "switch" }>).target,
            }),
          },
          { guard: "isImport", target: "importImage", actions: assign({ plan: ({ event }) => event.output }) },
          { target: "realise", actions: assign({ plan: ({ event }) => event.output }) },
        ],
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    // The imported image was hashed while it was copied: verify checks it without hashing it again.
    importImage: {
      invoke: {
        src: "importImage",
        input: ({ context }) => ({ env: context.env, plan: context.plan as ImportPlan }),
        onDone: {
          target: "verify",
          actions: assign({
            record: ({ event }) => event.output.record,
            packed: ({ event }) => ({ path: "", sha256: event.output.record.image?.sha256 ?? "", size: event.output.size }),
          }),
        },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    realise: {
      invoke: {
        src: "realise",
        input: ({ context }) => ({ env: context.env, plan: context.plan as BuildPlan }),
        onDone: { target: "close", actions: assign({ packages: ({ event }) => event.output }) },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    close: {
      invoke: {
        src: "close",
        input: ({ context }) => ({ env: context.env, packages: context.packages ?? [] }),
        onDone: {
          target: "routeImage",
          actions: assign({
            closure: ({ event }) => event.output.closure,
            imageKey: ({ event }) => event.output.key,
            reusedImage: ({ event }) => event.output.reused,
          }),
        },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    // An empty set needs no image; a set whose image exists already skips stage and pack.
    routeImage: {
      always: [
        { guard: "emptySet", target: "describe", actions: assign({ packed: null }) },
        { guard: "imageReused", target: "describe", actions: assign({ packed: null }) },
        { target: "stage" },
      ],
    },
    stage: {
      invoke: {
        src: "stage",
        input: ({ context }) => ({
          env: context.env,
          packages: context.packages ?? [],
          closure: context.closure ?? [],
          previousPaths: context.plan && context.plan.kind !== "noop" ? context.plan.current?.closure.paths ?? [] : [],
        }),
        onDone: {
          target: "pack",
          actions: assign({ stageDir: ({ event }) => event.output.stageDir, stageReport: ({ event }) => event.output.report }),
        },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    pack: {
      invoke: {
        src: "pack",
        input: ({ context }) => ({ env: context.env, stageDir: context.stageDir as string, report: context.stageReport }),
        onDone: { target: "describe", actions: assign({ packed: ({ event }) => event.output }) },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    describe: {
      invoke: {
        src: "describe",
        input: ({ context }) => context,
        onDone: { target: "verify", actions: assign({ record: ({ event }) => event.output }) },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    verify: {
      invoke: {
        src: "verify",
        // An image packed by this transaction, or reused after close hashed it, is proven already;
        // a rollback's image was packed long ago and is hashed here.
        input: ({ context }) => ({ env: context.env, record: context.record as GenerationRecord, proven: context.packed != null || context.reusedImage != null }),
        onDone: { target: "commit" },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    commit: {
      invoke: {
        src: "commit",
        input: ({ context }) => ({
          env: context.env,
          record: context.record as GenerationRecord,
          created: context.plan?.kind === "build" || context.plan?.kind === "import",
        }),
        onDone: { target: "activate" },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    activate: {
      invoke: {
        src: "activate",
        input: ({ context }) => ({ env: context.env, record: context.record as GenerationRecord }),
        onDone: { target: "check" },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    check: {
      invoke: {
        src: "check",
        input: ({ context }) => ({
          env: context.env,
          record: context.record as GenerationRecord,
          previous: context.plan && context.plan.kind !== "noop" ? context.plan.current : null,
        }),
        onDone: { target: "finalize" },
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    finalize: {
      invoke: {
        src: "finalize",
        input: ({ context }) => ({ env: context.env }),
        onDone: { target: "done" },
        // The set is active and checked; failing to write the pointer is undone like any failure.
        onError: { target: "rollingBack", actions: "recordError" },
      },
    },
    rollingBack: {
      invoke: {
        src: "rollback",
        input: ({ context }) => ({ env: context.env }),
        onDone: { target: "failed" },
        onError: { target: "failed", actions: assign({ rollbackError: ({ event }) => event.error }) },
      },
    },
    done: { type: "final" },
    failed: { type: "final" },
  },
  output: ({ context }): TxOutcome => {
    if (context.error !== undefined) {
      return { status: "failed", error: context.error, rolledBack: context.rollbackError === undefined, ...(context.rollbackError !== undefined ? { rollbackError: context.rollbackError } : {}) };
    }
    const p = context.plan;
    if (!p || p.kind === "noop") return { status: "noop", reason: p?.reason ?? "", generation: p?.current?.id ?? null };
    return { status: "done", record: context.record as GenerationRecord, previous: p.current?.id ?? null, reusedImage: context.packed === null && (context.packages ?? []).length > 0 };
  },
});

/** The record of the generation being made, from what the steps produced. */
async function describeGeneration(context: TxContext): Promise<GenerationRecord> {
  const { env } = context;
  const plan = context.plan as BuildPlan;
  const packages = context.packages ?? [];
  const closure = context.closure ?? [];
  const image = context.packed
    ? { sha256: context.packed.sha256, size: context.packed.size, compression: env.compression }
    : context.reusedImage ?? null;
  const links = context.stageReport
    ? context.stageReport.links.filter((l) => l.startsWith("usr/bin/") || l.startsWith("usr/sbin/"))
    : packages.length > 0 ? await linksOfReusedImage(context) : [];
  return {
    recordVersion: 1,
    id: await nextGenerationId(env.layout),
    createdAt: new Date().toISOString(),
    command: env.command,
    extensionName: env.extensionName,
    source: plan.lockedSource ?? { original: env.source },
    packages,
    closure: { paths: closure.map((c) => c.path).sort(), narSize: closure.reduce((n, c) => n + c.narSize, 0) },
    image,
    imageKey: context.imageKey ?? null,
    links,
    parent: plan.current?.id ?? null,
  };
}

/** A reused image was described by an earlier generation with the same key. */
async function linksOfReusedImage(context: TxContext): Promise<string[]> {
  const same = (await listGenerations(context.env.layout)).find((g) => g.imageKey === context.imageKey);
  return same?.links ?? [];
}

export interface RunOptions {
  /** Replace actors (tests inject failures). */
  actors?: Partial<typeof actors>;
}

export async function runTransaction(env: Omit<TxEnv, "journal" | "refresh"> & { refresh?: TxEnv["refresh"] }, request: TxRequest, options: RunOptions = {}): Promise<TxOutcome> {
  const previousImage = await activeImageSha(env.layout, env.extensionName);
  const fullEnv: TxEnv = {
    ...env,
    refresh: env.refresh ?? refresh,
    journal: {
      txid: randomBytes(8).toString("hex"),
      pid: process.pid,
      command: env.command,
      startedAt: new Date().toISOString(),
      phase: "plan",
      extensionName: env.extensionName,
      previousGeneration: await readCurrent(env.layout),
      previousImage: previousImage === "foreign" ? null : previousImage,
      temp: [],
    },
  };
  const machine = options.actors ? transactionMachine.provide({ actors: options.actors }) : transactionMachine;
  const actor = createActor(machine, { input: { env: fullEnv, request } });
  actor.start();
  return toPromise(actor);
}
