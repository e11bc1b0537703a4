/**
 * `fragment()`: data frames larger than a size cut into fragments of at most that size.
 *
 * @packageDocumentation
 */
import { type Frame, isControlType } from '../frame.js';
import { FrameStage, type StageOptions, checkNumber, checkOptionsObject } from './stage.js';

/** Options of {@link fragment}. */
export interface FragmentOptions extends StageOptions {
  /**
   * Largest payload of a data frame out of the stage, in bytes (an integer >= 1; `Infinity` cuts
   * nothing).
   * @defaultValue none: required
   */
  maxFrameSize: number;
}

/**
 * The transform behind {@link fragment}; use the factory.
 */
export class FragmentStage extends FrameStage {
  /** See {@link FragmentOptions.maxFrameSize}. */
  readonly maxFrameSize: number;
  /** Resumes a frame being cut once the reader wants more (see `_read`). */
  private wakeUp: (() => void) | undefined;

  /** @param options - see {@link FragmentOptions} */
  constructor(options: FragmentOptions) {
    checkOptionsObject(options);
    if (options?.maxFrameSize === undefined) throw new TypeError('options.maxFrameSize must be an integer >= 1');
    const maxFrameSize = checkNumber('maxFrameSize', options.maxFrameSize, 0, { min: 1, integer: true });
    super(options);
    this.maxFrameSize = maxFrameSize;
  }

  /** @internal */
  protected handle(frame: Frame): Frame | Promise<null> {
    // "Control frames themselves MUST NOT be fragmented" (RFC 6455 section 5.4); they are at most
    // 125 bytes anyway. One inside a message passes at once, in its place, as the sequence allows.
    if (isControlType(frame.type) || frame.payload.length <= this.maxFrameSize) return frame;
    return this.cut(frame);
  }

  /**
   * Pushes the pieces of `frame`, waiting for the reader whenever the readable side is full: one
   * large frame cut small could otherwise queue millions of frame objects at once.
   */
  private async cut(frame: Frame): Promise<null> {
    const payload = frame.payload;
    const size = this.maxFrameSize;
    for (let start = 0; start < payload.length; start += size) {
      const end = Math.min(start + size, payload.length);
      const last = end === payload.length;
      // The first piece keeps the frame's type (text, binary, or continuation for a fragment cut
      // again) and its RSV1, which belongs to a message's first frame only (RFC 7692 section 6.1);
      // the others are continuations. "A fragmented message consists of a single frame with the FIN
      // bit clear ... followed by zero or more frames with the FIN bit clear and the opcode set to 0,
      // and terminated by a single frame with the FIN bit set and an opcode of 0" (RFC 6455 section
      // 5.4): only the last piece of a final frame has FIN.
      const piece: Frame = {
        type: start === 0 ? frame.type : 'continuation',
        fin: last && frame.fin,
        payload: payload.subarray(start, end),
        rsv1: start === 0 && frame.rsv1,
      };
      if (!this.push(piece) && !last) await new Promise<void>((resolve) => (this.wakeUp = resolve));
      if (this.destroyed) break;
    }
    return null;
  }

  /** @internal */
  override _read(size: number): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
    super._read(size);
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    // A frame being cut stops at its next piece.
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
    super._destroy(error, callback);
  }
}

/**
 * A stage that cuts data frames whose payload is larger than `maxFrameSize` into frames of at most
 * `maxFrameSize` bytes, keeping the sequence valid: the first piece keeps the frame's type and
 * RSV1, the others are `continuation` frames, and only the last piece of a frame with FIN keeps
 * FIN. A frame that is itself a fragment is cut the same way, so its message simply has more
 * fragments. Text may be cut inside a character, as RFC 6455 section 5.6 allows ("a particular
 * text frame might include a partial UTF-8 sequence; however, the whole message MUST contain valid
 * UTF-8").
 *
 * Pieces are views of the frame's payload (`subarray`), never copies. Smaller frames and control
 * frames pass unchanged (the same object); a control frame inside a message passes in its place.
 * The stage respects backpressure while it cuts a frame: it queues about `highWaterMark` pieces
 * at a time, not the whole frame's.
 *
 * ```ts
 * // Frames of at most 16 KiB to clients, whatever the upstream sends.
 * new WebSocketProxy({ transforms: { upstream: [fragment({ maxFrameSize: 16 * 1024 })] } });
 * ```
 *
 * @param options - see {@link FragmentOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError when `maxFrameSize` is missing or not an integer >= 1, or another option is invalid
 */
export function fragment(options: FragmentOptions): FragmentStage {
  return new FragmentStage(options);
}
