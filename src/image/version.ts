/** Bumped whenever stage() or pack() would produce different bytes for the same inputs, so images
 *  cached under an older key are not reused, nor staged trees kept by the stage cache. */
export const STAGING_VERSION = 1;
