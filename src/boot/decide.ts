import type { BootCmdline } from "./cmdline.js";
import {
  emptyBootState,
  type BootHow,
  type BootRecord,
  type BootState,
  type GoodEntry,
  type ReadBootState,
} from "./state.js";

// What the selector does at a boot, as a pure function of what is on disk and on the kernel
// command line. src/boot/select.ts gathers the inputs and carries out the result; the unit tests
// drive whole boot sequences through both.

/** What exists on disk: generation records (id → image sha, null = empty set) and image files. */
export interface World {
  current: number | null;
  generations: ReadonlyMap<number, string | null>;
  images: ReadonlySet<string>;
}

export interface SelectInput {
  read: ReadBootState;
  /** The backup file's good list and tries, used when boot.json is missing or damaged. */
  backup: { good: GoodEntry[]; tries?: number };
  world: World;
  cmdline: BootCmdline;
  bootId: string;
  now: string;
  extensionName: string;
  /** Messages from gathering the inputs (e.g. an interrupted transaction was undone). */
  notes?: string[];
}

/** A generation to use: `generation: null, image: null` is the base system (no ext extension). */
export interface Target {
  generation: number | null;
  image: string | null;
}

export type Runtime =
  | { kind: "none" }
  /** /run/extensions/<name>.raw → this image, this boot only. */
  | { kind: "image"; image: string }
  /** /run/extensions/<name>/ (an empty directory): hides <name>.raw this boot only. */
  | { kind: "mask" };

export interface Selection {
  state: BootState;
  /** When defined, the persistent choice changes: link this image (or none), point current here. */
  persistent?: Target;
  runtime: Runtime;
  boot: BootRecord;
  /** boot.json was damaged: set it aside before writing the fresh one. */
  setAsideDamaged: boolean;
  /** The selector already ran in this boot: only the runtime choice is made again, nothing is written. */
  rerun: boolean;
}

const BASE: Target = { generation: null, image: null };

export function decideBoot(input: SelectInput): Selection {
  const { world, cmdline, bootId, now } = input;
  const messages: string[] = [...(input.notes ?? [])];
  const lost = input.read.kind !== "ok";
  const state: BootState = input.read.kind === "ok"
    ? structuredClone(input.read.state)
    : { ...emptyBootState(input.extensionName, input.backup.tries), good: input.backup.good.filter((g) => g.image !== null) };

  // Run twice in one boot (a restarted unit): the same choice again, no second try counted.
  const last = state.lastBoot;
  if (!lost && last && last.bootId === bootId) {
    return {
      state,
      runtime: last.how === "disabled" ? { kind: "mask" } : last.how === "override" ? runtimeFor(last) : { kind: "none" },
      boot: { ...last, messages: [...last.messages, "the selector ran again in the same boot: the same choice was applied"] },
      setAsideDamaged: false,
      rerun: true,
    };
  }

  let current: Target = BASE;
  if (world.current !== null) {
    if (world.generations.has(world.current)) {
      current = { generation: world.current, image: world.generations.get(world.current) ?? null };
    } else {
      messages.push(`the current generation ${world.current} has no record; its image stays linked`);
    }
  }
  let persistent: Target | undefined;
  let reverted = false;

  const isGood = (image: string | null) => image === null || state.good.some((g) => g.image === image);
  const revert = (to: Target, reason: string) => {
    state.reverts.push({ from: current.generation, to: to.generation, at: now, reason, bootId });
    state.pending = null;
    persistent = to;
    current = to;
    reverted = true;
    messages.push(`${reason}: went back to ${describeTarget(to)}`);
  };

  // A pending entry for a generation that is no longer current (ext add or rollback since) is void.
  if (state.pending && state.pending.generation !== current.generation) state.pending = null;

  if (lost) {
    const read = input.read;
    const why = read.kind === "corrupt" ? `the boot state file ${read.reason}` : "the boot state file was missing";
    const good = lastGood(state.good, world, null);
    if (isGood(current.image) && current.generation !== null) {
      messages.push(`${why}; generation ${current.generation} is known good and stays`);
    } else if (current.generation === null) {
      messages.push(`${why}; there is no generation to use`);
    } else if (good) {
      revert(good, `${why} (generation ${current.generation} was not known good)`);
    } else {
      messages.push(`${why} and no generation is known good: generation ${current.generation} gets ${state.tries} boot tries`);
    }
  }

  // The current generation was never blessed and nobody marked it (ext used before ext setup,
  // a transaction finished by crash recovery): it is on trial like any newly activated one.
  if (!reverted && current.generation !== null && !isGood(current.image) && state.pending === null) {
    state.pending = { generation: current.generation, image: current.image, triesLeft: state.tries, tries: state.tries, since: now };
  }

  if (cmdline.invalid.length > 0) messages.push(`ignored kernel command line option(s): ${cmdline.invalid.join(" ")}`);

  // Kernel command line: this boot only. The persistent choice and the tries are left alone.
  let boot: { target: Target; how: BootHow; triesLeft?: number } | undefined;
  let runtime: Runtime = { kind: "none" };
  if (cmdline.disable) {
    boot = { target: BASE, how: "disabled" };
    runtime = { kind: "mask" };
    messages.push("ext.disable: no ext extension in this boot");
  } else if (cmdline.generation !== undefined) {
    const wanted = cmdline.generation;
    const target = wanted === "previous" ? previousTarget(state.good, world, current) : usable(world, wanted);
    const label = `ext.generation=${wanted}`;
    if (target) {
      boot = { target, how: "override" };
      runtime = runtimeFor(target);
      messages.push(`${label}: ${describeTarget(target)} in this boot only`);
    } else {
      messages.push(wanted === "previous"
        ? `${label}: there is no other generation to use; the usual choice applies`
        : `${label}: generation ${wanted} ${world.generations.has(wanted) ? "has lost its image" : "does not exist"}; the usual choice applies`);
    }
  }

  if (!boot) {
    const pending = state.pending;
    if (pending && !reverted) {
      if (pending.triesLeft > 0) {
        pending.triesLeft -= 1;
        boot = { target: current, how: "pending", triesLeft: pending.triesLeft };
        messages.push(`generation ${pending.generation} is on trial: ${pending.triesLeft} more boot(s) after this one unless a boot is blessed`);
      } else {
        const tries = pending.tries ?? state.tries;
        revert(lastGood(state.good, world, pending.image) ?? BASE, `generation ${pending.generation} did not reach a good boot in ${tries} ${tries === 1 ? "try" : "tries"}`);
      }
    }
    boot ??= { target: current, how: reverted ? "reverted" : current.generation === null ? "none" : "current" };
  }

  const record: BootRecord = {
    bootId,
    at: now,
    generation: boot.target.generation,
    image: boot.target.image,
    how: boot.how,
    ...(boot.triesLeft !== undefined ? { triesLeft: boot.triesLeft } : {}),
    messages,
  };
  state.lastBoot = record;
  return {
    state,
    ...(persistent ? { persistent } : {}),
    runtime,
    boot: record,
    setAsideDamaged: input.read.kind === "corrupt",
    rerun: false,
  };
}

