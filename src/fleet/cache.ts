import type { NixContext } from "../nix/types.js";
import { closure as nixClosure } from "../nix/index.js";
import { nixCommand } from "../nix/command.js";
import { nixFailed } from "../nix/errors.js";
import type { InstalledPackage } from "../generations/record.js";

// `ext publish --cache URL --cache-key FILE`: the published set's closure also goes to a Nix binary
// cache (any store URL `nix copy --to` takes: file:///srv/cache, s3://…, ssh://…), signed there with a
// `nix key generate-secret` key, so machines that build locally (ext add, ext apply with the same
// lock) substitute every path instead of building. Signing the cache's copies (`nix store sign
// --store URL`) needs no write access to the local store's database, so CI needs no root.

export interface CacheResult {
  url: string;
  paths: number;
  signed: boolean;
}

export async function pushToCache(nix: NixContext, packages: readonly Pick<InstalledPackage, "outPaths">[], url: string, keyFile: string | undefined): Promise<CacheResult> {
  const roots = packages.flatMap((p) => Object.values(p.outPaths));
  const paths = (await nixClosure(nix, roots)).map((c) => c.path);
  const copy = await nixCommand(nix, ["copy", "--to", url, ...paths]);
  if (copy.exitCode !== 0) throw nixFailed(`copying the closure to ${url}`, copy.command, copy.stderr);
  if (keyFile !== undefined) {
    const sign = await nixCommand(nix, ["store", "sign", "--store", url, "--key-file", keyFile, ...paths]);
    if (sign.exitCode !== 0) throw nixFailed(`signing the closure in ${url}`, sign.command, sign.stderr);
  }
  return { url, paths: paths.length, signed: keyFile !== undefined };
}
