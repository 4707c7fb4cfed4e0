import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { resolve } from "node:path";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ExitCode, isExtError, UsageError } from "../errors.js";
import { layout, DEFAULT_EXTENSION_NAME, DEFAULT_SOURCE, type CommandContext } from "./context.js";
import { streamReporter } from "./reporters.js";
import { silentReporter } from "./reporter.js";
import { systemdArchitecture } from "../image/index.js";
import { nixSystem, validateFlakeRef } from "../nix/index.js";
import { add, formatAdd } from "./commands/add.js";
import { remove, formatRemove } from "./commands/remove.js";
import { rollback, formatRollback } from "./commands/rollback.js";
import { list, formatList } from "./commands/list.js";
import { generations, formatGenerations } from "./commands/generations.js";
import { gc, formatGc } from "./commands/gc.js";
import { status, formatStatus } from "./commands/status.js";
import { build, formatBuild } from "./commands/build.js";

// The one boundary: parse arguments, build the context, run a command, print its result, and turn
// errors into messages and exit codes. User errors never show a stack trace; bugs always do.

interface GlobalArgs {
  root: string;
  source?: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  wait: boolean;
  name: string;
  compression: string;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")) as { version: string };
  return pkg.version;
}

function makeContext(args: GlobalArgs, argv: string[]): CommandContext {
  const color = !args.json && !process.env["NO_COLOR"] && process.stderr.isTTY === true;
  const reporter = args.json ? silentReporter : streamReporter({ quiet: args.quiet, verbose: args.verbose, color });
  const source = validateFlakeRef(args.source ?? process.env["EXT_SOURCE"] ?? DEFAULT_SOURCE);
  return {
    layout: layout(resolve(args.root)),
    source,
    json: args.json,
    wait: args.wait,
    extensionName: args.name,
    compression: args.compression,
    architecture: systemdArchitecture(),
    nix: { store: { root: "/" }, system: nixSystem(), onLog: (line) => reporter.debug(line) },
    reporter,
    argv,
    print: (line) => process.stdout.write(line + "\n"),
  };
}

type Handler<R> = (ctx: CommandContext, args: Record<string, unknown>) => Promise<R>;

