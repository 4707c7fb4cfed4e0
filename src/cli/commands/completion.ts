import type { Argv } from "yargs";
import type { CommandContext } from "../context.js";
import { listGenerationIds, readCurrentGeneration } from "../../generations/store.js";
import { UsageError } from "../../errors.js";

// `ext completion bash|zsh|fish` prints a completion script: commands, options, option values, and
// the installed package names for `ext remove` (asked from ext itself: `ext __complete installed`,
// which reads the current generation and nothing else, so it is instant and needs no Nix).
// The commands and options are read from the argument parser's own --help, so a command added to
// main.ts is completed without touching this file; only what values complete to is listed here.

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** What an option's value completes to. */
export type Values = "dir" | "file" | "compression" | "generations" | "none";

export interface OptionSpec {
  /** Without dashes; `no-wait` for a boolean that is on by default. */
  name: string;
  short?: string;
  description: string;
  /** The option takes a value of this kind (absent: a flag). */
  value?: Values;
}

export interface CommandSpec {
  name: string;
  description: string;
  options: OptionSpec[];
  /** What the positional arguments complete to: installed names, files, fixed words, or nothing. */
  args: "installed" | "file" | readonly string[] | "none";
}

export interface CliSpec {
  globals: OptionSpec[];
  commands: CommandSpec[];
}

/** Option values that complete to something (by option name). */
const OPTION_VALUES: Record<string, Values> = { root: "dir", output: "file", manifest: "file", key: "file", "cache-key": "file", compression: "compression", to: "generations" };
/** Commands whose positional arguments are installed package names. */
const TAKES_INSTALLED = new Set(["remove", "upgrade"]);
/** Positionals (by name) that are files. */
const FILE_POSITIONALS = new Set(["file", "output"]);
const COMPRESSIONS = ["none", "lz4", "lz4hc"];

export interface CompletionResult {
  shell: Shell;
  script: string;
}

export function completion(_ctx: CommandContext, opts: { shell: string; spec: CliSpec }): CompletionResult {
  if (!(SHELLS as readonly string[]).includes(opts.shell)) {
    throw new UsageError(`no completion for shell '${opts.shell}'`, { hint: `choose one of: ${SHELLS.join(", ")}` });
  }
  const shell = opts.shell as Shell;
  return { shell, script: completionScript(shell, opts.spec) };
}

export function formatCompletion(r: CompletionResult): string[] {
  return [r.script.replace(/\n$/, "")];
}

/** `ext __complete installed|generations`: one name per line, for the scripts. Never fails loudly. */
export async function completeNames(ctx: CommandContext, what: string): Promise<string[]> {
  try {
    if (what === "installed") return (await readCurrentGeneration(ctx.layout))?.packages.map((p) => p.name) ?? [];
    if (what === "generations") return (await listGenerationIds(ctx.layout)).map(String);
  } catch {
    /* no state, unreadable state: nothing to offer */
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// The command table, from yargs' --help of the real parser.

/** yargs' help text for `args` (e.g. ["add", "--help"]), without printing or exiting. */
export function helpText(makeParser: (argv: string[]) => Argv<unknown>, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // Unwrapped: the same text whatever the terminal's width.
    makeParser(args).wrap(null).exitProcess(false).parse(args, {}, (err: Error | undefined, _argv: unknown, output: string) => (err ? reject(err) : resolve(output)));
  });
}

export async function cliSpec(makeParser: (argv: string[]) => Argv<unknown>): Promise<CliSpec> {
  const top = parseHelp(await helpText(makeParser, ["--help"]));
  const globalNames = new Set(top.options.map((o) => o.name));
  const commands: CommandSpec[] = [];
  for (const c of top.commands) {
    const help = parseHelp(await helpText(makeParser, [c.name, "--help"]));
    const choices = help.positionals.find((p) => p.choices)?.choices;
    commands.push({
      name: c.name,
      description: c.description,
      options: help.options.filter((o) => !globalNames.has(o.name)),
      args: choices ?? (TAKES_INSTALLED.has(c.name) ? "installed" : help.positionals.some((p) => FILE_POSITIONALS.has(p.name)) ? "file" : "none"),
    });
  }
  return { globals: top.options, commands };
}

interface ParsedHelp {
  commands: { name: string; description: string }[];
  options: OptionSpec[];
  positionals: { name: string; choices?: string[] }[];
}

