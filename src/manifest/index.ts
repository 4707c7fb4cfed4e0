// tools.json and tools.lock.json: the declarative side of ext (ext apply, diff, export, upgrade, and
// keeping a tracked file in step with ext add / remove). See docs/tools-json.md.
export * from "./types.js";
export { readManifest, readLock, parseManifest, parseLock, lockPathFor, where, type Manifest, type Lock } from "./read.js";
export { parseJson, positionAt, positionOf, pointerToPath, showPath, type Position, type JsonPath } from "./position.js";
export { checkTools, checkLock, type SchemaProblem } from "./schema.js";
export { editPackages, setProperty, detectStyle, packageValue } from "./edit.js";
export { lockFor, lockText, sameLock, pinOf, pinFromReference, unpinnedReference, installedFromLock, lockEntryMatches, sameOutputs } from "./lockfile.js";
export { resolveManifest, nixPinner, refreshingNix, specOf, type Resolution, type Pinner } from "./resolve.js";
export { previewSet, evaluatePackage, type Preview, type Evaluator } from "./preview.js";
export { trackedFile, setTrackedFile } from "./tracking.js";
export { writeUserFile } from "./files.js";
