import { endianness } from "node:os";
import { InvalidNameError, UsageError } from "../errors.js";

import { MAX_EXTENSION_NAME_LENGTH, extensionNameProblem } from "../base/extension-name.js";

export { MAX_EXTENSION_NAME_LENGTH, extensionNameProblem };

/** Throws InvalidNameError unless `name` is safe as `<name>.raw` and `extension-release.<name>`. */
export function validateExtensionName(name: string): void {
  const problem = extensionNameProblem(name);
  if (problem !== undefined) {
    throw new InvalidNameError(`invalid extension name '${name}': ${problem}`, {
      hint: `use 1–${MAX_EXTENSION_NAME_LENGTH} characters from A–Z a–z 0–9 _ . - , not starting with '.' or '-'`,
    });
  }
}


/** systemd's architecture identifiers (architecture_to_string), as ARCHITECTURE= accepts them. */
export const SYSTEMD_ARCHITECTURES: readonly string[] = [
  "alpha", "arc", "arc-be", "arm", "arm-be", "arm64", "arm64-be", "cris", "ia64", "loongarch64", "m68k",
  "mips", "mips-le", "mips64", "mips64-le", "parisc", "parisc64", "ppc", "ppc-le", "ppc64", "ppc64-le",
  "riscv32", "riscv64", "s390", "s390x", "sh", "sh64", "sparc", "sparc64", "tilegx", "x86", "x86-64",
];

/** Maps Node's process.arch (and byte order, which Node folds into one name for ppc64/arm64) to systemd's name. */
export function systemdArchitecture(arch: string = process.arch, byteOrder: "LE" | "BE" = endianness()): string {
  const le = byteOrder === "LE";
  switch (arch) {
    case "x64": return "x86-64";
    case "ia32": return "x86";
    case "arm64": return le ? "arm64" : "arm64-be";
    case "arm": return le ? "arm" : "arm-be";
    case "riscv64": return "riscv64";
    case "ppc64": return le ? "ppc64-le" : "ppc64";
    case "ppc": return le ? "ppc-le" : "ppc";
    case "s390x": return "s390x";
    case "s390": return "s390";
    case "loong64": return "loongarch64";
    case "mips": return "mips";
    case "mipsel": return "mips-le";
    case "mips64": return "mips64";
    case "mips64el": return "mips64-le";
    default:
      throw new UsageError(`no systemd architecture is known for Node's '${arch}'`);
  }
}

export function validateArchitecture(architecture: string): void {
  if (!SYSTEMD_ARCHITECTURES.includes(architecture)) {
    throw new UsageError(`'${architecture}' is not a systemd architecture`, {
      hint: `one of: ${SYSTEMD_ARCHITECTURES.join(", ")}`,
    });
  }
}
