/** Thrown by a command that ran itself again as root (src/elevate/index.ts): that run printed the
 *  result and the errors; this one only passes its exit code on. */
export class Elevated {
  constructor(readonly exitCode: number) {}
}

/** The hidden options of the root part's command line: which elevator started it, and the
 *  environment variables (from a named list) the user's run passed on. */
export const ELEVATED_OPTION = "--elevated";
export const PASS_ENV_OPTION = "--pass-env";
