import { lstat } from "node:fs/promises";
import type { CommandContext } from "../context.js";
import { readCurrentGeneration } from "../../generations/store.js";
import { table } from "../output.js";
import { activeImageSha } from "../../sysext/link.js";
import { activeLinkPath } from "../../base/layout.js";
import { StateError } from "../../errors.js";

export interface ListEntry {
  name: string;
  version: string;
  attr: string;
  source: string;
  description?: string;
  outPaths: Record<string, string>;
}

/** Reads state without the lock: records are immutable and the pointer is replaced atomically. */
export async function list(ctx: CommandContext): Promise<ListEntry[]> {
  const current = await readCurrentGeneration(ctx.layout);
  // A bootstrap image placed by hand (docs/install.md): what it holds is what /usr shows; the next
  // change makes it generation 1.
  // Only a plain file there can be one: the code that reads it is loaded then, not by every list.
  const placedFile = current === null && (await lstat(activeLinkPath(ctx.layout, ctx.extensionName)).then((s) => s.isFile(), () => false));
  const bootstrap = placedFile ? await (await import("../bootstrap.js")).placedBootstrap(ctx) : null;
  if (bootstrap) ctx.reporter.info(`${bootstrap.placed} is ext's bootstrap image; the first 'ext add' (or remove, apply) makes it generation 1`);
  else if (current === null) await assertNothingLinked(ctx);
  return (current?.packages ?? bootstrap?.publication.packages ?? []).map((p) => ({
    name: p.name,
    version: p.version,
    attr: p.attr,
    source: p.source,
    ...(p.description ? { description: p.description } : {}),
    outPaths: p.outPaths,
  }));
}

export function formatList(entries: ListEntry[]): string[] {
  if (entries.length === 0) return ["nothing installed (add something with 'ext add PKG')"];
  return table(entries.map((e) => [e.name, e.version, e.description ?? ""]));
}

/** No current generation but ext's image linked: saying "nothing installed" would be a lie about what
 *  /usr shows (current.json lost, or an interrupted first add). */
async function assertNothingLinked(ctx: CommandContext): Promise<void> {
  const linked = await activeImageSha(ctx.layout, ctx.extensionName);
  if (linked === null) return;
  const file = activeLinkPath(ctx.layout, ctx.extensionName);
  throw new StateError(`no generation is current, but ${file} is linked (${linked === "foreign" ? "a file ext did not put there" : `image ${linked.slice(0, 12)}`})`, {
    hint: `see 'ext status' and 'ext generations'; 'sudo ext rollback --to N' makes generation N current and links its image`,
  });
}
