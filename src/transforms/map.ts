/**
 * `map()`: each frame replaced by what a function returns, or dropped; `mapText()` and `mapJson()`:
 * the same for whole text messages, as a string or as parsed JSON.
 *
 * @packageDocumentation
 */
import { WebSocketProxyError } from '../errors.js';
import { type Frame, isControlType, opcodeOf } from '../frame.js';
import { isValidUtf8 } from '../protocol/utf8.js';
import {
  FrameStage, MessageStage, type MessageStageOptions, type StageContext, type StageOptions, checkFunction, checkOptionsObject,
} from './stage.js';

/**
 * The function of {@link map}: the frame to pass on instead of `frame`, or null/undefined to drop
 * it; sync or async. `frame` and its payload are read-only: return a new frame (and a new buffer)
 * to change it.
 */
export type MapFn = (frame: Readonly<Frame>, context: StageContext) => Frame | null | undefined | PromiseLike<Frame | null | undefined>;

/** Options of {@link map}, {@link filter} and {@link tap}: which frames the function sees. */
export interface ControlOption {
  /**
   * Whether the function is also called for control frames (close, ping, pong); when false they
   * pass untouched without a call.
   * @defaultValue false
   */
  control?: boolean;
}

/** Options of {@link map}. */
export interface MapOptions extends StageOptions, ControlOption {}

/**
 * Checks the `control` option of {@link map}, `filter()` and `tap()`.
 *
 * @internal
 *
 * @param options - the options object (already checked to be an object or undefined)
 * @returns its `control`, false by default
 * @throws TypeError when it is not a boolean
 */
export function checkControlOption(options: ControlOption | undefined): boolean {
  const control = options?.control;
  if (control !== undefined && typeof control !== 'boolean') throw new TypeError('options.control must be a boolean');
  return control === true;
}

/** Whether `value` looks like a `Frame`: an object with a frame type and a Buffer payload. */
function isFrame(value: unknown): value is Frame {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Frame>;
  return typeof candidate.type === 'string' && opcodeOf(candidate.type) !== undefined && Buffer.isBuffer(candidate.payload);
}

/**
 * The base of the stages that call a user function per frame (`map`, `filter`, `tap`): it checks
 * `fn` and the `control` option, and keeps them.
 *
 * @typeParam F - the function's type
 */
export abstract class FunctionStage<F> extends FrameStage {
  /** The user's function. */
  protected readonly fn: F;
  /** Whether control frames go through `fn` too (see {@link ControlOption}). */
  protected readonly control: boolean;

  /**
   * @param fn - the user's function
   * @param options - the stage options and `control`
   * @throws TypeError for a `fn` that is not a function or an option out of range
   */
  constructor(fn: F, options: StageOptions & ControlOption = {}) {
    checkFunction('fn', fn);
    checkOptionsObject(options);
    const control = checkControlOption(options);
    super(options);
    this.fn = fn;
    this.control = control;
  }
}

/**
 * The transform behind {@link map}; use the factory.
 */
export class MapStage extends FunctionStage<MapFn> {
  /** @internal */
  protected handle(frame: Frame): Frame | PromiseLike<Frame | null> | null {
    if (isControlType(frame.type) && !this.control) return frame;
    return afterValue(this.fn(frame, this.context), (result) => this.check(frame, result));
  }

  /** Checks what `fn` returned for `frame`; a close frame is never dropped nor turned into another type. */
  private check(frame: Frame, result: unknown): Frame | null {
    if (result === null || result === undefined) {
      // The close must reach the other end, which "MUST send a Close frame in response" (RFC 6455
      // section 5.5.1): without it neither side could complete the closing handshake.
      return frame.type === 'close' ? frame : null;
    }
    if (!isFrame(result)) throw new TypeError('map(): fn must return a Frame, null or undefined');
    if (frame.type === 'close' && result.type !== 'close') {
      throw new TypeError(`map(): fn must return a close frame for a close frame, not a ${result.type} frame`);
    }
    return result;
  }
}

/**
 * Runs `next` on a value now, or on what it resolves to when it is a promise (or any thenable), so
 * that a synchronous function costs no microtask. Shared by the stages that call a user function.
 *
 * @internal
 *
 * @param value - what the user function returned
 * @param next - what to do with the value
 * @returns `next`'s result, or a promise of it
 */
