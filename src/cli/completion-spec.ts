import { optionForms, type Command, type CommandTable, type Completes, type OptionDescriptor, type OptionDescriptors } from "./command.js";

// The command table the completion scripts are written from (commands/completion.ts), made from the
// descriptors. It is here, beside the list, and not in the completion module: that module is loaded
// only by `ext completion`, and a runtime import from it of the list's modules would make esbuild
// move the list out of the entry file into a chunk of its own, one more file on every start.

/** What an option's value completes to. */
export type Values = Exclude<Completes, "installed"> | "none";

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

/** An option as the scripts complete it: a flag on by default as `--no-NAME`. */
function optionSpec(name: string, o: OptionDescriptor): OptionSpec {
  const forms = optionForms(name, o);
  return {
    name: forms.long,
    ...(forms.short ? { short: forms.short } : {}),
    description: forms.describe,
    ...(o.type === "boolean" ? {} : { value: o.completes === "installed" ? "none" : (o.completes ?? "none") }),
  };
}

function argsOf(c: Command): CommandSpec["args"] {
  const choices = c.positionals.find((p) => p.choices)?.choices;
  if (choices) return choices;
  if (c.positionals.some((p) => p.completes === "installed")) return "installed";
  if (c.positionals.some((p) => p.completes === "file")) return "file";
  return "none";
}

/** What the scripts complete: every command of the list but the hidden ones, the global options. */
export function cliSpec(table: CommandTable): CliSpec {
  const options = (t: OptionDescriptors) => Object.entries(t).map(([name, o]) => optionSpec(name, o));
  return {
    globals: [...options(table.globals), ...options(table.builtins)],
    commands: table.commands.filter((c) => !c.hidden).map((c) => ({ name: c.name, description: c.summary, options: options(c.options), args: argsOf(c) })),
  };
}
