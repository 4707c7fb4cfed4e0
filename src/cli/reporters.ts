import type { Reporter } from "./reporter.js";

// Progress goes to stderr so stdout stays the command's result (and only JSON with --json).

export interface ReporterOptions {
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  stream?: NodeJS.WriteStream;
}

export function streamReporter(opts: ReporterOptions): Reporter {
  const out = opts.stream ?? process.stderr;
  const started = Date.now();
  const paint = (code: string, s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  return {
    phase(name, detail) {
      if (!opts.quiet) out.write(`${paint("1", `[${elapsed()}] ${name}`)}${detail ? ` ${detail}` : ""}\n`);
    },
    info(message) {
      if (!opts.quiet) out.write(`${message}\n`);
    },
    warn(message) {
      out.write(`${paint("33", "warning:")} ${message}\n`);
    },
    debug(message) {
      if (opts.verbose) out.write(`${paint("2", message)}\n`);
    },
  };
}