export function afterValue<T, R>(value: T | PromiseLike<T>, next: (value: T) => R): R | Promise<R> {
  if (typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function') {
    return Promise.resolve(value as PromiseLike<T>).then(next);
  }
  return next(value as T);
}

/**
 * A stage that passes on, for each frame, the frame `fn` returns (or nothing when it returns null
 * or undefined), one frame at a time in order; `fn` may be async.
 *
 * Control frames pass untouched without calling `fn`, unless `control: true`. Even then a close
 * frame is never dropped (null/undefined passes the original close on) and must stay a close frame:
 * returning another type fails the stream with a `TypeError` (1011 in a proxy). Anything `fn`
 * returns that is not a `Frame` fails the stream the same way, and so does a throw or a rejection
 * of `fn`, with that error.
 *
 * `map()` works frame by frame: in a fragmented message `fn` sees each fragment, and what it returns
 * must keep the sequence valid (a `continuation` only inside a message, RFC 6455 section 5.4; a
 * proxy fails the direction with `WSP_ERR_INVALID_FRAME` otherwise). To work on whole messages, put
 * `aggregate()` before it, or use {@link mapText} / {@link mapJson}; to drop frames safely, use
 * `filter()`.
 *
 * ```ts
 * // Blank out every binary frame's payload (a new buffer: the frame's own is read-only).
 * const masked = map((frame) =>
 *   frame.type === 'binary' ? { ...frame, payload: Buffer.alloc(frame.payload.length) } : frame);
 * new WebSocketProxy({ transforms: { upstream: [masked] } });
 * ```
 *
 * @param fn - see {@link MapFn}
 * @param options - see {@link MapOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError when `fn` is not a function or an option is invalid
 */
export function map(fn: MapFn, options?: MapOptions): MapStage {
  return new MapStage(fn, options);
}

/**
 * Decodes a text message's payload.
 *
 * @param payload - the whole message
 * @param stage - the stage's name, for the message
 * @throws WebSocketProxyError `WSP_ERR_INVALID_UTF8` (1007) when it is not valid UTF-8
 */
function decodeText(payload: Buffer, stage: string): string {
  // "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is not,
  // in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_" (RFC 6455
  // section 8.1): decoding with replacement characters would forward something the sender never sent.
  if (!isValidUtf8(payload)) throw new WebSocketProxyError('WSP_ERR_INVALID_UTF8', `${stage}: text message`);
  return payload.toString('utf8');
}

/** Whether a whole message is one the text stages read: text, not compressed by an extension. */
function isPlainText(message: Frame): boolean {
  return message.type === 'text' && !message.rsv1;
}

/**
 * The function of {@link mapText}: the new text of a whole text message, or null/undefined to drop
 * the message; sync or async.
 */
export type MapTextFn = (text: string, context: StageContext) => string | null | undefined | PromiseLike<string | null | undefined>;

/**
 * The transform behind {@link mapText}; use the factory.
 */
export class MapTextStage extends MessageStage {
  private readonly fn: MapTextFn;

  /**
   * @param fn - see {@link MapTextFn}
   * @param options - see {@link MessageStageOptions}
   */
  constructor(fn: MapTextFn, options: MessageStageOptions = {}) {
    checkFunction('fn', fn);
    super(options);
    this.fn = fn;
  }

  /** @internal */
  protected handleMessage(message: Frame): Frame | null | Promise<Frame | null> {
    if (!isPlainText(message)) return message;
    const text = decodeText(message.payload, 'mapText()');
    return afterValue(this.fn(text, this.context), (result): Frame | null => {
      if (result === null || result === undefined) return null;
      if (typeof result !== 'string') throw new TypeError('mapText(): fn must return a string, null or undefined');
      // The same text: the message as it came, without encoding it again.
      return result === text ? message : { type: 'text', fin: true, payload: Buffer.from(result, 'utf8'), rsv1: false };
    });
  }
}

