import yargs, { type Argv } from "yargs";
import { labelsOnFirstUse } from "../image/selinux.js";
import { hideBin } from "yargs/helpers";
import { resolve } from "node:path";
import { readFileSync } from "node:fs";
import { packagePath } from "../paths.js";
import { ExitCode, ExtError, PermissionError, errnoCode, isExtError, UsageError } from "../errors.js";
import { layout, DEFAULT_SOURCE, type CommandContext } from "./context.js";
import { createReporter } from "./reporters.js";
import { observeCommands } from "../exec-observer.js";
import { systemdArchitecture } from "../image/names.js";
import { nixSystem } from "../nix/system.js";
import { validateFlakeRef } from "../nix/validate.js";
import { chooseStore, readStoreSetting } from "../store/choose.js";
import { output } from "./streams.js";
import { appendImagesFromEnvironment, bootFromEnvironment, hooksFromEnvironment } from "./seams.js";
import { suggestCommand, suggestOption, unknownOption } from "./suggest-command.js";
import { checkSwallowedWords, optionError, singleString, wholeNumber, type RawArgs } from "./options.js";
import { argKey, type Command, type OptionDescriptor, type OptionDescriptors } from "./command.js";
import { BUILTIN_OPTIONS, GLOBAL_OPTIONS, globalOptionsWithValue, type GlobalArgs } from "./global-options.js";
import { COMMANDS } from "./commands/index.js";
import { Elevated, ELEVATED_OPTION, PASS_ENV_OPTION } from "../elevate/elevated.js";
import { applyPassedEnvironment } from "../elevate/index.js";
import { resolvedGlobals } from "../elevate/request.js";

// The one boundary: parse arguments, build the context, run a command, print its result, and turn
// errors into messages and exit codes. User errors never show a stack trace; bugs always do.

function version(): string {
  const pkg = JSON.parse(readFileSync(packagePath("package.json"), "utf8")) as { version: string };
  return pkg.version;
}


/** The hidden options ext puts on the command line of its own root part (src/elevate/). */
type ElevationArgs = { elevated?: string; passEnv?: string };

function makeContext(args: GlobalArgs & ElevationArgs, typed: string[]): CommandContext {
  // A root part started by ext (src/elevate/): the environment its user's run passed on comes first,
  // and the record of the command line leaves out the two hidden options.
  applyPassedEnvironment(args.passEnv);
  const argv = withoutElevationOptions(typed);
  const color = !args.json && !process.env["NO_COLOR"] && process.stderr.isTTY === true;
  // --json: stdout is the document alone; stderr keeps warnings (and --verbose's commands), no progress.
  const reporter = createReporter({ quiet: args.quiet || args.json, verbose: args.verbose, color, mode: args.json ? "plain" : "auto", stream: output().stderr });
  // Every external command (exec.ts) feeds the progress display, and --verbose prints it.
  observeCommands(reporter);
  const source = validateFlakeRef(args.source ?? process.env["EXT_SOURCE"] ?? DEFAULT_SOURCE);
  const where = layout(resolve(args.root));
  // The system store, or a private (chroot) store where /nix cannot be used (src/store/).
  const store = chooseStore(readStoreSetting(args.store), where.stateDir);
  return {
    layout: where,
    source,
    json: args.json,
    wait: args.wait,
    extensionName: args.name,
    compression: args.compression,
    labels: labelsOnFirstUse(args.selinuxContexts, where.root),
    architecture: systemdArchitecture(),
    nix: { store, env: store.env, system: nixSystem(), onLog: (line) => reporter.nixLog(line) },
    reporter,
    argv,
    print: (line) => output().stdout.write(line + "\n"),
    hooks: hooksFromEnvironment(process.env),
    boot: bootFromEnvironment(process.env),
    appendImages: appendImagesFromEnvironment(process.env),
    globals: () => resolvedGlobals(args),
    ...(args.elevated !== undefined ? { elevatedBy: args.elevated } : {}),
  };
}

function withoutElevationOptions(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === ELEVATED_OPTION || a === PASS_ENV_OPTION) i++;
    else if (!a.startsWith(`${ELEVATED_OPTION}=`) && !a.startsWith(`${PASS_ENV_OPTION}=`)) out.push(a);
  }
  return out;
}

