import type { PackageSpec } from "../machine/types.js";
import { validateAttrPath } from "../nix/index.js";

/** `NAME` or `NAME=ATTR` (install attribute ATTR under the name NAME). The source comes from
 *  --source; a `#` in a name is refused by validation rather than read as a flake reference. */
export function parsePackageArg(arg: string): PackageSpec {
  const eq = arg.indexOf("=");
  const name = eq >= 0 ? arg.slice(0, eq) : arg;
  const attr = eq >= 0 ? arg.slice(eq + 1) : arg;
  validateAttrPath(name);
  validateAttrPath(attr);
  return attr === name ? { name } : { name, attr };
}
