// Bounded concurrency for staging: tens of thousands of file operations, or decompression tools spawned
// for opaque-content checks, would exhaust file descriptors and processes if all started at once.

/** A counting semaphore: at most `size` tasks run at once. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `active` stays the same.
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Fire-and-forget jobs with backpressure: add() waits while `maxJobs` run or their declared bytes
 * exceed `maxBytes`. The first failure is kept and thrown by the next add() or by drain().
 */
export class JobQueue {
  private readonly running = new Set<Promise<void>>();
  private bytes = 0;
  private failed = false;
  private failure: unknown;

  constructor(private readonly maxJobs: number, private readonly maxBytes: number) {}

  async add(bytes: number, job: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.maxJobs || (this.running.size > 0 && this.bytes + bytes > this.maxBytes)) {
      await Promise.race(this.running);
    }
    this.rethrow();
    this.bytes += bytes;
    const p: Promise<void> = job()
      .catch((e: unknown) => {
        if (!this.failed) {
          this.failed = true;
          this.failure = e;
        }
      })
      .finally(() => {
        this.bytes -= bytes;
        this.running.delete(p);
      });
    this.running.add(p);
  }

  /** Waits for every job; throws the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    this.rethrow();
  }

  private rethrow(): void {
    if (this.failed) throw this.failure;
  }
}
