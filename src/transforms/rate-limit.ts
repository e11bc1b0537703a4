/**
 * `rateLimit()`: a token-bucket limit on the messages and bytes one side sends, by delaying its
 * frames or by closing it.
 *
 * @packageDocumentation
 */
import { WebSocketProxyError } from '../errors.js';
import { type Frame, isControlType } from '../frame.js';
import { FrameStage, type StageOptions, type StageOutput, checkOptionsObject } from './stage.js';

/** Options of {@link rateLimit}; at least one of the two rates is required. */
export interface RateLimitOptions extends StageOptions {
  /**
   * Data messages per second, on average; a message counts once, on its first frame.
   * @defaultValue no message limit
   */
  messagesPerSecond?: number;
  /**
   * Payload bytes of data frames per second, on average; every frame of a message counts.
   * @defaultValue no byte limit
   */
  bytesPerSecond?: number;
  /**
   * How many seconds' worth of budget the buckets hold: each bucket's capacity is its rate times
   * `burst`, and the buckets start full. So `{ messagesPerSecond: 10, burst: 2 }` lets 20 messages
   * through at once after 2 quiet seconds, then 10 a second.
   * @defaultValue 1
   */
  burst?: number;
  /**
   * What to do with a frame the buckets cannot pay for yet: `'delay'` holds it back until they can
   * (see {@link rateLimit}); `'close'` fails the stage with `WSP_ERR_RATE_LIMITED` (1008 to the
   * sender, 1001 to its peer in a proxy).
   * @defaultValue `'delay'`
   */
  action?: 'delay' | 'close';
}

/**
 * Tokens below what is needed that still count as enough: refills are computed in floating point,
 * and a timer set for exactly the missing time must find the bucket paid.
 */
const EPSILON = 1e-9;

/** A time in milliseconds that sinon's fake timers control (they fake `performance` by default). */
function now(): number {
  return performance.now();
}

/** One bucket: `rate` tokens a second, at most `capacity`, starting full. */
class TokenBucket {
  private tokens: number;
  private last = now();

  constructor(
    readonly rate: number,
    readonly capacity: number,
  ) {
    this.tokens = capacity;
  }

  /**
   * Milliseconds until `cost` can be paid, 0 when it can now. A cost above the capacity is paid once
   * the bucket is full (it then goes into debt): it would never fit otherwise.
   */
  wait(cost: number): number {
    this.refill();
    const missing = Math.min(cost, this.capacity) - this.tokens;
    return missing <= EPSILON ? 0 : (missing * 1000) / this.rate;
  }

  /** Pays `cost` (possibly into debt, which later frames wait out). */
  take(cost: number): void {
    this.refill();
    this.tokens -= cost;
  }

  private refill(): void {
    const time = now();
    this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, time - this.last) * this.rate) / 1000);
    this.last = time;
  }
}

function checkRate(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`options.${name} must be a finite number > 0`);
  }
  return value;
}

/** A data frame's cost in the message bucket: 1 for the first frame of a message. */
function messageCost(frame: Frame): number {
  return frame.type === 'continuation' ? 0 : 1;
}

/**
 * The stage behind {@link rateLimit}; use the factory.
 */
