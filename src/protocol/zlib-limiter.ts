/**
 * A process-wide bound on concurrent zlib work. Every inflate or deflate call runs on libuv's
 * thread pool (4 threads by default, shared with DNS and file I/O) and allocates zlib buffers
 * while it runs; with thousands of compressed connections an unbounded number of calls in flight
 * fragments memory badly (the reason `ws` limits it too). Calls past the bound wait in FIFO order.
 *
 * @packageDocumentation
 */

/** A FIFO queue that runs at most `concurrency` jobs at a time. */
export class ZlibLimiter {
  /** The most jobs running at once. */
  readonly concurrency: number;
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  /**
   * @param concurrency - an integer >= 1
   * @throws TypeError for another value
   */
  constructor(concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError('concurrencyLimit must be an integer >= 1');
    }
    this.concurrency = concurrency;
  }

  /** Jobs running now. */
  get active(): number {
    return this.running;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `job` once a slot is free and holds the slot until its promise settles.
   *
   * @param job - the zlib work
   * @returns what `job` returns
   */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await job();
    } finally {
      // The slot passes straight to the next job, so `running` only drops when nobody waits.
      const next = this.waiting.shift();
      if (next === undefined) this.running -= 1;
      else next();
    }
  }
}

const shared = new Map<number, ZlibLimiter>();

/**
 * The limiter shared by every caller asking for the same `concurrency`: the bound is on the whole
 * process (like `ws`'s own), not per connection, which would bound nothing.
 *
 * @param concurrency - an integer >= 1
 * @returns the one limiter for that bound
 */
export function sharedZlibLimiter(concurrency: number): ZlibLimiter {
  let limiter = shared.get(concurrency);
  if (limiter === undefined) {
    limiter = new ZlibLimiter(concurrency);
    shared.set(concurrency, limiter);
  }
  return limiter;
}
