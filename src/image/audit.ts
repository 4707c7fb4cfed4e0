import { lstat, readdir } from "node:fs/promises";
import { posix } from "node:path";
import { errnoCode, UnsafeImageError } from "../errors.js";
import { RELEASE_DIR, releaseFileName } from "./release.js";

// The last look at a staged tree before it is packed: the things that would make systemd-sysext refuse
// it (and with it every other extension) or that would change the host's identity.

export async function auditStage(stageDir: string, extensionName: string): Promise<void> {
  const problems: string[] = [];
  for (const name of await readdir(stageDir)) {
    if (name !== "usr") problems.push(`/${name}: an extension may only hold usr/`);
  }
  if (await exists(posix.join(stageDir, "usr/lib/os-release"))) {
    problems.push("/usr/lib/os-release: it would replace the host's identity, and systemd-sysext refuses such images");
  }
  const ours = releaseFileName(extensionName);
  let release: string[] = [];
  try {
    release = await readdir(posix.join(stageDir, RELEASE_DIR));
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
  }
  for (const name of release) {
    if (name !== ours) problems.push(`/${RELEASE_DIR}/${name}: only ${ours} belongs in this image`);
  }
  if (!release.includes(ours)) problems.push(`/${RELEASE_DIR}/${ours} is missing`);
  else if (!(await lstat(posix.join(stageDir, RELEASE_DIR, ours))).isFile()) {
    problems.push(`/${RELEASE_DIR}/${ours} is not a regular file`);
  }
  if (problems.length > 0) {
    throw new UnsafeImageError(`the staged image would break the host: ${problems[0]}`, { details: problems.join("\n") });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return false;
    throw e;
  }
}
