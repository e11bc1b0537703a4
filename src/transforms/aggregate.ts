/**
 * `aggregate()`: fragmented messages assembled into single frames, control frames passed at once.
 *
 * @packageDocumentation
 */
import { Transform } from 'readable-stream';
import { WebSocketProxyError } from '../errors.js';
import type { Frame, FrameType } from '../frame.js';

/** Default {@link AggregateOptions.maxMessageSize}: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
/** Default {@link AggregateOptions.maxFragments}. */
export const DEFAULT_MAX_FRAGMENTS = 16384;

/** Options of {@link aggregate}. */
export interface AggregateOptions {
  /**
   * Largest message, in payload bytes (assembled, or in one frame); a frame that would make the
   * message larger fails the stream with `WSP_ERR_MESSAGE_TOO_LARGE` (1009) before it is appended.
   * Exactly the limit passes.
   * @defaultValue 16 MiB (16777216)
   */
  maxMessageSize?: number;
  /**
   * Most fragments in one message (empty fragments count); one more fails the stream with
   * `WSP_ERR_TOO_MANY_FRAGMENTS` (1009). Exactly the limit passes.
   * @defaultValue 16384
   */
  maxFragments?: number;
  /**
   * Frames queued on each side of the transform (object-mode high-water mark).
   * @defaultValue 16
   */
  highWaterMark?: number;
}

function limit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 1) {
    throw new TypeError(`options.${name} must be a number >= 1`);
  }
  return value;
}

/**
 * The assembling logic of {@link aggregate}, for stages that need whole messages: feed it data
 * frames in order; it returns each whole message once its last fragment arrived.
 */
export class MessageAssembler {
  /** The non-empty payloads of the open message (empty fragments add nothing to copy). */
  private parts: Buffer[] = [];
  private size = 0;
  /** Fragments of the open message so far, empty ones included. */
  private fragments = 0;
  private type: FrameType | undefined;
  private rsv1 = false;

  /**
   * @param maxMessageSize - largest message in bytes (exactly the limit passes)
   * @param maxFragments - most fragments in a message (exactly the limit passes)
   */
  constructor(
    private readonly maxMessageSize: number,
    private readonly maxFragments: number,
  ) {}

  /** Whether a fragmented message is being assembled. */
  get midMessage(): boolean {
    return this.type !== undefined;
  }

  /**
   * Adds a data frame (text, binary or continuation).
   *
   * @param frame - the next data frame of the stream
   * @returns the whole message once complete (the frame itself when it is one), or undefined while
   *   fragments are still missing
   * @throws WebSocketProxyError `WSP_ERR_MESSAGE_TOO_LARGE` or `WSP_ERR_TOO_MANY_FRAGMENTS` (1009),
   *   before the offending fragment is appended; the open message is discarded
   */
  add(frame: Frame): Frame | undefined {
    if (this.type === undefined) {
      if (frame.payload.length > this.maxMessageSize) {
        throw new WebSocketProxyError('WSP_ERR_MESSAGE_TOO_LARGE', `${frame.payload.length} > ${this.maxMessageSize}`);
      }
      // A whole message in one frame (or a stray final continuation): nothing to assemble.
      if (frame.fin) return frame;
      this.type = frame.type;
      this.rsv1 = frame.rsv1;
      if (frame.payload.length > 0) this.parts.push(frame.payload);
      this.fragments = 1;
      this.size = frame.payload.length;
      return undefined;
    }
    const size = this.size + frame.payload.length;
    if (size > this.maxMessageSize) {
      this.reset();
      throw new WebSocketProxyError('WSP_ERR_MESSAGE_TOO_LARGE', `${size} > ${this.maxMessageSize}`);
    }
    if (this.fragments + 1 > this.maxFragments) {
      this.reset();
      throw new WebSocketProxyError('WSP_ERR_TOO_MANY_FRAGMENTS', `more than ${this.maxFragments}`);
    }
    if (frame.payload.length > 0) this.parts.push(frame.payload);
    this.fragments++;
    this.size = size;
    if (!frame.fin) return undefined;
    const parts = this.parts;
    const message: Frame = {
      type: this.type,
      fin: true,
      // One allocation of the known length; a single non-empty part is passed on without a copy.
      payload: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size),
      rsv1: this.rsv1,
    };
    this.reset();
    return message;
  }

  /** Discards the open message, if any. */
  reset(): void {
    this.parts = [];
    this.size = 0;
    this.fragments = 0;
    this.type = undefined;
    this.rsv1 = false;
  }
}

/**
 * The transform behind {@link aggregate}; use the factory.
 */
export class AggregateTransform extends Transform {
  private readonly assembler: MessageAssembler;

  /** @param options - see {@link AggregateOptions} */
  constructor(options: AggregateOptions = {}) {
    const highWaterMark = limit('highWaterMark', options.highWaterMark, 16);
    super({ objectMode: true, highWaterMark });
    this.assembler = new MessageAssembler(
      limit('maxMessageSize', options.maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE),
      limit('maxFragments', options.maxFragments, DEFAULT_MAX_FRAGMENTS),
    );
  }

  /** Whether a fragmented message is being assembled. */
  get midMessage(): boolean {
    return this.assembler.midMessage;
  }

  /** @internal */
  override _transform(frame: Frame, _encoding: string, callback: (error?: Error | null, data?: Frame) => void): void {
    const type = frame.type;
    if (type === 'close' || type === 'ping' || type === 'pong') {
      // Control frames "MAY be injected in the middle of a fragmented message" (RFC 6455 section
      // 5.4) and are passed on at once, ahead of the message being assembled.
      callback(null, frame);
      return;
    }
    let message: Frame | undefined;
    try {
      message = this.assembler.add(frame);
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback(null, message);
  }

  /** @internal */
  override _flush(callback: (error?: Error | null) => void): void {
    // An unfinished message at the end of the stream is dropped: it was never a message.
    this.assembler.reset();
    callback();
  }
}

/**
 * A transform that assembles each fragmented data message into one frame of the first fragment's
 * type with FIN set; control frames interleaved in a message are passed on at once (so they come out
 * ahead of the message), and unfragmented frames pass unchanged.
 *
 * Put it right after a `FrameReadable`, before transforms that want whole messages:
 * `pipeline(frames, aggregate(), redact(), out)`. It holds at most `maxMessageSize` bytes.
 *
 * @param options - limits, see {@link AggregateOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError for an option out of range
 */
export function aggregate(options?: AggregateOptions): AggregateTransform {
  return new AggregateTransform(options);
}
