import type { PackageSpec } from "../machine/types.js";
import { validateAttrPath } from "../nix/index.js";
import { InvalidNameError } from "../errors.js";

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

/** The package arguments of add / remove as typed. yargs drops a lone "-" from positionals (it means
 *  stdin to it), which turned `ext add -` into an add of nothing ("already installed: "): refuse it,
 *  and an empty list, as invalid names. `argv` is the raw command line. */
export function packageArgs(packages: string[], argv: readonly string[]): string[] {
  const dashAt = argv.indexOf("-");
  const endOfOptions = argv.indexOf("--");
  if (dashAt >= 0 && (endOfOptions < 0 || dashAt < endOfOptions)) {
    throw new InvalidNameError("invalid package name '-': it is not a package name (ext does not read names from stdin)", {
      hint: "name the packages, e.g. 'ext add ripgrep jq'; for a list in a file use 'ext apply FILE'",
    });
  }
  if (packages.length === 0) throw new InvalidNameError("no package name given", { hint: "name the packages, e.g. 'ext add ripgrep'" });
  return packages;
}
