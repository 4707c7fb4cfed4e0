/** Bumped whenever stage() or pack() would produce different bytes for the same inputs, so images
 *  cached under an older key are not reused, nor staged trees kept by the stage cache. */
// 2: images carry the store's mtime 1 (was 0); compressed files are relocated inside or left
//    byte-identical (were byte-rewritten, which broke their checksums).
export const STAGING_VERSION = 2;
