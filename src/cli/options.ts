import { UsageError } from "../errors.js";

// Typed option values, checked where the command line is parsed: a bad value is a usage error (exit 2)
// that names the option, what it takes and what was given, before any command runs. yargs' own
// `type: "number"` turns `abc` into NaN and lets it through, and an option given twice becomes an
// array; both reached the commands as values they never expected (an internal error, exit 70).

/** yargs rethrows a coerce function's error as its own YError with the message alone; the boundary
 *  (main.ts .fail) takes the UsageError back, hint and exit code included, by its message. */
const thrown = new Map<string, UsageError>();

function refuse(message: string, hint: string): never {
  const e = new UsageError(message, { hint });
  thrown.set(message, e);
  throw e;
}

/** The UsageError an option check threw with this message, if one did. */
export function optionError(message: string): UsageError | undefined {
  return thrown.get(message);
}

export interface WholeNumberRule {
  min: number;
  max: number;
  /** What a value means, for the message: "0 shows every match". */
  meaning?: string;
}

/** The command line as typed, so a message can quote what was given: yargs has already made `abc`
 *  NaN by the time a coerce function sees it. */
export type RawArgs = readonly string[];

/** What was typed for `--name` (the last occurrence, as yargs keeps the last): `--name V` or `--name=V`. */
export function rawValue(argv: RawArgs, names: readonly string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "--") break;
    for (const n of names) {
      const flag = flagOf(n);
      if (a === flag) found = argv[i + 1];
      else if (a.startsWith(`${flag}=`)) found = a.slice(flag.length + 1);
    }
  }
  return found;
}

function range(rule: WholeNumberRule): string {
  if (rule.max === Number.MAX_SAFE_INTEGER) return `≥ ${rule.min}`;
  return `from ${rule.min} to ${rule.max}`;
}

/** The whole-number checks of the options declared so far, by option name. */
const numberChecks = new Map<string, (value: unknown) => number>();

/** yargs checks that a command has its positional arguments before it runs coerce functions, so
 *  `ext add --priority jq` (jq taken as the priority) would be "missing its argument". The boundary
 *  asks this first: a numeric option that swallowed a word is the real mistake. */
export function checkSwallowedWords(argv: RawArgs): void {
  for (const [option, check] of numberChecks) {
    const typed = rawValue(argv, [option]);
    if (typed !== undefined && !typed.startsWith("-")) check(Number(typed));
  }
}

/** A yargs `coerce` for a whole-number option: integers in the rule's range, given once. */
export function wholeNumber(option: string, rule: WholeNumberRule, argv: RawArgs, command: string) {
  const hint = `see 'ext ${command} --help'`;
  const check = (value: unknown): number => {
    if (Array.isArray(value)) refuse(`--${option} is given more than once`, `give it once; ${hint}`);
    const typed = rawValue(argv, [option]);
    // `--priority` last on the line, or followed by another option: no value was given.
    const given = typed === undefined || (typed.startsWith("-") && !/^-\d/.test(typed)) ? undefined : typed;
    const ok = typeof value === "number" && Number.isSafeInteger(value) && value >= rule.min && value <= rule.max
      // `1e3` and `0x10` are numbers to JavaScript, not to a person writing a count.
      && (given === undefined || /^[+-]?\d+$/.test(given.trim()));
    if (!ok) {
      const takes = `--${option} takes a whole number ${range(rule)}${rule.meaning ? ` (${rule.meaning})` : ""}`;
      refuse(given === undefined ? `${takes}, and none was given` : `${takes}; '${given}' is not one`, hint);
    }
    return value;
  };
  numberChecks.set(option, check);
  return check;
}

/** A yargs `coerce` for a string option that takes one value: given twice, or given without a value
 *  (`--root` at the end of the line: yargs then quietly uses the default), is a usage error instead
 *  of an array or a value nobody typed.
 *  `empty`: an empty value means something (`--cmdline ""`: a kernel command line with nothing on it). */
export function singleString(option: string, argv: RawArgs, command?: string, opts: { empty?: boolean; alias?: string } = {}) {
  const hint = command === undefined ? "see 'ext --help'" : `see 'ext ${command} --help'`;
  return (value: unknown): string => {
    if (Array.isArray(value)) refuse(`--${option} is given more than once`, `give it once; ${hint}`);
    const names = opts.alias === undefined ? [option] : [option, opts.alias];
    const present = argv.some((a) => names.some((n) => a === flagOf(n) || a.startsWith(`${flagOf(n)}=`)));
    const typed = rawValue(argv, names);
    const missing = present && (typed === undefined || (typed.startsWith("-") && typed !== "-" && !argv.includes(`${flagOf(option)}=${typed}`)));
    if (missing || typeof value !== "string" || (value === "" && !opts.empty)) refuse(`--${option} needs a value`, hint);
    return value as string;
  };
}

function flagOf(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}
