// Offline Nix for tests: no substituters, no flake registry (else every call waits on the network),
// flakes enabled on Nix 2.8.
export const OFFLINE_NIX_CONFIG = [
  "experimental-features = nix-command flakes",
  "substituters =",
  "flake-registry =",
  "warn-dirty = false",
].join("\n");

export function offlineNixEnv(): Record<string, string> {
  return { NIX_CONFIG: OFFLINE_NIX_CONFIG };
}
