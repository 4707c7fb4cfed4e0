/** The pipeline (Nix, staging, mkfs.erofs and what they use) loads when a step needs it: a
 *  transaction that finds nothing to do never does. */
export const pipeline = () => import("../../pipeline/index.js");