/** Set by a command whose result decides the exit code (doctor); read by main(). */
let resultExitCode: number = ExitCode.ok;

/** The arguments a command's run receives: its positionals and options under their keys
 *  (`dry-run` → `dryRun`), an absent value left out, a list positional [] when none was given. */
function commandArgs(command: Command, parsed: Record<string, unknown>): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const p of command.positionals) {
    const value = parsed[p.name] ?? (p.variadic ? [] : undefined);
    if (value !== undefined) args[p.name] = value;
  }
  for (const name of Object.keys(command.options)) {
    const value = parsed[argKey(name)];
    if (value !== undefined) args[argKey(name)] = value;
  }
  return args;
}

/** Runs one command and prints its result: JSON document or human lines. The command's module is
 *  loaded only when it runs, so start-up costs yargs and the context, not every command's libraries.
 *  --quiet leaves out a report of what was done, never the answer that was asked for. */
function action(command: Command) {
  return async (parsed: GlobalArgs & Record<string, unknown>) => {
    const ctx = makeContext(parsed, hideBin(process.argv));
    const args = commandArgs(command, parsed);
    let result: unknown;
    let m: unknown;
    try {
      m = await command.load();
      result = await command.run(m, ctx, args, { commands: COMMANDS, globals: GLOBAL_OPTIONS, builtins: BUILTIN_OPTIONS });
    } catch (e) {
      // The command ran again as root, which printed its result: only its exit code is left to pass on.
      if (e instanceof Elevated) {
        ctx.reporter.end?.(e.exitCode === 0);
        resultExitCode = e.exitCode;
        return;
      }
      // Settle the progress line before the error is printed under it.
      ctx.reporter.end?.(false);
      throw e;
    }
    ctx.reporter.end?.(true);
    if (ctx.json) output().stdout.write(JSON.stringify(command.json(m, result), null, 2) + "\n");
    else if (!parsed.quiet || command.outputKind(args) === "answer") for (const line of command.human(m, result)) ctx.print(line);
    const code = command.exitCode(m, result);
    if (code !== undefined) resultExitCode = code;
  };
}

/** One descriptor option as yargs takes it: typed, and checked by options.ts so a bad value is a
 *  usage error (exit 2) naming the option. `command` is undefined for a global option. */
function yargsOption(name: string, o: OptionDescriptor, argv: RawArgs, command: string | undefined, global: boolean) {
  const common = { describe: o.describe, ...(o.short ? { alias: o.short } : {}), ...(global ? { global: true } : {}) };
  switch (o.type) {
    case "boolean":
      return { ...common, type: "boolean" as const, default: o.default };
    case "number":
      return { ...common, type: "number" as const, coerce: wholeNumber(name, { min: o.min, max: o.max, ...(o.meaning ? { meaning: o.meaning } : {}) }, argv, command ?? "") };
    case "string":
      return {
        ...common,
        type: "string" as const,
        ...(o.default !== undefined ? { default: o.default } : {}),
        ...(o.required ? { demandOption: true } : {}),
        ...(o.choices ? { choices: [...o.choices] } : {}),
        coerce: singleString(name, argv, command, { ...(o.empty ? { empty: true } : {}), ...(o.short ? { alias: o.short } : {}) }),
      };
  }
}

function addOptions<T>(y: Argv<T>, table: OptionDescriptors, argv: RawArgs, command: string | undefined): Argv<T> {
  let out = y;
  for (const [name, o] of Object.entries(table)) out = out.option(name, yargsOption(name, o, argv, command, command === undefined));
  return out;
}

/** `add <packages..>`, `apply [file]`: the command as yargs declares it. */
function usageOf(c: Command): string {
  const words = c.positionals.map((p) => {
    const inner = `${p.name}${p.variadic ? ".." : ""}`;
    return p.required ? `<${inner}>` : `[${inner}]`;
  });
  return [c.name, ...words].join(" ");
}

