import { spawn } from "node:child_process";
import { closeSync, openSync, realpathSync } from "node:fs";
import { PermissionError, UsageError } from "../errors.js";
import { packagePath } from "../paths.js";
import { chooseElevator, type ElevationChoice, type ElevatorKind } from "./choose.js";
import { probeElevation } from "./probe.js";
import { elevatorArgv, onlyRootWrites, passedEnvironment, PASSED_ENV_NAMES } from "./request.js";
import { Elevated, ELEVATED_OPTION, PASS_ENV_OPTION } from "./elevated.js";

// A command that changes the system, run by a user who is not root: ext asks for root once, through
// run0, pkexec or sudo (src/elevate/choose.ts), and runs the whole command again as root with the
// arguments the unprivileged part resolved (docs/elevation.md). Read-only commands never come here.

export interface ElevationContext {
  /** The resolved global options (src/elevate/request.ts). */
  globals: () => string[];
  /** Set in the root part: the elevator that started it (it must not ask again). */
  elevatedBy?: string;
  /** The command line as typed, for the hint when there is no way to root. */
  argv: string[];
  info: (line: string) => void;
}

/** Returns when this process is root; otherwise runs `command` (the command word and its resolved
 *  arguments) as root and throws Elevated with its exit code, or a PermissionError (exit 4) when there
 *  is no way to root. `why` is what the person is told before being asked. */
export async function asRoot(ctx: ElevationContext, why: string, command: string[]): Promise<void> {
  if (process.getuid?.() === 0) return;
  if (ctx.elevatedBy !== undefined) {
    throw new PermissionError(`ext was started through ${ctx.elevatedBy} but is not root`, { hint: "check how sudo, run0 or pkexec is configured for this user" });
  }
  const choice = chooseElevator(probeElevation());
  if (choice.elevator === null) throw noWayToRoot(ctx.argv, choice);
  const { kind, program } = choice.elevator;
  const node = realpathSync(process.execPath);
  const ext = realpathSync(process.argv[1] ?? packagePath("bin/ext.js"));
  // Root would run these files: nobody but root may be able to change them.
  for (const file of [node, ext, packagePath("dist/bundle")]) {
    if (!onlyRootWrites(file)) {
      throw new PermissionError(`${why} needs root, and root would run ${file}, which a user other than root can change`, {
        hint: `install ext where only root writes (the ext package, /usr/local, ext's own image), or run it as root yourself: sudo ext ${ctx.argv.join(" ")}`,
      });
    }
  }
  const argv = [
    ...elevatorArgv(kind, program, process.env, hasTerminal()),
    node, ext,
    ELEVATED_OPTION, kind,
    PASS_ENV_OPTION, JSON.stringify(passedEnvironment()),
    ...ctx.globals(),
    ...command,
  ];
  ctx.info(`${why} needs root: asking through ${kind} (${choice.elevator.reason})`);
  throw new Elevated(await runElevated(kind, argv));
}

function noWayToRoot(argv: string[], choice: ElevationChoice): PermissionError {
  return new PermissionError("changing the active extensions needs root", {
    details: `no way to become root was found:\n${choice.skipped.map((s) => `- ${s}`).join("\n")}`,
    hint: `run it as root: sudo ext ${argv.join(" ")} (or run0 / pkexec); 'ext build' works without root`,
  });
}

function hasTerminal(): boolean {
  try {
    closeSync(openSync("/dev/tty", "r"));
    return true;
  } catch {
    return false;
  }
}

/** Runs the root part with this terminal, and returns its exit code; the elevator's own refusals
 *  (pkexec: dismissed 126, not authorised 127) become exit 4. */
function runElevated(kind: ElevatorKind, argv: string[]): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: "inherit", cwd: "/" });
    // The terminal's Ctrl-C reaches both; the root part undoes what it started, this one waits for it.
    const ignore = () => {};
    process.on("SIGINT", ignore);
    child.on("error", (e) => {
      process.off("SIGINT", ignore);
      fail(new PermissionError(`could not start ${kind}: ${e.message}`, { cause: e }));
    });
    child.on("exit", (code, signal) => {
      process.off("SIGINT", ignore);
      if (kind === "pkexec" && (code === 126 || code === 127)) {
        fail(new PermissionError(code === 126 ? "authentication was dismissed" : "polkit did not authorise it", { hint: "nothing was changed" }));
      } else done(code ?? (signal ? 128 + (signalNumber[signal] ?? 0) : 1));
    });
  });
}

const signalNumber: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

/** In the root part: the environment the user's run passed on, applied before anything reads it;
 *  a name outside the list is refused (it did not come from ext). */
export function applyPassedEnvironment(json: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  if (json === undefined) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new UsageError(`${PASS_ENV_OPTION} is not JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`${PASS_ENV_OPTION} is not an object`);
  for (const [name, value] of Object.entries(parsed)) {
    if (!PASSED_ENV_NAMES.includes(name) || typeof value !== "string") throw new UsageError(`${PASS_ENV_OPTION}: ${name} is not passed to the root part`);
    env[name] = value;
  }
}
