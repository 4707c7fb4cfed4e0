// One pipeline from package specs to a verified image: resolve → closure → stage → pack → verify.
// `ext build` runs it whole (build.ts); the transaction's steps (src/machine/steps/) run the same
// phases one by one, with a journal, the stage cache and image reuse around them; `ext show` runs
// the first two.

export { type PackageSpec, requestOf, resolvePackages, withSettingsOf, inFarmOrder } from "./packages.js";
export { closureOf } from "./closure.js";
export { imageKey } from "./key.js";
export { STAGE_OPTIONS, stageClosure, type StageRequest } from "./stage.js";
export { packStage, appendStage, mayAppendOnto, prepareAppendBase, MAX_APPENDS, type AppendBase } from "./pack.js";
export { verifyPacked } from "./verify.js";
export { buildImage, type BuildRequest, type BuiltImage, type StagedSet } from "./build.js";
export type { ImageTarget } from "./target.js";
export { BOOTSTRAP_PACKAGES, BOOTSTRAP_CACHE, bootstrapSpecs, bootstrapFiles, bootstrapCache, readBootstrap } from "./bootstrap.js";
