// How a transaction tells the person what it is doing. The CLI picks the implementation
// (terminal, plain lines, or silent for --json); the machine and actors only call these.

export interface Reporter {
  /** A phase starts (evaluating, building, staging, packing, activating…). */
  phase(name: string, detail?: string): void;
  info(message: string): void;
  warn(message: string): void;
  /** Shown with --verbose only: underlying commands and their output. */
  debug(message: string): void;
  /** Optional: how far the current phase is (`done` of `total` `unit`s; total unknown = undefined). */
  progress?(done: number, total: number | undefined, unit: string): void;
  /** Optional: the running phase is over, ✓ (ok) or ✗, and no other starts yet (a failed step is
   *  settled as failed before whatever handles the failure says anything). */
  settle?(ok: boolean): void;
  /** Optional: the command is over; a terminal renderer settles its last line. */
  end?(ok: boolean): void;
}

export const silentReporter: Reporter = {
  phase() {},
  info() {},
  warn() {},
  debug() {},
};