/** Reads yargs' help layout: sections "Commands:", "Positionals:", "Options:", entries that wrap. */
export function parseHelp(text: string): ParsedHelp {
  const out: ParsedHelp = { commands: [], options: [], positionals: [] };
  let section = "";
  let entries: string[] = [];
  const flush = () => {
    for (const entry of entries) addEntry(out, section, entry);
    entries = [];
  };
  for (const line of text.split("\n")) {
    const header = /^(\w[\w ]*):$/.exec(line);
    if (header) {
      flush();
      section = header[1] ?? "";
      continue;
    }
    if (line.trim() === "") continue;
    // A new entry starts at the first indentation level of its section; wrapped text is indented more.
    const starts = section === "Commands" ? /^ {2}\S/.test(line) : section === "Options" ? /^\s+(-\w, )?--?\w/.test(line) : /^ {2}\S/.test(line);
    if (starts || entries.length === 0) entries.push(line.trim());
    else entries[entries.length - 1] += ` ${line.trim()}`;
  }
  flush();
  return out;
}

const TAG = /\s*\[(string|number|boolean|array|count|required|deprecated[^\]]*|default: [^\]]*|choices: [^\]]*)\]\s*$/;

/** Splits "text  [string] [default: x]" into the text and its tags (tags are at the end). */
function tagsOf(rest: string): { text: string; tags: string[] } {
  const tags: string[] = [];
  let text = rest;
  for (let m = TAG.exec(text); m; m = TAG.exec(text)) {
    tags.unshift(m[1] ?? "");
    text = text.slice(0, m.index);
  }
  return { text: text.trim(), tags };
}

