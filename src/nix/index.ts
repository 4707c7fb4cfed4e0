// The Nix adapter: everything else in ext talks to Nix through these functions.
export type * from "./types.js";
export { realise, chooseOutputs } from "./build.js";
export { closure } from "./closure.js";
export { lockSource } from "./lock.js";
export { listAttributes, suggestAttributes } from "./attrs.js";
export { search, literalRegex } from "./search.js";
export { suggest, editDistance } from "./suggest.js";
export { physicalPath, globalArgs } from "./command.js";
export { nixVersion, parseNixVersion, featuresOf, type NixVersion, type NixFeatures } from "./version.js";
export { validateAttrPath, validateFlakeRef, validateOutputName, validateStorePath, isStorePath, installable } from "./validate.js";
export { classifyNixStderr, NixSourceError, type NixFailure } from "./errors.js";
export { parseDrvName, storePathName } from "./parse.js";
export { ensurePaths } from "./ensure.js";
export { nixSystem } from "./system.js";
export { copyToCache, copyFromCache } from "./copy.js";