export class RateLimitStage extends FrameStage {
  private readonly messages: TokenBucket | undefined;
  private readonly bytes: TokenBucket | undefined;
  private readonly closeOnExcess: boolean;
  /** Data frames waiting for the buckets, oldest first (at most the writable high-water mark). */
  private readonly held: Frame[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Lets the withheld write go on once `held` has room again. */
  private onRoom: (() => void) | undefined;
  /** The end of input waiting for `held` to empty. */
  private onDrained: (() => void) | undefined;

  /** @param options - see {@link RateLimitOptions} */
  constructor(options: RateLimitOptions) {
    checkOptionsObject(options);
    super(options);
    const messagesPerSecond = checkRate('messagesPerSecond', options?.messagesPerSecond);
    const bytesPerSecond = checkRate('bytesPerSecond', options?.bytesPerSecond);
    if (messagesPerSecond === undefined && bytesPerSecond === undefined) {
      throw new TypeError('options.messagesPerSecond or options.bytesPerSecond is required');
    }
    const burst = checkRate('burst', options?.burst) ?? 1;
    const action = options?.action ?? 'delay';
    if (action !== 'delay' && action !== 'close') throw new TypeError("options.action must be 'delay' or 'close'");
    this.closeOnExcess = action === 'close';
    this.messages = messagesPerSecond === undefined ? undefined : new TokenBucket(messagesPerSecond, messagesPerSecond * burst);
    this.bytes = bytesPerSecond === undefined ? undefined : new TokenBucket(bytesPerSecond, bytesPerSecond * burst);
  }

  /** @internal */
  protected handle(frame: Frame): StageOutput | PromiseLike<StageOutput> {
    if (isControlType(frame.type)) {
      // Control frames are never charged nor held: pings and pongs overtake held data frames (as they
      // may interleave with a message, RFC 6455 section 5.4). A close may not overtake them (no data
      // may follow a close, section 5.5.1), so it takes them along at once instead of waiting.
      if (frame.type === 'close') this.releaseAll();
      return frame;
    }
    if (this.closeOnExcess) {
      this.checkAffordable(frame);
      this.charge(frame);
      return frame;
    }
    if (this.held.length === 0 && this.waitFor(frame) === 0) {
      this.charge(frame);
      return frame;
    }
    this.held.push(frame);
    this.schedule();
    if (this.held.length < this.writableHighWaterMark) return null;
    // Full: this write is not called back until a frame leaves, so the stream's backpressure stops
    // the side's reading; nothing more is taken in.
    return new Promise<StageOutput>((resolve) => {
      this.onRoom = () => resolve(null);
    });
  }

  /** @internal */
  override _flush(callback: (error?: Error | null) => void): void {
    // The end of input waits for the held frames to go out at the rate.
    if (this.held.length === 0) callback();
    else this.onDrained = () => callback();
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    // No timer may outlive the stage (it would keep the process alive and push into a dead stream).
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.held.length = 0;
    this.onRoom = undefined;
    this.onDrained = undefined;
    super._destroy(error, callback);
  }

  /** Milliseconds until both buckets can pay for `frame`. */
  private waitFor(frame: Frame): number {
    return Math.max(this.messages?.wait(messageCost(frame)) ?? 0, this.bytes?.wait(frame.payload.length) ?? 0);
  }

  private charge(frame: Frame): void {
    this.messages?.take(messageCost(frame));
    this.bytes?.take(frame.payload.length);
  }

  /** For `action: 'close'`: throws `WSP_ERR_RATE_LIMITED` naming the bucket that cannot pay. */
  private checkAffordable(frame: Frame): void {
    if (this.messages !== undefined && this.messages.wait(messageCost(frame)) > 0) {
      throw new WebSocketProxyError('WSP_ERR_RATE_LIMITED', `more than ${this.messages.rate} messages per second`);
    }
    if (this.bytes !== undefined && this.bytes.wait(frame.payload.length) > 0) {
      throw new WebSocketProxyError('WSP_ERR_RATE_LIMITED', `more than ${this.bytes.rate} bytes per second`);
    }
  }

  /** Arms the timer for the oldest held frame, unless armed already. */
  private schedule(): void {
    if (this.timer !== undefined || this.held.length === 0 || this.destroyed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.release();
    }, Math.ceil(this.waitFor(this.held[0]!)));
  }

  /** Passes on the held frames the buckets can now pay for, in order. */
  private release(): void {
    while (this.held.length > 0 && this.waitFor(this.held[0]!) === 0) {
      const frame = this.held.shift()!;
      this.charge(frame);
      this.push(frame);
    }
    this.afterRelease();
    this.schedule();
  }

  /** Passes on every held frame at once (charged, into debt): a close is coming. */
  private releaseAll(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const frame of this.held.splice(0)) {
      this.charge(frame);
      this.push(frame);
    }
    this.afterRelease();
  }

  private afterRelease(): void {
    if (this.onRoom !== undefined && this.held.length < this.writableHighWaterMark) {
      const resume = this.onRoom;
      this.onRoom = undefined;
      resume();
    }
    if (this.onDrained !== undefined && this.held.length === 0) {
      const done = this.onDrained;
      this.onDrained = undefined;
      done();
    }
  }
}

/**
 * A stage that limits the data one side sends with token buckets: `messagesPerSecond` (a message
 * counts once, on its first frame) and/or `bytesPerSecond` (payload bytes of every data frame), each
 * holding `burst` seconds' worth of budget. A stage instance serves one direction of one connection,
 * so the limit is per connection and direction.
 *
 * - `action: 'delay'` (default): a data frame the buckets cannot pay for yet is held back, and
 *   passed on by a timer when they can, in order. Up to `highWaterMark` frames are held; then the
 *   stage stops taking frames, so the stream's backpressure stops reading the side: nothing
 *   unbounded is buffered.
 * - `action: 'close'`: such a frame fails the stage with `WebSocketProxyError('WSP_ERR_RATE_LIMITED',
 *   detail)` (close code 1008: a proxy closes the sender with 1008 and its peer with 1001).
 *
 * Control frames are never charged nor delayed: pings and pongs overtake held data frames, and a
 * close releases the held data frames at once, ahead of itself (the limiter never holds up a close
 * handshake). The end of input waits for held frames to go out at the rate. A single frame larger
 * than the byte bucket's capacity passes once the bucket is full, leaving it in debt that the next
 * frames wait out (it could never pass otherwise). Timers are cleared when the stage is destroyed.
 *
 * ```ts
 * new WebSocketProxy({
 *   transforms: { client: [rateLimit({ messagesPerSecond: 20, bytesPerSecond: 1 << 20, burst: 2 })] },
 * });
 * ```
 *
 * @param options - see {@link RateLimitOptions}
 * @returns a {@link RateLimitStage}, for one direction of one connection
 * @throws TypeError for an invalid option, or when neither rate is given
 */
export function rateLimit(options: RateLimitOptions): RateLimitStage {
  return new RateLimitStage(options);
}
