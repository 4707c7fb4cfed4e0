import { endianness } from "node:os";
import { InvalidNameError, UsageError } from "../errors.js";

// systemd accepts any valid file name without control characters as an image name
// (image_name_is_valid). ext is stricter: the name is also a file name in /var/lib/extensions, a path
// component of overlayfs lowerdir options (whose total length is capped) and text in logs, so it sticks
// to a portable character set and a short length.
const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
export const MAX_EXTENSION_NAME_LENGTH = 64;

/** Throws InvalidNameError unless `name` is safe as `<name>.raw` and `extension-release.<name>`. */
export function validateExtensionName(name: string): void {
  const problem = extensionNameProblem(name);
  if (problem !== undefined) {
    throw new InvalidNameError(`invalid extension name '${name}': ${problem}`, {
      hint: `use 1–${MAX_EXTENSION_NAME_LENGTH} characters from A–Z a–z 0–9 _ . - , not starting with '.' or '-'`,
    });
  }
}

export function extensionNameProblem(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name.length > MAX_EXTENSION_NAME_LENGTH) return `it is longer than ${MAX_EXTENSION_NAME_LENGTH} characters`;
  // systemd's image discovery skips hidden files, so a dot-name would never be merged.
  if (name.startsWith(".")) return "it starts with '.'";
  if (!NAME_PATTERN.test(name)) return "it contains characters other than A–Z a–z 0–9 _ . - or starts with '-'";
  return undefined;
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
