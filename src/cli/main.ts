import yargs, { type Argv } from "yargs";
import { readLabelSetting, resolveLabels } from "../image/selinux.js";
import { hideBin } from "yargs/helpers";
import { resolve } from "node:path";
import { readFileSync } from "node:fs";
import { packagePath } from "../paths.js";
import { ExitCode, ExtError, PermissionError, errnoCode, isExtError, UsageError } from "../errors.js";
import { layout, DEFAULT_COMPRESSION, DEFAULT_EXTENSION_NAME, DEFAULT_SOURCE, type CommandContext } from "./context.js";
import { createReporter } from "./reporters.js";
import { observeCommands } from "../exec-observer.js";
import { systemdArchitecture } from "../image/names.js";
import { nixSystem } from "../nix/system.js";
import { validateFlakeRef } from "../nix/validate.js";
import { chooseStore, readStoreSetting } from "../store/choose.js";
import { output } from "./streams.js";
import { suggestCommand, suggestOption, unknownOption } from "./suggest-command.js";
import { checkSwallowedWords, optionError, singleString, wholeNumber } from "./options.js";

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
  store?: string;
  selinuxContexts?: string;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(packagePath("package.json"), "utf8")) as { version: string };
  return pkg.version;
}

/** A value computed on first use, then kept. */
function once<T>(fn: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = fn();
      done = true;
    }
    return value;
  };
}

function makeContext(args: GlobalArgs, argv: string[]): CommandContext {
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
    labels: once(() => resolveLabels(readLabelSetting(args.selinuxContexts), where.root)),
    architecture: systemdArchitecture(),
    nix: { store, env: store.env, system: nixSystem(), onLog: (line) => reporter.nixLog(line) },
    reporter,
    argv,
    print: (line) => output().stdout.write(line + "\n"),
  };
}

/** Commands whose output is what was asked for (a listing, a script, a plan), printed even with
 *  --quiet; the others report what they did ("generation 3 is active"), which --quiet leaves out:
 *  it means warnings and errors only. */
const DATA_COMMANDS = new Set(["list", "search", "show", "generations", "status", "diff", "doctor", "completion", "__complete"]);

function resultIsData(command: string | undefined, args: Record<string, unknown>): boolean {
  if (command === undefined) return false;
  if (DATA_COMMANDS.has(command)) return true;
  // Without FILE, export writes the tools.json to stdout; --dry-run prints the plan it was asked for.
  if (command === "export") return args["file"] === undefined;
  if (command === "apply" || command === "upgrade") return args["dryRun"] === true;
  return false;
}

type Handler<M, R> = (m: M, ctx: CommandContext, args: Record<string, unknown>) => Promise<R>;

/** Set by a command whose result decides the exit code (doctor); read by main(). */
let resultExitCode: number = ExitCode.ok;

/** Runs one command and prints its result: JSON document or human lines. The command's module is
 *  loaded only when it runs, so start-up costs yargs and the context, not every command's libraries. */
function action<M, R>(load: () => Promise<M>, fn: Handler<M, R>, format: (m: M, r: R) => string[], exitCodeOf?: (m: M, r: R) => number) {
  return async (args: GlobalArgs & Record<string, unknown>) => {
    const ctx = makeContext(args, hideBin(process.argv));
    let result: R;
    let m: M;
    try {
      m = await load();
      result = await fn(m, ctx, args);
    } catch (e) {
      // Settle the progress line before the error is printed under it.
      ctx.reporter.end?.(false);
      throw e;
    }
    ctx.reporter.end?.(true);
    if (ctx.json) output().stdout.write(JSON.stringify(result, null, 2) + "\n");
    else if (!args.quiet || resultIsData(commandOf(ctx.argv), args)) for (const line of format(m, result)) ctx.print(line);
    if (exitCodeOf) resultExitCode = exitCodeOf(m, result);
  };
}

