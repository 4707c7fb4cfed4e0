// Kept apart from exec.ts so the CLI can register its observer without loading execa at start-up.

/** What an observer of external commands is told (the CLI shows them with --verbose). */
export interface CommandEvent {
  file: string;
  args: readonly string[];
  /** The command line as a shell would need it typed. */
  command: string;
}

export interface CommandObserver {
  commandStarted?(event: CommandEvent): void;
  commandFinished?(event: CommandEvent & { exitCode: number; durationMs: number }): void;
}

let observer: CommandObserver | undefined;

export function commandObserver(): CommandObserver | undefined {
  return observer;
}

/** One process-wide observer (the CLI's reporter) sees every command run() starts and ends. */
export function observeCommands(next: CommandObserver | undefined): void {
  observer = next;
}

