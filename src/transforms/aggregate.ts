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
 * Fragments shorter than this are copied into shared blocks instead of held as they came: a payload
 * is a view of the socket chunk it arrived in, and holding one costs an object of about 100 bytes of
 * heap (200 when each fragment came in a chunk of its own) and keeps its whole chunk alive, control
 * frames and headers included. Counting only payload bytes against `maxMessageSize`, a flood of
 * 1-byte fragments held 100 times what it was charged (ws#2331: 131k one-byte fragments, 0.87 MB on
 * the wire, 13.5 MB held). Copied, a small fragment costs its bytes; a larger one is held as it is
 * (about 200 bytes of heap per 16 KiB or more: 1.3% at most), unless it is a view of a buffer more
 * than twice its size, which is copied too. 16 KiB.
 */
export const COPY_FRAGMENTS_BELOW = 16 * 1024;
/** Largest block small fragments are copied into; the first block of a message is smaller. */
const MAX_BLOCK = 16 * 1024;
const MIN_BLOCK = 1024;

/**
 * The assembling logic of {@link aggregate}, for stages that need whole messages: feed it data
 * frames in order; it returns each whole message once its last fragment arrived.
 *
 * What it holds is bounded by `maxMessageSize` in bytes, not only in payload bytes counted: fragments
 * under {@link COPY_FRAGMENTS_BELOW} bytes are copied into blocks of at most 16 KiB (so neither their
 * per-part overhead nor the socket chunks they came in are held), and empty fragments hold nothing.
 * `maxFragments` bounds the work per message.
 */
export class MessageAssembler {
  /** The parts of the open message held so far, in order, the current block's not included. */
  private parts: Buffer[] = [];
  /**
   * The only non-empty part so far when it is small: kept as it came (a message of one non-empty
   * part goes on without a copy), copied into a block once a second part arrives.
   */
  private single: Buffer | undefined;
  /** The block small fragments are copied into, and how much of it is used. */
  private block: Buffer | undefined;
  private blockUsed = 0;
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
      this.append(frame.payload);
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
    this.append(frame.payload);
    this.fragments++;
    this.size = size;
    if (!frame.fin) return undefined;
    const message: Frame = { type: this.type, fin: true, payload: this.payload(size), rsv1: this.rsv1 };
    this.reset();
    return message;
  }

  /** Discards the open message, if any. */
  reset(): void {
    this.parts = [];
    this.single = undefined;
    this.block = undefined;
    this.blockUsed = 0;
    this.size = 0;
    this.fragments = 0;
    this.type = undefined;
    this.rsv1 = false;
  }

  /** Holds a fragment's payload: large ones as they are, small ones copied (see COPY_FRAGMENTS_BELOW). */
  private append(payload: Buffer): void {
    const n = payload.length;
    // Empty fragments add nothing to hold.
    if (n === 0) return;
    if (this.size === 0 && n < COPY_FRAGMENTS_BELOW) {
      this.single = payload;
      return;
    }
    const single = this.single;
    if (single !== undefined) {
      this.single = undefined;
      this.copy(single);
    }
    if (n < COPY_FRAGMENTS_BELOW) {
      this.copy(payload);
      return;
    }
    this.seal();
    // A large view of a much larger chunk (a frame that came with others in one socket read) would
    // keep all of it: it is copied, so that no part holds more than twice its bytes.
    this.parts.push(payload.buffer.byteLength > 2 * n ? Buffer.from(payload) : payload);
  }

  /** Copies small payload bytes into the current block, starting a new block when it is full. */
  private copy(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      let block = this.block;
      if (block === undefined || this.blockUsed === block.length) {
        this.seal();
        // Blocks grow with the message: a short fragmented message does not take 16 KiB.
        const size = Math.min(MAX_BLOCK, Math.max(MIN_BLOCK, 2 * (this.size + bytes.length - at)));
        block = this.block = Buffer.allocUnsafe(size);
      }
      const take = Math.min(block.length - this.blockUsed, bytes.length - at);
      bytes.copy(block, this.blockUsed, at, at + take);
      this.blockUsed += take;
      at += take;
    }
  }

  /** Moves the current block's used bytes to the parts before a large part is held after them. */
  private seal(): void {
    const block = this.block;
    if (block === undefined || this.blockUsed === 0) return;
    if (this.blockUsed === block.length) {
      this.parts.push(block);
      this.block = undefined;
    } else {
      // A block cut short by a large part: its bytes are copied out to their exact size and the
      // block is used again, so that alternating small and large fragments do not each leave a
      // mostly empty block behind.
      this.parts.push(Buffer.from(block.subarray(0, this.blockUsed)));
    }
    this.blockUsed = 0;
  }

  /** The whole message's payload: one allocation of the known length, or its only part as it is. */
  private payload(size: number): Buffer {
    if (this.single !== undefined) return this.single;
    const parts = this.parts;
    if (this.blockUsed > 0) parts.push(this.block!.subarray(0, this.blockUsed));
    if (parts.length === 1 && this.block === undefined) return parts[0]!;
    return parts.length === 0 ? Buffer.alloc(0) : Buffer.concat(parts, size);
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