function runtimeFor(t: { image: string | null }): Runtime {
  return t.image === null ? { kind: "mask" } : { kind: "image", image: t.image };
}

export function describeTarget(t: Target): string {
  if (t.generation === null) return t.image === null ? "no ext extension (the base system)" : `image ${t.image.slice(0, 12)}`;
  return `generation ${t.generation}`;
}

/** Generation `id` if its record exists and its image is there (or it is the empty set). */
function usable(world: World, id: number): Target | undefined {
  if (!world.generations.has(id)) return undefined;
  const image = world.generations.get(id) ?? null;
  if (image !== null && !world.images.has(image)) return undefined;
  return { generation: id, image };
}

/** A good entry, mapped onto what still exists: its own generation, or — when that record was
 *  gc'd — the newest generation with the same image (the same bytes: the same set). */
function resolveGood(g: GoodEntry, world: World): Target | undefined {
  if (g.image === null || !world.images.has(g.image)) return undefined;
  if (world.generations.get(g.generation) === g.image) return { generation: g.generation, image: g.image };
  const same = [...world.generations].filter(([, image]) => image === g.image).map(([id]) => id).sort((a, b) => b - a);
  return same[0] !== undefined ? { generation: same[0], image: g.image } : undefined;
}

/** The most recently blessed generation that still exists, other than `exclude` (an image). */
export function lastGood(good: GoodEntry[], world: World, exclude: string | null): Target | undefined {
  for (const g of [...good].reverse()) {
    if (exclude !== null && g.image === exclude) continue;
    const t = resolveGood(g, world);
    if (t) return t;
  }
  return undefined;
}

/** ext.generation=previous: the last good generation other than the current one; when none was
 *  ever blessed, the newest usable generation older than the current one (as `ext rollback`). */
function previousTarget(good: GoodEntry[], world: World, current: Target): Target | undefined {
  const g = lastGood(good, world, current.image);
  if (g) return g;
  const older = [...world.generations.keys()]
    .filter((id) => current.generation === null || id < current.generation)
    .sort((a, b) => b - a);
  for (const id of older) {
    const t = usable(world, id);
    if (t && t.image !== current.image) return t;
  }
  return undefined;
}