/** Runs one command and prints its result: JSON document or human lines. */
function action<R>(fn: Handler<R>, format: (r: R) => string[]) {
  return async (args: GlobalArgs & Record<string, unknown>) => {
    const ctx = makeContext(args, hideBin(process.argv));
    const result = await fn(ctx, args);
    if (ctx.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    else for (const line of format(result)) ctx.print(line);
  };
}

export function parser(argv: string[]): Argv<GlobalArgs> {
  return yargs(argv)
    .scriptName("ext")
    .usage("$0 <command> [options]\n\nAdd command-line tools from nixpkgs to an image-based system as a systemd-sysext image.")
    .option("root", { type: "string", default: "/", describe: "operate on the system under this directory", global: true })
    .option("source", { type: "string", describe: "flake reference packages come from (default: nixpkgs, or $EXT_SOURCE)", global: true })
    .option("json", { type: "boolean", default: false, describe: "print one JSON document on stdout and nothing else", global: true })
    .option("quiet", { alias: "q", type: "boolean", default: false, describe: "print only warnings and errors", global: true })
    .option("verbose", { alias: "v", type: "boolean", default: false, describe: "show underlying commands and causes", global: true })
    .option("wait", { type: "boolean", default: true, describe: "wait for another running ext (--no-wait fails at once)", global: true })
    .option("name", { type: "string", default: DEFAULT_EXTENSION_NAME, describe: "extension name (image file <name>.raw)", global: true })
    .option("compression", { type: "string", default: "lz4hc", describe: "image compression: none, lz4, lz4hc[,level], or what mkfs.erofs offers", global: true })
    .command("build <packages..>", "build an image without installing it (no root needed)",
      (y) => y.positional("packages", { type: "string", array: true, demandOption: true })
        .option("output", { alias: "o", type: "string", demandOption: true, describe: "image file to write (NAME.raw)" })
        .example("$0 build --source path:./test/fixtures ripgrep jq -o ext.raw", "image with ripgrep and jq"),
      action((ctx, a) => build(ctx, { packages: a["packages"] as string[], output: a["output"] as string }), formatBuild))
    .command("add <packages..>", "install packages (one new generation)",
      (y) => y.positional("packages", { type: "string", array: true, demandOption: true, describe: "NAME or NAME=ATTR" })
        .option("allow-shadow", { type: "boolean", default: false, describe: "let these packages shadow files of the host's /usr" })
        .option("priority", { type: "number", describe: "wins file collisions against lower priorities" })
        .example("$0 add ripgrep jq", "install two tools"),
      action((ctx, a) => add(ctx, {
        packages: a["packages"] as string[],
        allowShadow: a["allowShadow"] as boolean,
        ...(a["priority"] !== undefined ? { priority: a["priority"] as number } : {}),
      }), formatAdd))
    .command("remove <packages..>", "uninstall packages (one new generation)",
      (y) => y.positional("packages", { type: "string", array: true, demandOption: true }).example("$0 remove jq", ""),
      action((ctx, a) => remove(ctx, { packages: a["packages"] as string[] }), formatRemove))
    .command("list", "installed packages", (y) => y.example("$0 list --json", ""), action((ctx) => list(ctx), formatList))
    .command("generations", "history of extension sets", (y) => y, action((ctx) => generations(ctx), formatGenerations))
    .command("rollback", "switch to the previous generation (or --to N) without rebuilding",
      (y) => y.option("to", { type: "number", describe: "generation to switch to" }).example("$0 rollback --to 3", ""),
      action((ctx, a) => rollback(ctx, a["to"] === undefined ? {} : { to: a["to"] as number }), formatRollback))
    .command("gc", "delete images no kept generation uses",
      (y) => y.option("keep", { type: "number", describe: "keep the current and the newest N other generations" }),
      action((ctx, a) => gc(ctx, a["keep"] === undefined ? {} : { keep: a["keep"] as number }), formatGc))
    .command("status", "active generation, merged or not, image", (y) => y, action((ctx) => status(ctx), formatStatus))
    .demandCommand(1, "name a command: see 'ext --help'")
    .strict()
    .version(version())
    .help()
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    }) as unknown as Argv<GlobalArgs>;
}

export async function main(argv = hideBin(process.argv)): Promise<number> {
  const json = argv.includes("--json");
  const verbose = argv.includes("--verbose") || argv.includes("-v");
  try {
    await parser(argv).parseAsync();
    return ExitCode.ok;
  } catch (e) {
    return report(e, { json, verbose });
  }
}

function report(e: unknown, opts: { json: boolean; verbose: boolean }): number {
  if (isExtError(e)) {
    if (opts.json) {
      process.stdout.write(JSON.stringify({ error: { code: e.code, message: e.message, hint: e.hint ?? null, details: e.details ?? null } }, null, 2) + "\n");
    }
    const lines = [`ext: ${e.message}`];
    if (e.details) lines.push(e.details.split("\n").map((l) => `  ${l}`).join("\n"));
    if (e.hint) lines.push(`hint: ${e.hint}`);
    if (opts.verbose) {
      let cause = e.cause;
      while (cause !== undefined) {
        lines.push(`caused by: ${cause instanceof Error ? cause.message : String(cause)}`);
        cause = cause instanceof Error ? cause.cause : undefined;
      }
    }
    process.stderr.write(lines.join("\n") + "\n");
    return e.exitCode;
  }
  process.stderr.write(`ext: internal error — this is a bug, please report it with the output below\n${e instanceof Error ? e.stack : String(e)}\n`);
  return ExitCode.internal;
}
