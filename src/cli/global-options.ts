import { type ArgsOf, type FlagOption, type OptionDescriptors } from "./command.js";
import { DEFAULT_COMPRESSION, DEFAULT_EXTENSION_NAME } from "./context.js";

// The options every command takes, in the order --help lists them; main.ts makes the parser's
// global options and the context from them, completion and the man page list them.

export const GLOBAL_OPTIONS = {
  root: { type: "string", default: "/", value: "DIR", completes: "dir", describe: "operate on the system under this directory" },
  source: { type: "string", value: "FLAKEREF", describe: "flake reference packages come from (default: nixpkgs, or $EXT_SOURCE)" },
  json: { type: "boolean", default: false, describe: "print one JSON document on stdout and nothing else" },
  quiet: { type: "boolean", short: "q", default: false, describe: "print only warnings and errors" },
  verbose: { type: "boolean", short: "v", default: false, describe: "show underlying commands and causes" },
  wait: { type: "boolean", default: true, negated: "fail at once when another ext is running", describe: "wait for another running ext (--no-wait fails at once)" },
  name: { type: "string", default: DEFAULT_EXTENSION_NAME, value: "NAME", describe: "extension name (image file <name>.raw)" },
  compression: { type: "string", default: DEFAULT_COMPRESSION, value: "ALGO[,LEVEL]", completes: "compression", describe: "image compression: none, lz4, lz4hc[,level], or what mkfs.erofs offers" },
  "selinux-contexts": { type: "string", value: "auto|none|FILE", describe: "SELinux labels for images: auto (the host's policy when it uses SELinux), none, or a file_contexts FILE (images for other machines)" },
  store: { type: "string", value: "auto|system|DIR", describe: "Nix store: auto, system, or DIR for a private store under DIR/nix/store (default: auto, or $EXT_STORE)" },
} as const satisfies OptionDescriptors;

export type GlobalArgs = ArgsOf<[], typeof GLOBAL_OPTIONS>;

/** Options the parser itself answers (yargs' --help and --version), listed with the others. */
export const BUILTIN_OPTIONS = {
  version: { type: "boolean", default: false, describe: "Show version number" },
  help: { type: "boolean", default: false, describe: "Show help" },
} as const satisfies Record<string, FlagOption>;

/** The global options that take a value (`--root DIR`), as typed: how main.ts finds the command word. */
export function globalOptionsWithValue(): Set<string> {
  return new Set(Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type !== "boolean").map(([name]) => `--${name}`));
}