export function parser(argv: string[]): Argv<GlobalArgs> {
  const cli = yargs(argv)
    .scriptName("ext")
    .usage("$0 <command> [options]\n\nAdd command-line tools from nixpkgs to an image-based system as a systemd-sysext image.")
    .option("root", { type: "string", default: "/", coerce: singleString("root", argv), describe: "operate on the system under this directory", global: true })
    .option("source", { type: "string", coerce: singleString("source", argv), describe: "flake reference packages come from (default: nixpkgs, or $EXT_SOURCE)", global: true })
    .option("json", { type: "boolean", default: false, describe: "print one JSON document on stdout and nothing else", global: true })
    .option("quiet", { alias: "q", type: "boolean", default: false, describe: "print only warnings and errors", global: true })
    .option("verbose", { alias: "v", type: "boolean", default: false, describe: "show underlying commands and causes", global: true })
    .option("wait", { type: "boolean", default: true, describe: "wait for another running ext (--no-wait fails at once)", global: true })
    .option("name", { type: "string", default: DEFAULT_EXTENSION_NAME, coerce: singleString("name", argv), describe: "extension name (image file <name>.raw)", global: true })
    .option("compression", { type: "string", default: DEFAULT_COMPRESSION, coerce: singleString("compression", argv), describe: "image compression: none, lz4, lz4hc[,level], or what mkfs.erofs offers", global: true })
    .option("selinux-contexts", { type: "string", coerce: singleString("selinux-contexts", argv), describe: "SELinux labels for images: auto (the host's policy when it uses SELinux), none, or a file_contexts FILE (images for other machines)", global: true })
    .option("store", { type: "string", coerce: singleString("store", argv), describe: "Nix store: auto, system, or DIR for a private store under DIR/nix/store (default: auto, or $EXT_STORE)", global: true })
    .command("build [packages..]", "build an image without installing it (no root needed)",
      (y) => y.positional("packages", { type: "string", array: true })
        .option("output", { alias: "o", type: "string", demandOption: true, coerce: singleString("output", argv, "build", { alias: "o" }), describe: "image file to write (NAME.raw)" })
        .option("manifest", { alias: "m", type: "string", coerce: singleString("manifest", argv, "build", { alias: "m" }), describe: "build what this tools.json and its lock say (instead of packages)" })
        .option("allow-unfree", { type: "boolean", default: false, describe: "let nixpkgs evaluate these packages although their license is unfree" })
        .check((a) => {
          const n = ((a["packages"] as string[] | undefined) ?? []).length;
          if (n === 0 && a["manifest"] === undefined) throw new UsageError("'ext build' needs packages or --manifest tools.json");
          if (n > 0 && a["manifest"] !== undefined) throw new UsageError("'ext build' takes packages or --manifest, not both");
          return true;
        })
        .example("$0 build --manifest tools.json -o ext.raw", "the image of a tools.json as its lock pins it")
        .example("$0 build ripgrep jq -o ext.raw", "an image with ripgrep and jq in ./ext.raw")
        .example("$0 build --source path:$PWD/test/fixtures ripgrep -o ext.raw", "from a local flake instead of nixpkgs")
        .example("$0 build ripgrep -o ext.raw && cp ext.raw /var/lib/extensions/ && systemd-sysext refresh", "install it by hand"),
      action(() => import("./commands/build.js"), (m, ctx, a) => m.build(ctx, {
        packages: (a["packages"] as string[] | undefined) ?? [],
        output: a["output"] as string,
        allowUnfree: a["allowUnfree"] as boolean,
        ...(a["manifest"] !== undefined ? { manifest: a["manifest"] as string } : {}),
      }), (m, r) => m.formatBuild(r)))
    .command("publish <manifest> <release>", "build a tools.json's image for machines to fetch: DIR/NAME_VERSION.raw, SHA256SUMS, its signature (no root)",
      (y) => y.positional("manifest", { type: "string", demandOption: true, describe: "tools.json (its lock beside it is honoured)" })
        .option("output", { alias: "o", type: "string", demandOption: true, coerce: singleString("output", argv, "publish", { alias: "o" }), describe: "the directory a web server serves" })
        .positional("release", { type: "string", demandOption: true, describe: "the version machines compare (e.g. 2026.12.01, or CI's pipeline number)" })
        .option("sign-key", { type: "string", coerce: singleString("sign-key", argv, "publish"), describe: "gpg key that signs SHA256SUMS (SHA256SUMS.gpg); $GNUPGHOME picks the keyring" })
        .option("cache", { type: "string", coerce: singleString("cache", argv, "publish"), describe: "also copy the closure to this Nix binary cache (file:///…, s3://…)" })
        .option("cache-key", { type: "string", coerce: singleString("cache-key", argv, "publish"), describe: "Nix secret key (nix key generate-secret) that signs the paths in --cache" })
        .example("$0 publish tools.json 42 -o public/ --sign-key fleet@example.org", "what CI runs (docs/fleet.md)")
        .example("$0 publish tools.json 42 -o public/ --cache file:///srv/nix-cache --cache-key cache.sec", "and a binary cache for machines that build"),
      action(() => import("./commands/publish.js"), (m, ctx, a) => m.publish(ctx, {
        manifest: String(a["manifest"]),
        dir: a["output"] as string,
        version: String(a["release"]),
        ...(a["signKey"] !== undefined ? { signKey: a["signKey"] as string } : {}),
        ...(a["cache"] !== undefined ? { cache: a["cache"] as string } : {}),
        ...(a["cacheKey"] !== undefined ? { cacheKey: a["cacheKey"] as string } : {}),
      }), (m, r) => m.formatPublish(r)))
    .command("subscribe [url]", "follow images published at URL: a sysupdate transfer, the signing key and a timer (docs/fleet.md)",
      (y) => y.positional("url", { type: "string", describe: "http(s) URL of the published directory" })
        .option("key", { type: "string", coerce: singleString("key", argv, "subscribe"), describe: "the public key that signs SHA256SUMS (armored or binary)" })
        .option("manifest", { alias: "m", type: "string", coerce: singleString("manifest", argv, "subscribe", { alias: "m" }), describe: "take url, key and schedule from this tools.json's \"subscription\"" })
        .option("schedule", { type: "string", coerce: singleString("schedule", argv, "subscribe"), describe: "when ext-pull.timer checks (OnCalendar=, default daily)" })
        .option("ext-command", { type: "string", coerce: singleString("ext-command", argv, "subscribe"), describe: "how the unit runs ext (default: this node and this ext)" })
        .example("$0 subscribe https://updates.example/ext --key fleet.asc", "then 'sudo ext pull' or wait for the timer"),
      action(() => import("./commands/subscribe.js"), (m, ctx, a) => m.subscribe(ctx, {
        ...(a["url"] !== undefined ? { url: String(a["url"]) } : {}),
        ...(a["key"] !== undefined ? { key: a["key"] as string } : {}),
        ...(a["manifest"] !== undefined ? { manifest: a["manifest"] as string } : {}),
        ...(a["schedule"] !== undefined ? { schedule: a["schedule"] as string } : {}),
        ...(a["extCommand"] !== undefined ? { extCommand: a["extCommand"] as string } : {}),
      }), (m, r) => m.formatSubscribe(r)))
    .command("unsubscribe", "remove the subscription's transfer, key and timer (generations stay)",
      (y) => y.example("$0 unsubscribe", "stop following the published images"),
      action(() => import("./commands/subscribe.js"), (m, ctx) => m.unsubscribe(ctx), (m, r) => m.formatUnsubscribe(r)))
    .command("pull", "fetch and verify the newest published version and make it a generation",
      (y) => y.option("via", { type: "string", choices: ["auto", "sysupdate", "ext"], default: "auto", describe: "systemd-sysupdate, or ext's own verified pull (auto: sysupdate where the host has it)" })
        .example("$0 pull", "what ext-pull.timer runs"),
      action(() => import("./commands/subscribe.js"), (m, ctx, a) => m.pull(ctx, { via: a["via"] as "auto" | "sysupdate" | "ext" }), (m, r) => m.formatPull(r)))
    .command("add <packages..>", "install packages (one new generation)",
      (y) => y.positional("packages", { type: "string", array: true, demandOption: true, describe: "NAME or NAME=ATTR" })
        .option("allow-shadow", { type: "boolean", default: false, describe: "let these packages shadow files of the host's /usr" })
        .option("allow-unfree", { type: "boolean", default: false, describe: "let nixpkgs evaluate these packages although their license is unfree" })
        .option("priority", { type: "number", coerce: wholeNumber("priority", { min: -1_000_000, max: 1_000_000 }, argv, "add"), describe: "wins file collisions against lower priorities" })
        .example("$0 add ripgrep jq", "install two tools in one new generation")
        .example("$0 add rg=ripgrep", "install attribute ripgrep under the name rg")
        .example("$0 add python3Packages.requests", "a package inside a set")
        .example("$0 add --priority 10 busybox", "let busybox win collisions with files of other packages")
        .example("$0 add jq --json", "the result as JSON (schemas/cli/transaction.json)"),
      action(() => import("./commands/add.js"), (m, ctx, a) => m.add(ctx, {
        packages: a["packages"] as string[],
        allowShadow: a["allowShadow"] as boolean,
        allowUnfree: a["allowUnfree"] as boolean,
        ...(a["priority"] !== undefined ? { priority: a["priority"] as number } : {}),
      }), (m, r) => m.formatAdd(r)))
    .command("remove <packages..>", "uninstall packages (one new generation)",
      (y) => y.positional("packages", { type: "string", array: true, demandOption: true, describe: "installed names (see 'ext list')" })
        .example("$0 remove jq", "uninstall jq (one new generation)")
        .example("$0 remove jq ripgrep", "uninstall two at once"),
      action(() => import("./commands/remove.js"), (m, ctx, a) => m.remove(ctx, { packages: a["packages"] as string[] }), (m, r) => m.formatRemove(r)))
    .command("list", "installed packages",
      (y) => y.example("$0 list", "name, version and description of each installed package")
        .example("$0 list --json", "with attribute, source and store paths (schemas/cli/list.json)"),
      action(() => import("./commands/list.js"), (m, ctx, a) => m.list(ctx), (m, r) => m.formatList(r)))
    .command("search <query>", "find packages by name or description (through nix search)",
      (y) => y.positional("query", { type: "string", demandOption: true, describe: "text to look for (not a regular expression); '' lists everything" })
        .option("limit", { type: "number", coerce: wholeNumber("limit", { min: 0, max: Number.MAX_SAFE_INTEGER, meaning: "0 shows every match" }, argv, "search"), describe: "show at most N matches (0: all; default 30, all with --json)" })
        .example("$0 search ripgrep", "packages whose name or description contains 'ripgrep'")
        .example("$0 search 'json processor' --limit 5", "the five best matches")
        .example("$0 search --source github:NixOS/nixpkgs/nixos-24.11 jq", "search another nixpkgs")
        .example("$0 search jq --json", "every match as JSON (schemas/cli/search.json)"),
      action(() => import("./commands/search.js"), (m, ctx, a) => m.search(ctx, { query: String(a["query"] ?? ""), ...(a["limit"] === undefined ? {} : { limit: a["limit"] as number }) }), (m, r) => m.formatSearch(r)))
    .command("show <package>", "what a package would install: version, license, commands, closure size, installed or not",
      (y) => y.positional("package", { type: "string", demandOption: true, describe: "NAME or NAME=ATTR" })
        .option("build", { type: "boolean", default: true, describe: "build or fetch it to list its commands and closure (--no-build: metadata only)" })
        .example("$0 show ripgrep", "version, description, license, homepage, /usr/bin entries, closure size")
        .example("$0 show ripgrep --no-build", "metadata only, without building anything")
        .example("$0 show jq --json", "as JSON (schemas/cli/show.json)"),
      action(() => import("./commands/show.js"), (m, ctx, a) => m.show(ctx, { package: String(a["package"]), build: a["build"] !== false }), (m, r) => m.formatShow(r)))
    .command("generations", "history of extension sets",
      (y) => y.example("$0 generations", "each generation: date, packages, size, what changed")
        .example("$0 generations --json", "as JSON (schemas/cli/generations.json)"),
      action(() => import("./commands/generations.js"), (m, ctx, a) => m.generations(ctx), (m, r) => m.formatGenerations(r)))
    .command("rollback", "switch to the previous generation (or --to N) without rebuilding",
      (y) => y.option("to", { type: "number", coerce: wholeNumber("to", { min: 1, max: Number.MAX_SAFE_INTEGER, meaning: "a generation id, see 'ext generations'" }, argv, "rollback"), describe: "generation to switch to" })
        .example("$0 rollback", "back to the generation before the current one")
        .example("$0 rollback --to 3", "switch to generation 3 (see 'ext generations')"),
      action(() => import("./commands/rollback.js"), (m, ctx, a) => m.rollback(ctx, a["to"] === undefined ? {} : { to: a["to"] as number }), (m, r) => m.formatRollback(r)))
    .command("gc", "delete images no kept generation uses",
      (y) => y.option("keep", { type: "number", coerce: wholeNumber("keep", { min: 0, max: Number.MAX_SAFE_INTEGER }, argv, "gc"), describe: "keep the current and the newest N other generations" })
        .example("$0 gc", "delete images that no generation uses")
        .example("$0 gc --keep 2", "also forget all but the current and the two newest other generations"),
      action(() => import("./commands/gc.js"), (m, ctx, a) => m.gc(ctx, a["keep"] === undefined ? {} : { keep: a["keep"] as number }), (m, r) => m.formatGc(r)))
    .command("status", "active generation, merged or not, image",
      (y) => y.example("$0 status", "current generation, its image, linked and merged or not")
        .example("$0 --root /mnt/sysroot status", "the state of another system"),
      action(() => import("./commands/status.js"), (m, ctx, a) => m.status(ctx), (m, r) => m.formatStatus(r)))
    .command("apply [file]", "make the active set exactly what a tools.json says (one generation); tracks the file",
      (y) => y.positional("file", { type: "string", describe: "tools.json (default: the tracked one)" })
        .option("dry-run", { alias: "n", type: "boolean", default: false, describe: "only show what would change; nothing is built or changed" })
        .option("track", { type: "boolean", default: true, describe: "track FILE so ext add/remove keep it up to date (--no-track: leave tracking as it is)" })
        .example("$0 apply ~/dotfiles/tools.json", "install exactly what the file lists; its lock is written beside it")
        .example("$0 apply --dry-run", "what applying the tracked file would change (docs/tools-json.md)"),
      action(() => import("./commands/apply.js"), (m, ctx, a) => m.apply(ctx, {
        ...(a["file"] !== undefined ? { file: a["file"] as string } : {}),
        dryRun: a["dryRun"] as boolean,
        track: a["track"] as boolean,
      }), (m, r) => m.formatApply(r)))
    .command("diff [file]", "what 'ext apply' would change: added, removed, versions, closure size",
      (y) => y.positional("file", { type: "string", describe: "tools.json (default: the tracked one)" })
        .example("$0 diff ~/dotfiles/tools.json", "nothing is built or changed"),
      action(() => import("./commands/diff.js"), (m, ctx, a) => m.diff(ctx, a["file"] !== undefined ? { file: a["file"] as string } : {}), (m, r) => m.formatDiff(r)))
    .command("export [file]", "write the active set as a tools.json and its lock (to stdout without FILE)",
      (y) => y.positional("file", { type: "string", describe: "tools.json to write or update in place" })
        .option("track", { type: "boolean", default: false, describe: "track FILE afterwards, as 'ext apply FILE' would" })
        .option("force", { type: "boolean", default: false, describe: "replace FILE even when it is not a valid tools.json" })
        .example("$0 export ~/dotfiles/tools.json", "the active set, with tools.lock.json beside it"),
      action(() => import("./commands/export.js"), (m, ctx, a) => m.exportSet(ctx, {
        ...(a["file"] !== undefined ? { file: a["file"] as string } : {}),
        track: a["track"] as boolean,
        force: a["force"] as boolean,
      }), (m, r) => m.formatExport(r)))
    .command("upgrade [packages..]", "pin sources to their newest revision, show the version changes, apply them",
      (y) => y.positional("packages", { type: "string", array: true, describe: "only these packages (default: all)" })
        .option("dry-run", { alias: "n", type: "boolean", default: false, describe: "only show what would change" })
        .example("$0 upgrade --dry-run", "newer versions, without changing anything")
        .example("$0 upgrade ripgrep", "only ripgrep (and its source's pin)"),
      action(() => import("./commands/upgrade.js"), (m, ctx, a) => m.upgrade(ctx, { packages: (a["packages"] as string[] | undefined) ?? [], dryRun: a["dryRun"] as boolean }), (m, r) => m.formatUpgrade(r)))
    .command("untrack", "stop keeping the tracked tools.json up to date (the file is left as it is)",
      (y) => y.example("$0 untrack", "ext add/remove no longer update the tracked tools.json"),
      action(() => import("./commands/apply.js"), (m, ctx, a) => m.untrack(ctx), (m, r) => m.formatUntrack(r)))
    .command("doctor", "check the host and say how to fix what is wrong",
      (y) => y.example("$0 doctor", "systemd-sysext, kernel, nix, mkfs.erofs, space, /usr/store, state, units")
        .example("$0 doctor --json", "findings as JSON (schemas/cli/doctor.json); exit code 1 when one is an error"),
      action(() => import("./commands/doctor.js"), (m, ctx, a) => m.doctor(ctx), (m, r) => m.formatDoctor(r), (m, r) => m.doctorExitCode(r)))
    .command("completion <shell>", "print a completion script for bash, zsh or fish",
      (y) => y.positional("shell", { type: "string", choices: ["bash", "zsh", "fish"], demandOption: true })
        .example("source <($0 completion bash)", "bash, for this shell (add it to ~/.bashrc)")
        .example("$0 completion zsh > \"${fpath[1]}/_ext\"", "zsh")
        .example("$0 completion fish > ~/.config/fish/completions/ext.fish", "fish"),
      action(() => import("./commands/completion.js"), async (m, ctx, a) => m.completion(ctx, { shell: String(a["shell"]), spec: await m.cliSpec(parser as (argv: string[]) => Argv<unknown>) }), (m, r) => m.formatCompletion(r)))
    // Hidden: what the completion scripts ask for (installed names, generation ids), one a line.
    .command("__complete <what>", false,
      (y) => y.positional("what", { type: "string", choices: ["installed", "generations"], demandOption: true }),
      action(() => import("./commands/completion.js"), (m, ctx, a) => m.completeNames(ctx, String(a["what"])), (_m, names) => names))
    .command("setup", "install the boot units: choose a good extension set at boot, revert a failing one",
      (y) => y.option("boot-tries", { type: "number", coerce: wholeNumber("boot-tries", { min: 1, max: 100 }, argv, "setup"), describe: "boots a newly activated generation gets before ext goes back to the last good one (default 3)" })
        .option("ext-command", { type: "string", coerce: singleString("ext-command", argv, "setup"), describe: "how the units run ext on the target system (default: this node and this ext)" })
        .option("remove", { type: "boolean", default: false, describe: "disable and remove the boot units" })
        .example("$0 setup", "install and enable ext-boot-select.service and ext-boot-bless.service")
        .example("$0 setup --boot-tries 2", "a new generation gets two boots to be blessed"),
      action(() => import("./commands/setup.js"), (m, ctx, a) => m.setup(ctx, {
        ...(a["bootTries"] !== undefined ? { bootTries: a["bootTries"] as number } : {}),
        ...(a["extCommand"] !== undefined ? { extCommand: a["extCommand"] as string } : {}),
        remove: a["remove"] as boolean,
      }), (m, r) => m.formatSetup(r)))
    .command("boot <step>", "run by the boot units: select this boot's set, or bless it once the boot is complete",
      (y) => y.positional("step", { type: "string", choices: ["select", "bless"] as const, demandOption: true })
        .option("cmdline", { type: "string", coerce: singleString("cmdline", argv, "boot", { empty: true }), describe: "kernel command line to obey instead of /proc/cmdline ($EXT_BOOT_CMDLINE)" })
        .option("boot-id", { type: "string", coerce: singleString("boot-id", argv, "boot"), describe: "boot id instead of the kernel's ($EXT_BOOT_ID)" })
        .example("$0 boot select", "what ext-boot-select.service runs before systemd-sysext.service")
        .example("$0 boot bless", "what ext-boot-bless.service runs once the boot is complete"),
      action(() => import("./commands/boot.js"), (m, ctx, a) => m.boot(ctx, {
        step: a["step"] as "select" | "bless",
        ...(a["cmdline"] !== undefined ? { cmdline: a["cmdline"] as string } : {}),
        ...(a["bootId"] !== undefined ? { bootId: a["bootId"] as string } : {}),
      }), (m, r) => m.formatBoot(r)))
    .demandCommand(1, "name a command")
    .strict()
    .version(version())
    .help()
    .wrap(Math.min(100, process.stdout.columns ?? 100));
  // Read now: while yargs runs a command's builder, its table holds that command's subcommands.
  const commands = commandNames(cli);
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
    }) as unknown as Argv<GlobalArgs>;
}

/** The options yargs knows at this point (the global ones and the running command's), aliases included. */
function optionNames(cli: unknown): string[] {
  const key = (cli as { getOptions?: () => { key?: Record<string, unknown> } }).getOptions?.().key ?? {};
  return Object.keys(key);
}

/** The commands the parser has, hidden ones (`__complete`) left out: what a suggestion may name. */
function commandNames(cli: unknown): string[] {
  const names = (cli as { getInternalMethods?: () => { getCommandInstance?: () => { getCommands?: () => string[] } } })
    .getInternalMethods?.().getCommandInstance?.().getCommands?.() ?? [];
  return names.filter((n) => !n.startsWith("__"));
}

/** The command word of argv: the first word that is neither an option nor a global option's value. */
function commandOf(argv: string[]): string | undefined {
  const takesValue = new Set(["--root", "--source", "--name", "--compression", "--store", "--selinux-contexts"]);
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
