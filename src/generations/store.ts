import { readdir, unlink, mkdir } from "node:fs/promises";
import { StateError, errnoCode } from "../errors.js";
import { writeJsonAtomic } from "../fsutil.js";
import { generationPath, type Layout } from "../base/layout.js";
import { RECORD_VERSION, generationRecordShape, type GenerationRecord } from "./record.js";
import { assertDirectory, field, id, nullable, object, readStateFile } from "../base/state-file.js";

export interface CurrentPointer {
  generation: number | null;
}

export async function ensureStateDirs(l: Layout): Promise<void> {
  await checkStateDirs(l);
  for (const dir of [l.stateDir, l.imagesDir, l.generationsDir, l.tmpDir]) {
    await mkdir(dir, { recursive: true });
  }
}

/** ext's directories are directories (or absent): anything else there is a StateError naming it
 *  rather than an EEXIST or ENOTDIR from whichever step first trips on it. */
export async function checkStateDirs(l: Layout): Promise<void> {
  for (const dir of [l.stateDir, l.imagesDir, l.generationsDir, l.tmpDir, l.stageCacheDir, l.extensionsDir]) {
    const lost = dir === l.stateDir || dir === l.imagesDir || dir === l.generationsDir;
    await assertDirectory(dir, `'sudo ext repair' moves it aside (or: sudo mv ${dir} /root/); ext makes the directory again${lost ? ", but the generations it held are lost unless you put them back" : ""}`);
  }
}

export async function listGenerationIds(l: Layout): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(l.generationsDir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    if (errnoCode(e) === "ENOTDIR") await checkStateDirs(l);
    throw e;
  }
  return names
    .map((n) => /^(\d+)\.json$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

export async function readGeneration(l: Layout, id: number): Promise<GenerationRecord> {
  const file = generationPath(l, id);
  const record = await readStateFile(file, generationRecordShape,
    `'sudo ext repair' moves it aside into ${l.stateDir}/damaged/ (generation ${id} is then forgotten), or restore it from a backup`);
  if (!record) throw new StateError(`generation ${id} does not exist`, { hint: "run 'ext generations' to see the ones there are" });
  if (record.recordVersion > RECORD_VERSION) {
    throw new StateError(`generation ${id} was written by a newer ext`, { hint: "upgrade ext" });
  }
  if (record.id !== id) {
    throw new StateError(`the state file ${file} is damaged: it says it is generation ${record.id}`, {
      hint: `'sudo ext repair' moves it aside into ${l.stateDir}/damaged/ (generation ${id} is then forgotten), or restore it from a backup`,
    });
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
  const pointer = await readStateFile(l.currentFile, currentShape,
    `'sudo ext repair' moves it aside and names the generation to make current; or remove it (sudo rm ${l.currentFile}), then 'sudo ext rollback --to N' with N from 'ext generations' makes N current again`);
  return pointer?.generation ?? null;
}

function currentShape(value: unknown): CurrentPointer {
  return { generation: field(object(value, ""), "", "generation", nullable(id)) };
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
