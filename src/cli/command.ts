import type { CommandContext } from "./context.js";

// A command is one descriptor: what it is called, what it takes, its examples, and how it runs and
// prints. The parser (main.ts), the shell completion (commands/completion.ts) and the man page
// (man-page.ts, scripts/man-page.mjs) are all made from the one list in commands/index.ts, so what
// `ext COMMAND --help`, TAB and `man ext` say cannot drift apart. docs/design.md, "Adding a command".
//
// A descriptor is data plus a `load` that import()s the command's module: the list is read on every
// start, the modules (Nix, the image code, execa…) only by the command that runs.

/** What a value completes to in the shell. */
export type Completes = "dir" | "file" | "compression" | "generations" | "installed";

interface OptionCommon {
  /** One line, for --help, completion and the man page. */
  describe: string;
  /** A one-letter alias: `-q`. */
  short?: string;
}

export interface FlagOption extends OptionCommon {
  type: "boolean";
  default: boolean;
  /** For a flag that is on by default: what --no-NAME does, in a few words. */
  negated?: string;
}

export interface StringOption extends OptionCommon {
  type: "string";
  default?: string;
  /** The command cannot run without it (`ext build -o FILE`). */
  required?: boolean;
  choices?: readonly string[];
  /** An empty value means something (`--cmdline ""`: a command line with nothing on it). */
  empty?: boolean;
  /** The value's name in the man page: DIR, FILE. */
  value?: string;
  completes?: Completes;
}

export interface NumberOption extends OptionCommon {
  type: "number";
  /** Whole numbers in [min, max]; anything else is a usage error (options.ts). */
  min: number;
  max: number;
  /** What a value means, for the error message: "0 shows every match". */
  meaning?: string;
  value?: string;
  completes?: Completes;
}

export type OptionDescriptor = FlagOption | StringOption | NumberOption;
export type OptionDescriptors = { readonly [name: string]: OptionDescriptor };

export interface PositionalDescriptor {
  name: string;
  describe?: string;
  required: boolean;
  /** Takes any number of words (`ext add A B C`); the value is a list, empty when none is given. */
  variadic?: boolean;
  choices?: readonly string[];
  completes?: Completes;
}

export interface Example {
  /** The command line; `$0` is the program's name. */
  command: string;
  meaning: string;
}

/** What ext is made of, for a command that describes ext itself (completion): the runner passes it. */
export interface CommandTable {
  commands: readonly Command[];
  globals: OptionDescriptors;
  builtins: OptionDescriptors;
}

/** Whether the human output is what was asked for (a listing, a script, a plan: printed even with
 *  --quiet) or a report of what was done ("generation 3 is active": left out by --quiet). */
export type OutputKind = "answer" | "report";

// The typed arguments a command's run receives, computed from its positionals and options: an
// option `dry-run` becomes `dryRun`, a flag is a boolean, a number option a number, a string with
// choices one of them; a value that may be absent is an optional key (absent, never undefined).
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type Choice<D> = D extends { choices: readonly (infer C)[] } ? C : string;
type OptionValue<O> = O extends FlagOption ? boolean : O extends NumberOption ? number : Choice<O>;
type OptionAlways<O> = O extends FlagOption ? true : O extends { required: true } | { default: string } ? true : false;
type PositionalValue<P> = P extends { variadic: true } ? Choice<P>[] : Choice<P>;
type PositionalAlways<P> = P extends { required: true } | { variadic: true } ? true : false;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

export type OptionArgs<O extends OptionDescriptors> = Simplify<
  { [K in keyof O as OptionAlways<O[K]> extends true ? Camel<K & string> : never]: OptionValue<O[K]> } &
  { [K in keyof O as OptionAlways<O[K]> extends true ? never : Camel<K & string>]?: OptionValue<O[K]> }
>;

export type ArgsOf<P extends readonly PositionalDescriptor[], O extends OptionDescriptors> = Simplify<
  { [E in P[number] as PositionalAlways<E> extends true ? E["name"] : never]: PositionalValue<E> } &
  { [E in P[number] as PositionalAlways<E> extends true ? never : E["name"]]?: PositionalValue<E> } &
  OptionArgs<O>
>;

export interface CommandDescriptor<P extends readonly PositionalDescriptor[], O extends OptionDescriptors, M, R> {
  name: string;
  /** Other names the parser accepts. */
  aliases?: readonly string[];
  /** One line: --help's command list, the completion's description, the man page. */
  summary: string;
  /** Left out of --help, completion and the man page (what the completion scripts call). */
  hidden?: boolean;
  positionals?: P;
  options?: O;
  examples: readonly Example[];
  output: OutputKind | ((args: ArgsOf<P, O>) => OutputKind);
  /** The command's module, imported only when it runs. */
  load: () => Promise<M>;
  run: (m: M, ctx: CommandContext, args: ArgsOf<P, O>, table: CommandTable) => Promise<R> | R;
  /** The lines printed for people (without --json). */
  human: (m: M, result: R) => string[];
  /** The document printed with --json (default: the result itself); schemas/cli/<schema>.json. */
  json?: (m: M, result: R) => unknown;
  schema?: string;
  /** The exit code when it depends on the result (doctor: 1 when a finding is an error). */
  exitCode?: (m: M, result: R) => number;
}

/** A descriptor as the list holds it: every command's types erased to one shape. Only main.ts calls
 *  these, with the module from `load` and the arguments the parser made from the same descriptor. */
export interface Command {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly summary: string;
  readonly hidden: boolean;
  readonly positionals: readonly PositionalDescriptor[];
  readonly options: OptionDescriptors;
  readonly examples: readonly Example[];
  readonly schema: string | undefined;
  outputKind(args: Record<string, unknown>): OutputKind;
  load(): Promise<unknown>;
  run(m: unknown, ctx: CommandContext, args: Record<string, unknown>, table: CommandTable): Promise<unknown> | unknown;
  human(m: unknown, result: unknown): string[];
  json(m: unknown, result: unknown): unknown;
  exitCode(m: unknown, result: unknown): number | undefined;
}

/** Checks a descriptor's types (run gets exactly the arguments its positionals and options make)
 *  and erases them for the list. */
export function defineCommand<const P extends readonly PositionalDescriptor[] = [], const O extends OptionDescriptors = {}, M = unknown, R = unknown>(
  d: CommandDescriptor<P, O, M, R>,
): Command {
  type A = ArgsOf<P, O>;
  const output = d.output;
  return {
    name: d.name,
    aliases: d.aliases ?? [],
    summary: d.summary,
    hidden: d.hidden ?? false,
    positionals: d.positionals ?? [],
    options: d.options ?? {},
    examples: d.examples,
    schema: d.schema,
    outputKind: (args) => (typeof output === "function" ? output(args as A) : output),
    load: d.load,
    run: (m, ctx, args, table) => d.run(m as M, ctx, args as A, table),
    human: (m, r) => d.human(m as M, r as R),
    json: (m, r) => (d.json ? d.json(m as M, r as R) : r),
    exitCode: (m, r) => d.exitCode?.(m as M, r as R),
  };
}

/** The key a command's run finds an option under: `dry-run` → `dryRun`. */
export function argKey(option: string): string {
  return option.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The form a person types for an option: `--no-wait` for a flag that is on by default. */
export function optionForms(name: string, o: OptionDescriptor): { long: string; short?: string; describe: string } {
  if (o.type === "boolean" && o.default) return { long: `no-${name}`, describe: o.negated ?? `do not: ${o.describe}` };
  return { long: name, ...(o.short ? { short: o.short } : {}), describe: o.describe };
}