/**
 * A stage that rewrites whole text messages: `fn` gets each text message as a string and returns
 * its new text, or null/undefined to drop the message; `fn` may be async, and messages keep their
 * order. Binary messages and control frames pass unchanged without a call.
 *
 * A fragmented message is assembled first (within `maxMessageSize`, see {@link MessageStageOptions})
 * and goes on as one frame; control frames that arrive inside it pass at once, ahead of it. A text
 * message that is not valid UTF-8 fails the stream with `WSP_ERR_INVALID_UTF8` (1007 to its sender
 * in a proxy); one with RSV1 set (compressed by an extension) is not text to read and passes as it
 * is. A throw or a rejection of `fn`, or a result that is not a string, null or undefined, fails
 * the stream with that error (a `TypeError` for a bad result).
 *
 * ```ts
 * const shout = mapText((text) => text.toUpperCase());
 * new WebSocketProxy({ transforms: { client: [shout] } });
 * ```
 *
 * @param fn - see {@link MapTextFn}
 * @param options - see {@link MessageStageOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError when `fn` is not a function or an option is invalid
 */
export function mapText(fn: MapTextFn, options?: MessageStageOptions): MapTextStage {
  return new MapTextStage(fn, options);
}

/**
 * The function of {@link mapJson}: the value to send instead of `value` (serialized with
 * `JSON.stringify`), or undefined to drop the message; sync or async. Returning null sends the JSON
 * text `null`.
 */
export type MapJsonFn = (value: unknown, context: StageContext) => unknown;

/**
 * The transform behind {@link mapJson}; use the factory.
 */
export class MapJsonStage extends MessageStage {
  private readonly fn: MapJsonFn;

  /**
   * @param fn - see {@link MapJsonFn}
   * @param options - see {@link MessageStageOptions}
   */
  constructor(fn: MapJsonFn, options: MessageStageOptions = {}) {
    checkFunction('fn', fn);
    super(options);
    this.fn = fn;
  }

  /** @internal */
  protected handleMessage(message: Frame): Frame | null | Promise<Frame | null> {
    if (!isPlainText(message)) return message;
    const text = decodeText(message.payload, 'mapJson()');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // Not JSON: not this stage's business (put validateJson() before it to refuse such messages).
      return message;
    }
    return afterValue(this.fn(value, this.context), (result): Frame | null => {
      if (result === undefined) return null;
      // Always serialized again, even for the very value fn was given: fn may have changed it in place.
      const json = JSON.stringify(result) as string | undefined;
      if (json === undefined) throw new TypeError(`mapJson(): fn returned a ${typeof result}, which JSON cannot represent`);
      return { type: 'text', fin: true, payload: Buffer.from(json, 'utf8'), rsv1: false };
    });
  }
}

/**
 * A stage that rewrites whole text messages holding JSON: `fn` gets each one parsed and returns the
 * value to send, serialized again with `JSON.stringify`, or undefined to drop the message; `fn` may
 * be async, and messages keep their order.
 *
 * - Text that does not parse as JSON passes unchanged, without a call; so do binary messages and
 *   control frames. A text message that is not valid UTF-8 fails the stream with
 *   `WSP_ERR_INVALID_UTF8` (1007).
 * - The result is always serialized again, even when `fn` returns the very value it was given (it
 *   may have changed it in place): the text that goes on is `JSON.stringify`'s, so the sender's
 *   spacing and number spelling (`1.0`, `1e3`) are not kept.
 * - A value JSON cannot represent (a function, a symbol) fails the stream with a `TypeError`, and a
 *   value `JSON.stringify` throws on (a BigInt, a cycle) with its error; so does a throw or a
 *   rejection of `fn`.
 * - Fragmented messages are assembled first, within `maxMessageSize`, as by {@link mapText}.
 *
 * ```ts
 * // Strip a field from every JSON message to the upstream; drop heartbeats.
 * const clean = mapJson((value) => {
 *   if (typeof value !== 'object' || value === null) return value;
 *   const { token, ...rest } = value as Record<string, unknown>;
 *   return rest.type === 'heartbeat' ? undefined : rest;
 * });
 * new WebSocketProxy({ transforms: { client: [clean] } });
 * ```
 *
 * @param fn - see {@link MapJsonFn}
 * @param options - see {@link MessageStageOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError when `fn` is not a function or an option is invalid
 */
export function mapJson(fn: MapJsonFn, options?: MessageStageOptions): MapJsonStage {
  return new MapJsonStage(fn, options);
}