function addEntry(out: ParsedHelp, section: string, entry: string): void {
  if (section === "Commands") {
    const m = /^\S+ (\S+)((?: [<[][^\s>\]]+[>\]])*)\s+(.*)$/.exec(entry);
    if (m) out.commands.push({ name: m[1] ?? "", description: (m[3] ?? "").trim() });
  } else if (section === "Options") {
    const m = /^(?:-(\w), )?--([\w-]+)\s*(.*)$/.exec(entry);
    if (!m) return;
    const { text, tags } = tagsOf(m[3] ?? "");
    const name = m[2] ?? "";
    const boolean = tags.includes("boolean");
    const onByDefault = boolean && tags.includes("default: true");
    out.options.push({
      name: onByDefault ? `no-${name}` : name,
      ...(m[1] && !onByDefault ? { short: m[1] } : {}),
      // "wait for another ext (--no-wait fails at once)": the words for --no-wait are in the parentheses.
      description: onByDefault ? /\(--no-[\w-]+:? ([^)]*)\)/.exec(text)?.[1] ?? `do not: ${text}` : text || name,
      ...(boolean ? {} : { value: OPTION_VALUES[name] ?? "none" }),
    });
  } else if (section === "Positionals") {
    const m = /^(\S+)\s*(.*)$/.exec(entry);
    if (!m) return;
    const choices = tagsOf(m[2] ?? "").tags.find((t) => t.startsWith("choices: "));
    out.positionals.push({
      name: m[1] ?? "",
      ...(choices ? { choices: choices.slice("choices: ".length).split(", ").map((c) => c.replace(/^"|"$/g, "")) } : {}),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The scripts.

export function completionScript(shell: Shell, spec: CliSpec): string {
  switch (shell) {
    case "bash": return bashScript(spec);
    case "zsh": return zshScript(spec);
    case "fish": return fishScript(spec);
  }
}

const optionWords = (o: OptionSpec) => [`--${o.name}`, ...(o.short ? [`-${o.short}`] : [])];
const choiceWords = (c: CommandSpec) => (Array.isArray(c.args) ? c.args.join(" ") : "");

function bashScript(spec: CliSpec): string {
  const all = [...spec.globals, ...spec.commands.flatMap((c) => c.options)];
  const withValue = (kind?: Values) => [...new Set(all.filter((o) => (kind === undefined ? o.value !== undefined : o.value === kind)).flatMap(optionWords))].join("|");
  const prevActions: [Values, string][] = [
    ["dir", `COMPREPLY=($(compgen -d -- "$cur")); return`],
    ["file", `COMPREPLY=($(compgen -f -- "$cur")); return`],
    ["compression", `COMPREPLY=($(compgen -W "${COMPRESSIONS.join(" ")}" -- "$cur")); return`],
    ["generations", `COMPREPLY=($(compgen -W "$(_ext_names generations)" -- "$cur")); return`],
    ["none", "return"],
  ];
  const prevCases = prevActions.filter(([kind]) => withValue(kind) !== "").map(([kind, action]) => `    ${withValue(kind)}) ${action} ;;`);
  const commandCases = spec.commands.map((c) => `    ${c.name}) opts="${c.options.flatMap(optionWords).join(" ")}" ;;`);
  const argCases = spec.commands.flatMap((c) => {
    if (c.args === "installed") return [`    ${c.name}) COMPREPLY=($(compgen -W "$(_ext_names installed)" -- "$cur")) ;;`];
    if (c.args === "file") return [`    ${c.name}) COMPREPLY=($(compgen -f -- "$cur")) ;;`];
    if (Array.isArray(c.args)) return [`    ${c.name}) COMPREPLY=($(compgen -W "${choiceWords(c)}" -- "$cur")) ;;`];
    return [];
  });
  return `# bash completion for ext
# Install: ext completion bash | sudo tee /usr/share/bash-completion/completions/ext >/dev/null
#      or: source <(ext completion bash)     (in ~/.bashrc)

_ext_names() {
  # Installed packages or generation ids, asked from ext itself (with the --root typed, if any).
  "\${COMP_WORDS[0]}" "\${_ext_root[@]}" __complete "$1" 2>/dev/null
}

_ext() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # bash splits --opt=value into '--opt' '=' 'value'.
  [[ $prev == "=" ]] && prev="\${COMP_WORDS[COMP_CWORD-2]}"
  [[ $cur == "=" ]] && cur=""
  local commands="${spec.commands.map((c) => c.name).join(" ")}"
  local global_opts="${spec.globals.flatMap(optionWords).join(" ")}"
  local cmd="" i word
  _ext_root=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    case "$word" in
      --root)
        if [[ \${COMP_WORDS[i+1]} == "=" ]]; then _ext_root=(--root "\${COMP_WORDS[i+2]}"); ((i += 2))
        else _ext_root=(--root "\${COMP_WORDS[i+1]}"); ((i++)); fi ;;
      --root=*) _ext_root=("$word") ;;
      ${withValue()}) if [[ \${COMP_WORDS[i+1]} == "=" ]]; then ((i += 2)); else ((i++)); fi ;;
      -*) ;;
      *) [[ -z $cmd ]] && cmd="$word" ;;
    esac
  done

  case "$prev" in
${prevCases.join("\n")}
  esac

  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi

  local opts=""
  case "$cmd" in
${commandCases.join("\n")}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts $global_opts" -- "$cur"))
    return
  fi
  case "$cmd" in
${argCases.join("\n")}
  esac
}

complete -F _ext ext
`;
}

/** zsh _arguments specs: brackets and colons in descriptions would end the field. */
function zshEscape(s: string): string {
  return s.replace(/[[\]]/g, "").replace(/:/g, " -").replace(/'/g, "");
}

function zshOption(o: OptionSpec): string {
  const action = (() => {
    switch (o.value) {
      case undefined: return "";
      case "dir": return ":directory:_directories";
      case "file": return ":file:_files";
      case "compression": return `:compression:(${COMPRESSIONS.join(" ")})`;
      case "generations": return ":generation:_ext_generations";
      case "none": return `:${o.name}: `;
    }
  })();
  const desc = `[${zshEscape(o.description)}]`;
  const eq = o.value !== undefined ? "=" : "";
  if (o.short) return `'(-${o.short} --${o.name})'{-${o.short},--${o.name}${eq}}'${desc}${action}'`;
  return `'--${o.name}${eq}${desc}${action}'`;
}

function zshScript(spec: CliSpec): string {
  const args = (c: CommandSpec) => {
    if (c.args === "installed") return " '*:installed package:_ext_installed'";
    if (c.args === "file") return " '*:file:_files'";
    if (Array.isArray(c.args)) return ` '1:argument:(${choiceWords(c)})'`;
    return " '*:argument: '";
  };
  const cases = spec.commands.map((c) => `        ${c.name}) _arguments -s $global_opts ${c.options.map(zshOption).join(" ")}${args(c)} && ret=0 ;;`);
  return `#compdef ext
# zsh completion for ext
# Install: ext completion zsh | sudo tee /usr/share/zsh/site-functions/_ext >/dev/null
#      or: source <(ext completion zsh)     (in ~/.zshrc, after compinit)

_ext_call() {
  # Asks ext itself (with the --root typed, if any) for installed packages or generation ids.
  local -a root
  local i
  for (( i = 2; i <= \${#_ext_words}; i++ )); do
    case \${_ext_words[i]} in
      --root) root=(--root \${_ext_words[i+1]}) ;;
      --root=*) root=(\${_ext_words[i]}) ;;
    esac
  done
  \${_ext_words[1]} $root __complete $1 2>/dev/null
}

_ext_installed() {
  local -a names
  names=(\${(f)"$(_ext_call installed)"})
  compadd -a names
}

_ext_generations() {
  local -a ids
  ids=(\${(f)"$(_ext_call generations)"})
  compadd -a ids
}

_ext() {
  local curcontext="$curcontext" state line ret=1
  local -a _ext_words global_opts commands
  _ext_words=($words)
  global_opts=(
${spec.globals.map((o) => `    ${zshOption(o)}`).join("\n")}
  )
  commands=(
${spec.commands.map((c) => `    '${c.name}:${zshEscape(c.description)}'`).join("\n")}
  )
  _arguments -C -s $global_opts '1:command:->command' '*::argument:->args' && ret=0
  case $state in
    command)
      _describe -t commands 'ext command' commands && ret=0
      ;;
    args)
      case $words[1] in
${cases.join("\n")}
      esac
      ;;
  esac
  return ret
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _ext "$@"
else
  compdef _ext ext
fi
`;
}

function fishEscape(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/'/g, "\\'");
}

function fishOption(o: OptionSpec, condition?: string): string {
  const parts = ["complete -c ext"];
  if (condition) parts.push(`-n '${condition}'`);
  parts.push(`-l ${o.name}`);
  if (o.short) parts.push(`-s ${o.short}`);
  switch (o.value) {
    case undefined: break;
    case "dir": parts.push("-x -a '(__fish_complete_directories)'"); break;
    case "file": parts.push("-r -F"); break;
    case "compression": parts.push(`-x -a '${COMPRESSIONS.join(" ")}'`); break;
    case "generations": parts.push("-x -a '(__ext_names generations)'"); break;
    case "none": parts.push("-x"); break;
  }
  parts.push(`-d '${fishEscape(o.description)}'`);
  return parts.join(" ");
}

function fishScript(spec: CliSpec): string {
  const names = spec.commands.map((c) => c.name).join(" ");
  const when = (c: CommandSpec) => `__fish_seen_subcommand_from ${c.name}`;
  const lines = [
    "# fish completion for ext",
    "# Install: ext completion fish > ~/.config/fish/completions/ext.fish",
    "",
    "function __ext_names --description 'installed packages or generation ids, asked from ext'",
    "    set -l tokens (commandline -opc)",
    "    set -l root",
    "    for i in (seq 2 (count $tokens))",
    "        switch $tokens[$i]",
    "            case '--root=*'",
    "                set root $tokens[$i]",
    "            case --root",
    "                set -l j (math $i + 1)",
    "                if test $j -le (count $tokens)",
    "                    set root --root $tokens[$j]",
    "                end",
    "        end",
    "    end",
    "    $tokens[1] $root __complete $argv 2>/dev/null",
    "end",
    "",
    "complete -c ext -f",
    ...spec.commands.map((c) => `complete -c ext -n 'not __fish_seen_subcommand_from ${names}' -a ${c.name} -d '${fishEscape(c.description)}'`),
    ...spec.globals.map((o) => fishOption(o)),
    ...spec.commands.flatMap((c) => c.options.map((o) => fishOption(o, when(c)))),
    ...spec.commands.flatMap((c) => {
      if (c.args === "installed") return [`complete -c ext -n '${when(c)}' -a '(__ext_names installed)' -d 'installed'`];
      if (c.args === "file") return [`complete -c ext -n '${when(c)}' -F`];
      if (Array.isArray(c.args)) return [`complete -c ext -n '${when(c)}' -a '${choiceWords(c)}'`];
      return [];
    }),
  ];
  return lines.join("\n") + "\n";
}
