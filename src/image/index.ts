// The image module: stage a closure into a tree, pack it into EROFS, verify the result.

export { STAGING_VERSION } from "./version.js";

export { stage } from "./stage.js";
export { keepStaged, clearStageCache } from "./stage-cache.js";
export { pack, mkfsArguments, sha256File, IMAGE_UUID, type PackInput } from "./pack.js";
export { canAppend, planAppend, prepareBase, appendPack, PreviousImageChanged, type AppendInput, type AppendPlan, type PreparedBase } from "./append.js";
export { treeDigest, imageTreeDigest } from "./tree-digest.js";
export { verifyImage, type VerifyOptions, type VerifyReport, type VerifyFinding } from "./verify.js";
export { availableCompressors, resolveCompression, mkfsCapabilities } from "./compressors.js";
export {
  validateExtensionName, extensionNameProblem, systemdArchitecture, validateArchitecture,
  SYSTEMD_ARCHITECTURES, MAX_EXTENSION_NAME_LENGTH,
} from "./names.js";
export { releaseContent, releaseFileRel, parseEnvFile, releaseMismatch } from "./release.js";
export { rewriteStoreReferences, rewriteLinkTarget, containsStoreReference } from "./rewrite.js";
export { sniffContainer, opaqueWarning } from "./opaque.js";
export { FARM_RULES } from "./farm.js";
export { NIX_STORE, RELOCATED_STORE, STAGE_STORE_REL, relocatedPath, physicalPath } from "./store-paths.js";
export type * from "./types.js";