function addCommand(cli: Argv<GlobalArgs>, c: Command, argv: RawArgs): Argv<GlobalArgs> {
  const builder = (y: Argv<GlobalArgs>) => {
    let b = y;
    for (const p of c.positionals) {
      b = b.positional(p.name, {
        type: "string",
        ...(p.variadic ? { array: true } : {}),
        ...(p.required ? { demandOption: true } : {}),
        ...(p.choices ? { choices: [...p.choices] } : {}),
        ...(p.describe ? { describe: p.describe } : {}),
      });
    }
    b = addOptions(b, c.options, argv, c.name);
    for (const e of c.examples) b = b.example(e.command, e.meaning);
    return b;
  };
  // A hidden command (`__complete`) is left out of --help.
  return cli.command({ command: [usageOf(c), ...c.aliases], describe: c.hidden ? false : c.summary, builder, handler: action(c) });
}

/** The parser, made from the global options and the command list (commands/index.ts). */
export function parser(argv: string[]): Argv<GlobalArgs> {
  const top = yargs(argv)
    .scriptName("ext")
    .usage("$0 <command> [options]\n\nAdd command-line tools from nixpkgs to an image-based system as a systemd-sysext image.");
  // The global options' types are GlobalArgs (global-options.ts); yargs cannot infer them from a table.
  let cli = addOptions(top, GLOBAL_OPTIONS, argv, undefined) as unknown as Argv<GlobalArgs>;
  // Hidden (not in GLOBAL_OPTIONS, so not in --help, completion or the man page): set by ext on the
  // command line of its own root part (src/elevate/).
  cli = cli
    .option("elevated", { type: "string", hidden: true, global: true, coerce: singleString("elevated", argv, undefined) })
    .option("pass-env", { type: "string", hidden: true, global: true, coerce: singleString("pass-env", argv, undefined) }) as unknown as Argv<GlobalArgs>;
  for (const c of COMMANDS) cli = addCommand(cli, c, argv);
  cli = cli
    .demandCommand(1, "name a command")
    .strict()
    .version("version", BUILTIN_OPTIONS.version.describe, version())
    .help("help", BUILTIN_OPTIONS.help.describe)
    .wrap(Math.min(100, process.stdout.columns ?? 100));
  // What a suggestion may name: the commands of the list, hidden ones (`__complete`) left out.
  const commands = COMMANDS.filter((c) => !c.hidden).flatMap((c) => [c.name, ...c.aliases]);
  return cli
    .fail((msg, err) => {
      if (err) throw optionError(err.message) ?? err;
      const command = commandOf(argv);
      const known = command !== undefined && commands.includes(command);
      if (command !== undefined && !known && /^Unknown arguments?: /.test(msg)) {
        // Only a command the parser has is ever named (ext install jq once said "see 'ext install --help'").
        const guess = suggestCommand(command, commands);
        throw new UsageError(`unknown command '${command}'`, {
          hint: guess === undefined ? "'ext --help' lists the commands" : `did you mean 'ext ${guess}'? ('ext --help' lists the commands)`,
        });
      }
      // `ext add --allow-unfre jq`: yargs takes jq as the unknown option's value and says the command
      // lacks its argument; `ext list --jsn`: "Unknown argument: jsn". The unknown option is the mistake.
      const options = optionNames(cli);
      const stray = unknownOption(argv, options);
      if (stray !== undefined && /^Unknown arguments?: |^Not enough non-option arguments|^name a command$/.test(msg)) {
        const guess = suggestOption(stray, options);
        const help = known ? `'ext ${command} --help'` : "'ext --help'";
        throw new UsageError(`unknown option --${stray}${known ? ` for 'ext ${command}'` : ""}`, {
          hint: guess === undefined ? `${help} lists the options` : `did you mean --${guess}? (${help} lists the options)`,
        });
      }
      if (/^Not enough non-option arguments/.test(msg)) checkSwallowedWords(argv);
      const text = known && /^Not enough non-option arguments/.test(msg) ? `'ext ${command}' is missing its argument` : msg;
      throw new UsageError(text, { hint: known ? `see 'ext ${command} --help' (it has examples)` : "see 'ext --help' for the commands and options" });
    });
}

/** The options yargs knows at this point (the global ones and the running command's), aliases included. */
function optionNames(cli: unknown): string[] {
  const key = (cli as { getOptions?: () => { key?: Record<string, unknown> } }).getOptions?.().key ?? {};
  return Object.keys(key);
}

