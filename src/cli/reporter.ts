// How a transaction tells the person what it is doing. The CLI picks the implementation
// (terminal, plain lines, or silent for --json); the machine and actors only call these.

export interface Reporter {
  /** A phase starts (evaluating, building, staging, packing, activating…). */
  phase(name: string, detail?: string): void;
  info(message: string): void;
  warn(message: string): void;
  /** Shown with --verbose only: underlying commands and their output. */
  debug(message: string): void;
}

export const silentReporter: Reporter = {
  phase() {},
  info() {},
  warn() {},
  debug() {},
};
