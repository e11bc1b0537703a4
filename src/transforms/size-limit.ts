/**
 * `sizeLimit()`: a cap on the size of each data message, enforced frame by frame without holding
 * anything back.
 *
 * @packageDocumentation
 */
import { WebSocketProxyError } from '../errors.js';
import { type Frame, isControlType } from '../frame.js';
import { FrameStage, type StageOptions, type StageOutput, checkOptionsObject } from './stage.js';

/** Options of {@link sizeLimit}. */
export interface SizeLimitOptions extends StageOptions {
  /**
   * Largest data message, in payload bytes summed over its fragments: an integer >= 0 (0 lets only
   * empty messages through), or `Infinity`. Exactly the limit passes. Required.
   */
  maxMessageSize: number;
}

/**
 * The stage behind {@link sizeLimit}; use the factory.
 */
export class SizeLimitStage extends FrameStage {
  private readonly maxMessageSize: number;
  /** Payload bytes of the current data message so far. */
  private size = 0;

  /** @param options - see {@link SizeLimitOptions} */
  constructor(options: SizeLimitOptions) {
    checkOptionsObject(options);
    super(options);
    const max = options?.maxMessageSize;
    if (typeof max !== 'number' || !(max >= 0) || (!Number.isInteger(max) && max !== Infinity)) {
      throw new TypeError('options.maxMessageSize must be an integer >= 0');
    }
    this.maxMessageSize = max;
  }

  /** @internal */
  protected handle(frame: Frame): StageOutput {
    // Control frames "MAY be injected in the middle of a fragmented message" (RFC 6455 section 5.4)
    // and are no part of it: not counted.
    if (isControlType(frame.type)) return frame;
    // A text or binary frame starts a message; continuations add to it.
    const size = (frame.type === 'continuation' ? this.size : 0) + frame.payload.length;
    if (size > this.maxMessageSize) {
      this.size = 0;
      throw new WebSocketProxyError('WSP_ERR_MESSAGE_TOO_LARGE', `${size} > ${this.maxMessageSize}`);
    }
    this.size = frame.fin ? 0 : size;
    return frame;
  }
}

/**
 * A stage that fails with `WebSocketProxyError('WSP_ERR_MESSAGE_TOO_LARGE', detail)` (close code
 * 1009: a proxy closes the sender with 1009 and its peer with 1001) as soon as the data message in
 * flight exceeds `maxMessageSize` bytes, before the offending frame is passed on. It buffers nothing:
 * the fragments of a message within the limit pass one by one as they come (so the fragments before
 * the offending one have already reached the other side; use `aggregate()` or a `MessageStage` in
 * front when a message must arrive whole or not at all). Control frames pass and are not counted.
 *
 * ```ts
 * new WebSocketProxy({ transforms: { client: [sizeLimit({ maxMessageSize: 64 * 1024 })] } });
 * ```
 *
 * @param options - see {@link SizeLimitOptions}
 * @returns a {@link SizeLimitStage}, for one direction of one connection
 * @throws TypeError when `maxMessageSize` is missing or not an integer >= 0
 */
export function sizeLimit(options: SizeLimitOptions): SizeLimitStage {
  return new SizeLimitStage(options);
}
