import type { LockedSource, NixContext } from "./types.js";
import { nixCommand } from "./command.js";
import { classifyNixStderr, nixFailed, sourceError } from "./errors.js";
import { parseFlakeMetadata } from "./parse.js";
import { validateFlakeRef } from "./validate.js";

/** Pins a source: a reference that always means the same tree (recorded in generations). */
export async function lockSource(ctx: NixContext, source: string): Promise<LockedSource> {
  const src = validateFlakeRef(source);
  const result = await nixCommand(ctx, ["flake", "metadata", "--json", src], { log: false });
  if (result.exitCode !== 0) {
    throw sourceError(classifyNixStderr(result.stderr), src) ?? nixFailed(`reading package source '${src}'`, result.command, result.stderr);
  }
  return parseFlakeMetadata(result.stdout, source);
}
