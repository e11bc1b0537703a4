/**
 * The contract between a proxy and the stages of its directions: what a stage is (any object-mode
 * `Duplex` of `Frame`s, from readable-stream or `node:stream`), the context a proxy hands each stage
 * before its first frame, and `FrameStage`, the base of every ready stage in
 * `ws-frame-proxy/transforms`.
 *
 * @packageDocumentation
 */
import type { Duplex as NodeDuplex } from 'node:stream';
import { type Duplex, Transform } from 'readable-stream';
import { type Frame, isControlType } from '../frame.js';
import type { ProxyRole } from '../proxy/options.js';
import type { WebSocketProxy } from '../proxy/websocket-proxy.js';
import { DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, MessageAssembler } from './aggregate.js';

/**
 * A stage of a direction: an object-mode `Duplex` (usually a `Transform`) that reads `Frame`s and
 * writes `Frame`s. Streams of `readable-stream` and of `node:stream` are both accepted, including
 * `Duplex.from(async function* (frames) { ... })`.
 */
export type Stage = Duplex | NodeDuplex;

/** What a stage knows of the connection it runs in. */
export interface StageContext {
  /** The side the stage's frames come from: `'client'` (toward the upstream) or `'upstream'`. */
  readonly role: ProxyRole;
  /** The connection's id, unique in this process (the proxy's `id`). */
  readonly id: string;
  /** The proxy running the stage, or undefined in a bare `pipeline()`. */
  readonly proxy: WebSocketProxy | undefined;
}

/**
 * The method a proxy calls on each of its stages, before the first frame, with the stage's
 * {@link StageContext}. Any stage may implement it; `Symbol.for` makes it the same symbol across
 * copies of this package.
 */
export const kStageContext: unique symbol = Symbol.for('ws-frame-proxy.stage-context') as never;

/** A stage that wants its context: see {@link kStageContext}. */
export interface ContextualStage {
  [kStageContext](context: StageContext): void;
}

/** The context of a stage used outside a proxy when none is given. */
export const STANDALONE_CONTEXT: StageContext = Object.freeze({ role: 'client', id: '', proxy: undefined });

/**
 * Hands a stage its context, if it takes one.
 *
 * @param stage - any stage
 * @param context - the connection's context for that stage
 */
export function setStageContext(stage: Stage, context: StageContext): void {
  const method = (stage as Partial<ContextualStage>)[kStageContext];
  if (typeof method === 'function') method.call(stage, context);
}

/** What {@link FrameStage.handle} may return: a frame, several, or none (null/undefined drops it). */
export type StageOutput = Frame | readonly Frame[] | null | undefined | void;

/** Options every ready stage takes. */
export interface StageOptions {
  /**
   * The stage's context when it runs outside a proxy (a proxy replaces it before the first frame).
   * @defaultValue `{ role: 'client', id: '', proxy: undefined }`
   */
  context?: Partial<StageContext>;
  /**
   * Frames queued on each side of the stage (object-mode high-water mark).
   * @defaultValue 16
   */
  highWaterMark?: number;
}

function isPromiseLike(value: unknown): value is PromiseLike<StageOutput> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * The base of the ready stages: an object-mode `Transform` of `Frame`s that runs
 * {@link FrameStage.handle} once per frame, one frame at a time (so order is kept), sync or async,
 * and turns a synchronous throw or a rejection into the stream's error, never into an exception out
 * of `write()`. Subclasses implement `handle`; the context is `this.context`.
 */
export abstract class FrameStage extends Transform implements ContextualStage {
  private stageContext: StageContext;

  /** @param options - see {@link StageOptions} */
  constructor(options: StageOptions = {}) {
    checkOptionsObject(options);
    super({ objectMode: true, highWaterMark: checkNumber('highWaterMark', options.highWaterMark, 16, { min: 1, integer: true }) });
    const context = options.context;
    if (context !== undefined && (typeof context !== 'object' || context === null)) {
      throw new TypeError('options.context must be an object');
    }
    this.stageContext = context === undefined ? STANDALONE_CONTEXT : { ...STANDALONE_CONTEXT, ...context };
  }

  /** The connection this stage runs in (see {@link StageContext}). */
  get context(): StageContext {
    return this.stageContext;
  }

  /** Called by the proxy before the first frame; see {@link kStageContext}. */
  [kStageContext](context: StageContext): void {
    this.stageContext = context;
  }

  /**
   * Processes one frame.
   *
   * @param frame - the frame (read-only payload: copy before mutating)
   * @returns the frames to pass on, in order, or a promise of them
   */
  protected abstract handle(frame: Frame): StageOutput | PromiseLike<StageOutput>;

