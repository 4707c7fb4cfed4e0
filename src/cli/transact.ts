import { runTransaction, type RunOptions } from "../machine/transaction.js";
import type { TxOutcome, TxRequest } from "../machine/types.js";
import { diffGenerations, describeDiff, type GenerationDiff } from "../generations/diff.js";
import { readGeneration } from "../generations/store.js";
import { statSync } from "node:fs";
import { join } from "node:path";
import { isExtError, ExtError, ActivationError } from "../errors.js";
import { commandLine, requireRoot, withStateLock, type CommandContext } from "./context.js";
import { formatBytes, formatSignedBytes } from "./output.js";
import type { Recovery } from "../machine/recover.js";

// add, remove, apply and rollback all run one transaction and report it the same way.

export interface TransactionResult {
  status: "done" | "noop";
  generation: number | null;
  previous: number | null;
  reason?: string;
  diff?: GenerationDiff;
  image?: { sha256: string; size: number; reused: boolean } | null;
  recovered?: Recovery;
}

export async function transact(ctx: CommandContext, request: TxRequest, options: RunOptions = {}): Promise<TransactionResult> {
  requireRoot(ctx);
  requireOperatingSystem(ctx);
  return withStateLock(ctx, async (recovered) => {
    // A machine that got ext from its bootstrap image: that image is generation 1 first (cli/bootstrap.ts).
    if (request.kind !== "import") await (await import("./bootstrap.js")).adoptBootstrap(ctx, stepEnv(ctx));
    const outcome: TxOutcome = await runTransaction(stepEnv(ctx), request, options);
    if (outcome.status === "failed") throw failure(outcome);
    if (outcome.status === "noop") {
      return { status: "noop", generation: outcome.generation, previous: outcome.generation, reason: outcome.reason, ...(recovered ? { recovered } : {}) };
    }
    const before = outcome.previous === null ? null : await readGeneration(ctx.layout, outcome.previous).catch(() => null);
    return {
      status: "done",
      generation: outcome.record.id,
      previous: outcome.previous,
      diff: diffGenerations(before, outcome.record),
      image: outcome.record.image ? { sha256: outcome.record.image.sha256, size: outcome.record.image.size, reused: outcome.reusedImage } : null,
      ...(recovered ? { recovered } : {}),
    };
  });
}

/** What the transaction's steps take from the command's context (ext repair's rebuild takes the same). */
export function stepEnv(ctx: CommandContext) {
  return {
    layout: ctx.layout,
    nix: ctx.nix,
    source: ctx.source,
    extensionName: ctx.extensionName,
    compression: ctx.compression,
    labels: ctx.labels,
    architecture: ctx.architecture,
    command: commandLine(ctx),
    reporter: ctx.reporter,
    ...(ctx.hooks ? { hooks: ctx.hooks } : {}),
    ...(ctx.boot?.id ? { bootId: ctx.boot.id } : {}),
    ...(ctx.appendImages === false ? { appendImages: false } : {}),
  };
}

/** An extension extends a system's /usr: a --root without one (an empty or mistyped directory) has
 *  nothing to merge into, and finding that out after building would blame the merge ("the host may
 *  shadow these files"). Said before any work, so nothing is written under DIR. */
function requireOperatingSystem(ctx: CommandContext): void {
  const root = ctx.layout.root;
  let isDir = false;
  try {
    isDir = statSync(join(root, "usr")).isDirectory();
  } catch {
    /* missing, or not reachable: the same answer */
  }
  if (!isDir) {
    throw new ExtError(`${root} holds no OS (no usr/)`, {
      hint: root === "/"
        ? "this system has no /usr; ext extends /usr and cannot work here"
        : "--root names the root directory of an installed system (the one holding usr/ and var/); check the path",
    });
  }
}

function failure(outcome: Extract<TxOutcome, { status: "failed" }>): unknown {
  if (outcome.rollbackError !== undefined) {
    const first = isExtError(outcome.error) ? outcome.error.message : String(outcome.error);
    const second = isExtError(outcome.rollbackError) ? outcome.rollbackError.message : String(outcome.rollbackError);
    return new ActivationError(`${first}; and rolling back failed too: ${second}`, {
      hint: "the next ext command retries the rollback; 'ext status' shows the state",
      cause: outcome.error,
    });
  }
  return outcome.error instanceof Error ? outcome.error : new ExtError(String(outcome.error));
}

export function formatTransaction(r: TransactionResult): string[] {
  if (r.status === "noop") return [`nothing to do: ${r.reason}`];
  const lines = [`generation ${r.generation} is active (${r.diff ? describeDiff(r.diff) : ""})`];
  if (r.diff) lines.push(`closure ${formatSignedBytes(r.diff.sizeDelta)}`);
  if (r.image) lines.push(`image ${r.image.sha256.slice(0, 12)} ${formatBytes(r.image.size)}${r.image.reused ? " (reused)" : ""}`);
  return lines;
}
