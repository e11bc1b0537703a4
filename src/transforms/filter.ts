/**
 * `filter()`: frames kept or dropped by a predicate, a fragmented message as a whole.
 *
 * @packageDocumentation
 */
import { type Frame, isControlType } from '../frame.js';
import { type ControlOption, FunctionStage, afterValue } from './map.js';
import type { StageContext, StageOptions } from './stage.js';

/**
 * The predicate of {@link filter}: truthy to keep the frame (and, for the first frame of a
 * fragmented message, the whole message), falsy to drop it; sync or async. `frame` and its payload
 * are read-only.
 */
export type FilterFn = (frame: Readonly<Frame>, context: StageContext) => unknown;

/** Options of {@link filter}. */
export interface FilterOptions extends StageOptions, ControlOption {}

/**
 * The transform behind {@link filter}; use the factory.
 */
export class FilterStage extends FunctionStage<FilterFn> {
  /** The decision on the open fragmented message (undefined when none is open). */
  private messageKept: boolean | undefined;

  /** @internal */
  protected handle(frame: Frame): Frame | null | Promise<Frame | null> {
    if (isControlType(frame.type)) {
      if (!this.control) return frame;
      // A close frame is called with, but never dropped: its peer "MUST send a Close frame in
      // response" (RFC 6455 section 5.5.1), and cannot without receiving it.
      return afterValue(this.fn(frame, this.context), (keep) => (keep || frame.type === 'close' ? frame : null));
    }
    if (frame.type === 'continuation' && this.messageKept !== undefined) {
      // The message was decided on its first frame. "The fragments of one message MUST NOT be
      // interleaved" and a message is its first frame plus continuations "until and including" the
      // FIN one (RFC 6455 section 5.4): dropping some of them only would leave an invalid sequence.
      const keep = this.messageKept;
      if (frame.fin) this.messageKept = undefined;
      return keep ? frame : null;
    }
    // The first frame of a message (or a whole one). A stray continuation, which no valid sequence
    // holds, is judged like a first frame rather than guessed about.
    return afterValue(this.fn(frame, this.context), (keep) => {
      this.messageKept = frame.fin ? undefined : Boolean(keep);
      return keep ? frame : null;
    });
  }
}

/**
 * A stage that keeps the frames for which `fn` returns a truthy value and drops the others, one
 * frame at a time in order; `fn` may be async.
 *
 * `filter()` decides per message on the message's FIRST frame: `fn` is called for each text or
 * binary frame, and the continuations of a fragmented message follow that decision without a call
 * (all kept or all dropped), so the frames that come out are always a valid sequence (RFC 6455
 * section 5.4). To decide on the whole content of a message, put `aggregate()` before it.
 *
 * Control frames pass without calling `fn`, unless `control: true`; even then a close frame is
 * never filtered out (`fn` is called, and the close passes whatever it returns). A control frame
 * inside a fragmented message is judged on its own. A throw or a rejection of `fn` fails the stream
 * with that error (1011 in a proxy).
 *
 * ```ts
 * // Drop binary messages from the client, fragmented or not.
 * const textOnly = filter((frame) => frame.type !== 'binary');
 * new WebSocketProxy({ transforms: { client: [textOnly] } });
 * ```
 *
 * @param fn - see {@link FilterFn}
 * @param options - see {@link FilterOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError when `fn` is not a function or an option is invalid
 */
export function filter(fn: FilterFn, options?: FilterOptions): FilterStage {
  return new FilterStage(fn, options);
}