/** The command word of argv: the first word that is neither an option nor a global option's value. */
function commandOf(argv: string[]): string | undefined {
  const takesValue = new Set([...globalOptionsWithValue(), ELEVATED_OPTION, PASS_ENV_OPTION]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (takesValue.has(a)) i++;
    else if (!a.startsWith("-")) return a;
  }
  return undefined;
}

/** Before running a command, yargs renders that command's whole help text and caches it, in case the
 *  command later fails validation; ext's .fail() never prints help, and the rendering (cliui,
 *  string-width) costs ~60 ms of CPU on every run, a quarter of `ext apply` with nothing to do
 *  (bench/). Help asked for with --help, or shown for a usage error, is rendered when it is needed. */
function skipHelpCache(cli: Argv<GlobalArgs>): void {
  const usage = (cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
    .getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === "function") usage.cacheHelpMessage = () => {};
}

export async function main(argv = hideBin(process.argv)): Promise<number> {
  const json = argv.includes("--json");
  const verbose = argv.includes("--verbose") || argv.includes("-v");
  resultExitCode = ExitCode.ok;
  // Guard stdout and stderr before anything is printed, yargs' --help included (src/cli/streams.ts).
  const { stdout } = output();
  let code: number;
  try {
    const cli = parser(argv);
    skipHelpCache(cli);
    await cli.parseAsync();
    code = resultExitCode;
  } catch (e) {
    code = report(e, { json, verbose });
  }
  // A reader that went away ends the output quietly; a write that failed otherwise (a full disk
  // behind `> file`) means the result is not where the user asked for it. Node reports a failed
  // write on the next tick, so look after one.
  await new Promise((r) => setImmediate(r));
  if (stdout.error && code === ExitCode.ok) {
    return report(new ExtError(`could not write the output: ${stdout.error.message}`, { hint: "check where stdout goes (a full disk, a closed terminal)", cause: stdout.error }), { json: false, verbose });
  }
  return code;
}

/** Errors of the environment rather than of ext (no permission, disk full, read-only file system)
 *  are the user's to fix: a message and a hint, not a stack trace. */
function asUserError(e: unknown): unknown {
  const code = errnoCode(e);
  if (isExtError(e) || code === undefined || !(e instanceof Error)) return e;
  const path = (e as NodeJS.ErrnoException).path;
  const where = path ? `: ${path}` : "";
  switch (code) {
    case "EACCES":
    case "EPERM":
      return new PermissionError(`permission denied${where}`, { hint: "changing the active extensions needs root: run it with sudo (or run0 / pkexec)", cause: e });
    case "ENOSPC":
      return new ExtError(`no space left on the device${where}`, { hint: "free some space; 'sudo ext gc --keep 1' deletes old images, 'ext doctor' shows where space is short", cause: e });
    case "EROFS":
      return new ExtError(`read-only file system${where}`, { hint: "ext writes under /var/lib/ext and /var/lib/extensions; on a test system use --root DIR on a writable directory", cause: e });
    default:
      return e;
  }
}

function report(raw: unknown, opts: { json: boolean; verbose: boolean }): number {
  const e = asUserError(raw);
  if (isExtError(e)) {
    // Every user error says what to do next; when the error itself cannot, --verbose shows more.
    const hint = e.hint ?? (opts.verbose ? null : "run it again with --verbose to see the commands ext ran and the causes");
    if (opts.json) {
      output().stdout.write(JSON.stringify({ error: { code: e.code, message: e.message, hint, details: e.details ?? null } }, null, 2) + "\n");
    }
    const lines = [`ext: ${e.message}`];
    if (e.details) lines.push(e.details.split("\n").map((l) => `  ${l}`).join("\n"));
    if (hint) lines.push(`hint: ${hint}`);
    if (opts.verbose) {
      let cause = e.cause;
      while (cause !== undefined) {
        lines.push(`caused by: ${cause instanceof Error ? cause.message : String(cause)}`);
        cause = cause instanceof Error ? cause.cause : undefined;
      }
    }
    output().stderr.write(lines.join("\n") + "\n");
    return e.exitCode;
  }
  output().stderr.write(`ext: internal error — this is a bug, please report it with the output below\n${e instanceof Error ? e.stack : String(e)}\n`);
  return ExitCode.internal;
}
