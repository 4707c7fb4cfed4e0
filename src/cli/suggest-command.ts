import { suggest } from "../nix/suggest.js";

// "Did you mean" for a command ext does not have. People type the word of the package manager they
// know (apt install, dnf info, pip uninstall, brew upgrade-all…); those words are far from ext's in
// spelling, so an edit distance alone answers `ext info` with `ext diff`. What people mean comes first,
// then spelling; either way the answer is one of the commands the parser really has.

/** Words of other package managers and shells, and the ext command that does that. */
export const MEANT: Readonly<Record<string, string>> = {
  install: "add",
  in: "add",
  i: "add",
  get: "add",
  uninstall: "remove",
  rm: "remove",
  del: "remove",
  delete: "remove",
  erase: "remove",
  purge: "remove",
  info: "show",
  describe: "show",
  ls: "list",
  installed: "list",
  "list-installed": "list",
  find: "search",
  query: "search",
  "upgrade-all": "upgrade",
  update: "upgrade",
  "update-all": "upgrade",
  history: "generations",
  log: "generations",
  revert: "rollback",
  undo: "rollback",
  clean: "gc",
  prune: "gc",
  autoremove: "gc",
  check: "doctor",
  sync: "apply",
  completions: "completion",
};

/** The command `typed` most likely meant, among `commands` (the parser's own); undefined: none close. */
export function suggestCommand(typed: string, commands: readonly string[]): string | undefined {
  const word = typed.toLowerCase();
  const meant = MEANT[word];
  if (meant !== undefined && commands.includes(meant)) return meant;
  // A case slip (`ext List`) is the command itself.
  const same = commands.find((c) => c.toLowerCase() === word);
  if (same !== undefined) return same;
  return suggest(word, commands, 1)[0];
}

/** The first `--name` in argv that is none of `options` (yargs' keys, aliases included; `--no-x` is
 *  x), before a `--` that ends the options. */
export function unknownOption(argv: readonly string[], options: readonly string[]): string | undefined {
  const known = new Set(options);
  for (const a of argv) {
    if (a === "--") return undefined;
    if (!a.startsWith("--")) continue;
    const name = a.slice(2).split("=")[0] ?? "";
    if (name === "" || known.has(name) || (name.startsWith("no-") && known.has(name.slice(3)))) continue;
    return name;
  }
  return undefined;
}

/** The option `typed` most likely meant, among `options` (long names only). */
export function suggestOption(typed: string, options: readonly string[]): string | undefined {
  return suggest(typed, options.filter((o) => o.length > 1), 1)[0];
}
