import { errnoCode } from "../errors.js";

// Every line ext prints goes through one of these two writers (stdout: the result; stderr: progress,
// warnings, errors). A reader that goes away — `ext list | head -1`, `ext generations | true` — closes
// the pipe, and the next write fails with EPIPE. For a tool whose output is read by other programs
// that is the end of the output, not an error (coreutils do the same): what was left to print is
// dropped and the command finishes as it would have, with its own exit code. A transaction is never
// cut short because nobody reads its progress any more. Node reports the failure as an 'error' event
// on the stream, which kills the process with a stack trace when nobody listens: here somebody does.

/** Where text goes: what the progress renderers and the command boundary need of a stream. */
export interface TextOut {
  write(text: string): void;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** Errors that mean "the reader is gone": the pipe (or socket) was closed, or the stream already
 *  ended because an earlier write found it closed. */
const READER_GONE = new Set(["EPIPE", "ECONNRESET", "ERR_STREAM_DESTROYED", "ERR_STREAM_WRITE_AFTER_END"]);

export class OutputStream implements TextOut {
  private gone = false;
  /** A failure that is not a closed pipe (a full disk behind `> file`): reported once ext is done. */
  private failure: Error | undefined;

  constructor(private readonly stream: NodeJS.WriteStream) {
    stream.on("error", (e: Error) => this.failed(e));
  }

  get isTTY(): boolean {
    return this.stream.isTTY === true;
  }

  get columns(): number | undefined {
    return this.stream.columns;
  }

  /** True once the reader went away (or writing failed): nothing more is written. */
  get closed(): boolean {
    return this.gone || this.stream.destroyed;
  }

  /** Why writing failed, unless it was only the reader going away. */
  get error(): Error | undefined {
    return this.failure;
  }

  write(text: string): void {
    if (this.closed) return;
    try {
      this.stream.write(text);
    } catch (e) {
      // A synchronous throw is rare (a stream already ended); treat it like the 'error' event.
      this.failed(e as Error);
    }
  }

  private failed(e: Error): void {
    this.gone = true;
    if (!READER_GONE.has(errnoCode(e) ?? "")) this.failure ??= e;
  }
}

let streams: { stdout: OutputStream; stderr: OutputStream } | undefined;

/** The process's stdout and stderr, guarded once (the listeners stay for the whole process). */
export function output(): { stdout: OutputStream; stderr: OutputStream } {
  streams ??= { stdout: new OutputStream(process.stdout), stderr: new OutputStream(process.stderr) };
  return streams;
}
