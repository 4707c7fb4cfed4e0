import { readFile, readdir, unlink, mkdir } from "node:fs/promises";
import { StateError, errnoCode } from "../errors.js";
import { writeJsonAtomic } from "../fsutil.js";
import { generationPath, type Layout } from "./layout.js";
import { RECORD_VERSION, type GenerationRecord } from "./record.js";

export interface CurrentPointer {
  generation: number | null;
}

export async function readJsonFile<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new StateError(`the state file ${file} is not valid JSON`, {
      hint: "it was damaged outside ext; restore it from a backup or remove it (ext will treat it as absent)",
      cause: e,
    });
  }
}

export async function ensureStateDirs(l: Layout): Promise<void> {
  for (const dir of [l.stateDir, l.imagesDir, l.generationsDir, l.tmpDir]) {
    await mkdir(dir, { recursive: true });
  }
}

export async function listGenerationIds(l: Layout): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(l.generationsDir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw e;
  }
  return names
    .map((n) => /^(\d+)\.json$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

export async function readGeneration(l: Layout, id: number): Promise<GenerationRecord> {
  const record = await readJsonFile<GenerationRecord>(generationPath(l, id));
  if (!record) throw new StateError(`generation ${id} does not exist`, { hint: "run 'ext generations' to see the ones there are" });
  if (record.recordVersion > RECORD_VERSION) {
    throw new StateError(`generation ${id} was written by a newer ext`, { hint: "upgrade ext" });
  }
  return record;
}

export async function listGenerations(l: Layout): Promise<GenerationRecord[]> {
  const ids = await listGenerationIds(l);
  return Promise.all(ids.map((id) => readGeneration(l, id)));
}

export async function writeGeneration(l: Layout, record: GenerationRecord): Promise<void> {
  await writeJsonAtomic(generationPath(l, record.id), record);
}

export async function deleteGeneration(l: Layout, id: number): Promise<void> {
  await unlink(generationPath(l, id)).catch((e) => {
    if (errnoCode(e) !== "ENOENT") throw e;
  });
}

export async function readCurrent(l: Layout): Promise<number | null> {
  const pointer = await readJsonFile<CurrentPointer>(l.currentFile);
  return pointer?.generation ?? null;
}

export async function writeCurrent(l: Layout, generation: number | null): Promise<void> {
  await writeJsonAtomic(l.currentFile, { generation } satisfies CurrentPointer);
}

export async function readCurrentGeneration(l: Layout): Promise<GenerationRecord | null> {
  const id = await readCurrent(l);
  return id === null ? null : readGeneration(l, id);
}

export async function nextGenerationId(l: Layout): Promise<number> {
  const ids = await listGenerationIds(l);
  return (ids.at(-1) ?? 0) + 1;
}