  /** @internal */
  override _transform(frame: Frame, _encoding: string, callback: (error?: Error | null) => void): void {
    let result: StageOutput | PromiseLike<StageOutput>;
    try {
      result = this.handle(frame);
    } catch (err) {
      callback(toError(err));
      return;
    }
    if (isPromiseLike(result)) {
      result.then(
        (value) => this.emitOutput(value, callback),
        (err: unknown) => callback(toError(err)),
      );
    } else {
      this.emitOutput(result, callback);
    }
  }

  private emitOutput(output: StageOutput, callback: (error?: Error | null) => void): void {
    if (output !== null && output !== undefined) {
      if (Array.isArray(output)) {
        for (const frame of output as readonly Frame[]) this.push(frame);
      } else {
        this.push(output);
      }
    }
    callback();
  }
}

/**
 * Turns anything thrown into an `Error` (a thrown string, say), keeping errors as they are.
 *
 * @param value - what was thrown or rejected
 */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/**
 * Checks that an options argument is an object (or undefined).
 *
 * @param options - the argument
 * @param name - how to name it in the error
 * @throws TypeError otherwise
 */
export function checkOptionsObject(options: unknown, name = 'options'): void {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`${name} must be an object`);
  }
}

/**
 * Checks a numeric option and applies its default.
 *
 * @param name - the option's name, for the message (`options.<name> must be ...`)
 * @param value - what was passed
 * @param fallback - the default, used when `value` is undefined
 * @param rule - `min` (inclusive), and `integer` to refuse fractions
 * @returns the value or the default
 * @throws TypeError for a value that is not a number in range
 */
export function checkNumber(name: string, value: unknown, fallback: number, rule: { min: number; integer?: boolean }): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < rule.min || (rule.integer === true && !Number.isInteger(value) && value !== Infinity)) {
    throw new TypeError(`options.${name} must be ${rule.integer === true ? 'an integer' : 'a number'} >= ${rule.min}`);
  }
  return value;
}

/**
 * Checks that a required argument is a function.
 *
 * @param name - the argument's name, for the message
 * @param value - what was passed
 * @throws TypeError otherwise
 */
export function checkFunction(name: string, value: unknown): void {
  if (typeof value !== 'function') throw new TypeError(`${name} must be a function`);
}

/** Options of stages that work on whole messages (see {@link MessageStage}). */
export interface MessageStageOptions extends StageOptions {
  /**
   * Largest message the stage assembles from fragments, in payload bytes; over it the stage fails
   * with `WSP_ERR_MESSAGE_TOO_LARGE` (1009 to the sender, 1001 to its peer in a proxy). Messages that
   * arrive whole (one frame, or after `aggregate()`) are never copied.
   * @defaultValue 16 MiB (16777216)
   */
  maxMessageSize?: number;
  /**
   * Most fragments of one message the stage assembles; one more fails with
   * `WSP_ERR_TOO_MANY_FRAGMENTS` (1009).
   * @defaultValue 16384
   */
  maxFragments?: number;
}

/**
 * The base of stages that need whole messages (rewriting or validating text, JSON): fragmented
 * messages are assembled first, within `maxMessageSize`, so that no fragment ever slips past
 * unseen; control frames interleaved in a message pass at once, ahead of it. Subclasses implement
 * {@link MessageStage.handleMessage} (whole text and binary messages, `fin: true`) and may override
 * {@link MessageStage.handleControl}.
 */
export abstract class MessageStage extends FrameStage {
  private readonly assembler: MessageAssembler;

  /** @param options - see {@link MessageStageOptions} */
  constructor(options: MessageStageOptions = {}) {
    super(options);
    this.assembler = new MessageAssembler(
      checkNumber('maxMessageSize', options.maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE, { min: 1 }),
      checkNumber('maxFragments', options.maxFragments, DEFAULT_MAX_FRAGMENTS, { min: 1 }),
    );
  }

  /**
   * Processes one whole data message.
   *
   * @param message - a text or binary frame with `fin: true` (read-only payload)
   * @returns the frames to pass on, or a promise of them
   */
  protected abstract handleMessage(message: Frame): StageOutput | PromiseLike<StageOutput>;

  /**
   * Processes one control frame; passes it on unchanged unless overridden.
   *
   * @param frame - a close, ping or pong frame
   * @returns the frames to pass on, or a promise of them
   */
  protected handleControl(frame: Frame): StageOutput | PromiseLike<StageOutput> {
    return frame;
  }

  /** @internal */
  protected handle(frame: Frame): StageOutput | PromiseLike<StageOutput> {
    if (isControlType(frame.type)) return this.handleControl(frame);
    const message = this.assembler.add(frame);
    return message === undefined ? null : this.handleMessage(message);
  }
}
