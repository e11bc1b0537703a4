/**
 * `tap()`: a function called on each frame for its side effects (logging, metrics, recording).
 *
 * @packageDocumentation
 */
import { type Frame, isControlType } from '../frame.js';
import { type ControlOption, FunctionStage, afterValue } from './map.js';
import type { StageContext, StageOptions } from './stage.js';

/**
 * The function of {@link tap}; what it returns is ignored, but a promise is waited for. `frame` and
 * its payload are read-only; copy a payload to keep it (it may be a view into a larger socket chunk,
 * which keeping the view would hold in memory).
 */
export type TapFn = (frame: Readonly<Frame>, context: StageContext) => unknown;

/** Options of {@link tap}. */
export interface TapOptions extends StageOptions, ControlOption {}

/**
 * The transform behind {@link tap}; use the factory.
 */
export class TapStage extends FunctionStage<TapFn> {
  /** @internal */
  protected handle(frame: Frame): Frame | Promise<Frame> {
    if (isControlType(frame.type) && !this.control) return frame;
    return afterValue(this.fn(frame, this.context), () => frame);
  }
}

/**
 * A stage that calls `fn` on each frame and passes the frame on unchanged once `fn` returned (or
 * the promise it returned resolved), one frame at a time in order: an async `fn` holds the stream
 * (and, through backpressure, the sender) while it runs.
 *
 * Control frames pass without a call unless `control: true`. A throw or a rejection of `fn` fails
 * the stream with that error (a proxy closes both sides with 1011).
 *
 * ```ts
 * let bytes = 0;
 * const count = tap((frame, { role }) => {
 *   bytes += frame.payload.length;
 *   if (frame.type === 'close') console.log(`${role} closed with ${frame.code}`);
 * }, { control: true });
 * new WebSocketProxy({ transforms: { upstream: [count] } });
 * ```
 *
 * @param fn - see {@link TapFn}
 * @param options - see {@link TapOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError when `fn` is not a function or an option is invalid
 */
export function tap(fn: TapFn, options?: TapOptions): TapStage {
  return new TapStage(fn, options);
}
