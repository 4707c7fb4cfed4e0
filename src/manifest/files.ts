import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { errnoCode } from "../errors.js";
import { writeFileAtomic } from "../fsutil.js";

// tools.json and its lock live in a person's dotfiles, but ext runs as root: a file ext rewrites
// keeps its owner and mode, and a new lock gets the owner and mode of the tools.json beside it
// (never a root-owned file in someone's home). Written atomically like every state file.

export async function writeUserFile(target: string, data: string, like?: string): Promise<void> {
  const model = (await statOrNull(target)) ?? (like ? await statOrNull(like) : null) ?? (await statOrNull(dirname(target)));
  const mode = model && model.isFile() ? model.mode & 0o777 : 0o644;
  const chowned = model && process.getuid?.() === 0 && (model.uid !== 0 || model.gid !== 0);
  await writeFileAtomic(target, data, { mode, ...(chowned ? { owner: { uid: model.uid, gid: model.gid } } : {}) });
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return null;
    throw e;
  }
}
