/**
 * The last stages of a proxied direction: the `Forwarder` (the `onFrame` stage, a `Writable` at the
 * end of the direction's pipeline) and the `Outbox` of each side (the one way frames reach that side's
 * `FrameWritable`: forwarded frames, injected frames and close frames, in order).
 *
 * @packageDocumentation
 */
import { Writable } from 'readable-stream';
import { WebSocketProxyError } from '../errors.js';
import { type Frame, closeFrame } from '../frame.js';
import { checkSendable, wirePayload } from '../protocol/encode.js';
import type { FrameWritable } from '../streams/frame-writable.js';
import { type OnFrameResult, type ProxyRole, applyOnFrameResult } from './options.js';

type Callback = (error?: Error | null) => void;

function isData(frame: Frame): boolean {
  return frame.type === 'text' || frame.type === 'binary' || frame.type === 'continuation';
}

/** What an {@link Outbox} reports to its proxy. */
export interface OutboxHooks {
  /** A close frame was handed to the side's writable. */
  onCloseSent(role: ProxyRole, frame: Frame): void;
  /** The side stopped accepting bytes (socket gone, or `sendTimeout`). */
  onFailure(role: ProxyRole, error: Error): void;
}

/**
 * The single entrance to one side's `FrameWritable`. It keeps forwarded and injected frames in FIFO
 * order, holds injected data frames back while a forwarded fragmented message is open, sends at most
 * one close frame, drops what may not follow a close frame, and checks frames a user changed or made
 * before the writable sees them (an invalid frame must not destroy the writable).
 */
export class Outbox {
  /** The close frame sent to this side, once one was. */
  closeSent: Frame | undefined;
  /** Why this side can take no more frames, once it can't. */
  failure: Error | undefined;
  private midMessage = false;
  private disposed = false;
  private readonly held: Frame[] = [];
  private waiting: Callback | undefined;
  private sendTimer: NodeJS.Timeout | undefined;

  private readonly onDrain = (): void => this.release();
  private readonly onGone = (): void => {
    if (!this.disposed) this.fail(new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
  };

  /**
   * @param role - the side this outbox writes to
   * @param writable - that side's writer
   * @param sendTimeout - milliseconds a full socket may stay full, or undefined for no limit
   * @param hooks - where close frames and failures are reported
   */
  constructor(
    readonly role: ProxyRole,
    readonly writable: FrameWritable,
    private readonly sendTimeout: number | undefined,
    private readonly hooks: OutboxHooks,
  ) {
    writable.on('drain', this.onDrain);
    writable.on('close', this.onGone);
  }

  /**
   * Forwards a frame from the pipeline.
   *
   * @param frame - the frame to write
   * @param callback - called when the writable can take the next frame, or with why not
   * @returns false if the frame was dropped because a close frame was already sent to this side
   */
  forward(frame: Frame, callback: Callback): boolean {
    if (this.failure !== undefined) {
      callback(this.failure);
      return false;
    }
    if (this.closeSent !== undefined || this.disposed) {
      // "After sending a Close frame, the endpoint MUST NOT send any more data frames" (5.5.1); a
      // close reply to our own close is not forwarded either.
      callback();
      return false;
    }
    try {
      this.check(frame);
    } catch (err) {
      callback(err as Error);
      return false;
    }
    const ok = this.write(frame);
    if (ok) callback();
    else this.wait(callback);
    return true;
  }

  /**
   * Injects a frame (`proxy.send`): control frames go at once, data frames wait for the end of a
   * forwarded fragmented message.
   *
   * @param frame - the frame to send
   * @throws WebSocketProxyError for a frame that cannot be sent now or at all
   */
  inject(frame: Frame): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closeSent !== undefined || this.disposed) {
      throw new WebSocketProxyError('WSP_ERR_WRITE_AFTER_CLOSE', `${frame.type} frame to the ${this.role}`);
    }
    if (isData(frame)) {
      if (frame.type === 'continuation' || !frame.fin) {
        throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'send() takes whole messages (fin: true, not continuation)');
      }
      if (frame.rsv1) throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'RSV1 set without an extension');
      if (this.midMessage) {
        this.held.push(frame);
        return;
      }
    } else {
      this.check(frame);
    }
    this.write(frame);
  }

  /**
   * Sends a close frame unless one was sent already.
   *
   * @param code - the status code, or undefined for an empty close
   * @param reason - the reason (cut to fit)
   * @returns whether a close frame was sent now
   */
  sendClose(code: number | undefined, reason = ''): boolean {
    if (this.closeSent !== undefined || this.failure !== undefined || this.disposed || this.writable.destroyed) return false;
    this.write(closeFrame(code, code === undefined ? undefined : reason));
    return true;
  }

  /** Stops waiting and listening; called once the proxy is done with this side. */
  dispose(): void {
    this.disposed = true;
    this.clearTimer();
    this.writable.off('drain', this.onDrain);
    this.writable.off('close', this.onGone);
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting !== undefined) waiting(this.failure ?? new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
  }

  /** Checks what the writable would reject, so that a bad frame fails the direction, not the side. */
  private check(frame: Frame): void {
    // The writable's own rules, applied first (no extension is negotiated: RSV1 never allowed).
    checkSendable(frame, this.midMessage, false);
    if (!isData(frame)) wirePayload(frame);
  }

  private write(frame: Frame): boolean {
    if (isData(frame)) {
      this.midMessage = !frame.fin;
    } else if (frame.type === 'close') {
      this.closeSent = frame;
      this.held.length = 0;
    }
    let ok = this.writable.write(frame);
    if (frame.type === 'close') {
      // Reported once written: the proxy may end the writable in response.
      this.hooks.onCloseSent(this.role, frame);
    } else if (!this.midMessage && this.held.length > 0) {
      // The forwarded message ended: injected messages that waited for it go now, in order.
      const held = this.held.splice(0);
      for (const message of held) ok = this.writable.write(message);
    }
    return ok;
  }

  private wait(callback: Callback): void {
    this.waiting = callback;
    if (this.sendTimeout !== undefined) {
      this.sendTimer = setTimeout(() => {
        this.sendTimer = undefined;
        this.fail(new WebSocketProxyError('WSP_ERR_SEND_TIMEOUT', `the ${this.role} accepted no bytes for ${this.sendTimeout} ms`));
      }, this.sendTimeout);
    }
  }

  private release(): void {
    this.clearTimer();
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting !== undefined) waiting();
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.clearTimer();
    const waiting = this.waiting;
    this.waiting = undefined;
    this.hooks.onFailure(this.role, error);
    if (waiting !== undefined) waiting(error);
  }

  private clearTimer(): void {
    if (this.sendTimer !== undefined) {
      clearTimeout(this.sendTimer);
      this.sendTimer = undefined;
    }
  }
}

/** What a {@link Forwarder} needs from its proxy. */
export interface ForwarderContext {
  /** The side frames come from. */
  readonly from: ProxyRole;
  /** The outbox of the other side. */
  readonly to: Outbox;
  /** Calls the user's `onFrame`, or is undefined when there is none. */
  readonly onFrame: ((frame: Frame) => OnFrameResult | Promise<OnFrameResult>) | undefined;
  /** Every frame reaching the stage, before `onFrame`. */
  onInput(frame: Frame): void;
  /** A frame `onFrame` dropped, or a close frame it tried to drop (forwarded anyway). */
  onDrop(frame: Frame, forwardedAnyway: boolean): void;
  /** A close frame about to be forwarded: false keeps it from being forwarded. */
  onClose(frame: Frame): boolean;
}

function isPromise(value: unknown): value is Promise<OnFrameResult> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * The `onFrame` stage: the end of a direction's pipeline. Calls `onFrame` for each frame, sync or
 * async, one frame at a time so that order is kept, and hands the result to the other side's
 * {@link Outbox}, waiting whenever that side's socket is full.
 */
export class Forwarder extends Writable {
  /** Whether a frame is between its arrival and its hand-over to the outbox. */
  busy = false;
  private deferred: (() => void)[] = [];

  /** @param context - the proxy's side of the contract */
  constructor(private readonly context: ForwarderContext) {
    super({ objectMode: true, highWaterMark: 1 });
  }

  /**
   * Takes a frame (see Node's `writable.write()`). With a high-water mark of one frame, the stream's
   * own answer is false for every frame, even one already handed to the outbox, so a piped source
   * would pause and resume (two ticks) per frame, and each frame would leave in a socket write of its
   * own. Here the answer is true when the frame was handed over at once: the source keeps pushing in
   * the same tick and the writable's cork gathers the burst. At most one frame is held, as before.
   *
   * @param frame - the frame to forward
   * @param encoding - ignored (object mode)
   * @param callback - called once the frame was handed over, or with the error
   * @returns false while a frame waits (async `onFrame`, or the other side's socket is full)
   */
  override write(frame: Frame, callback?: Callback): boolean;
  override write(frame: Frame, encoding: BufferEncoding | undefined, callback?: Callback): boolean;
  override write(frame: Frame, encoding?: BufferEncoding | Callback, callback?: Callback): boolean {
    const ret = super.write(frame, encoding as BufferEncoding, callback);
    return ret || (this.writableLength === 0 && this.errored === null && !this.destroyed && !this.writableEnded);
  }

  /**
   * Runs `action` right after the frame being processed is handed over ("forward this frame, then
   * close"), or now when no frame is being processed.
   *
   * @param action - what to run
   */
  afterCurrent(action: () => void): void {
    if (this.busy) this.deferred.push(action);
    else action();
  }

  /** @internal */
  override _write(frame: Frame, _encoding: string, callback: Callback): void {
    const context = this.context;
    context.onInput(frame);
    this.busy = true;
    if (context.onFrame === undefined) {
      this.deliver(frame, callback);
      return;
    }
    let result: OnFrameResult | Promise<OnFrameResult>;
    try {
      result = context.onFrame(frame);
    } catch (err) {
      this.settle(callback, err as Error);
      return;
    }
    if (isPromise(result)) {
      result.then(
        (value) => this.apply(frame, value, callback),
        (err: unknown) => this.settle(callback, err instanceof Error ? err : new Error(String(err))),
      );
    } else {
      this.apply(frame, result, callback);
    }
  }

  /** @internal */
  override _destroy(err: Error | null, callback: (error: Error | null) => void): void {
    this.runDeferred();
    callback(err);
  }

  private apply(frame: Frame, result: OnFrameResult, callback: Callback): void {
    let out: Frame | null;
    try {
      out = applyOnFrameResult(frame, result);
    } catch (err) {
      this.settle(callback, err as Error);
      return;
    }
    if (out === null) {
      const isClose = frame.type === 'close';
      this.context.onDrop(frame, isClose);
      if (!isClose) {
        this.settle(callback);
        return;
      }
      out = frame;
    }
    this.deliver(out, callback);
  }

  private deliver(frame: Frame, callback: Callback): void {
    if (frame.type === 'close' && !this.context.onClose(frame)) {
      this.settle(callback);
      return;
    }
    this.context.to.forward(frame, (err) => this.settle(callback, err ?? undefined));
    // What was deferred while this frame was processed goes right after it, before its callback.
    this.runDeferred();
  }

  private settle(callback: Callback, err?: Error): void {
    this.runDeferred();
    callback(err);
  }

  private runDeferred(): void {
    this.busy = false;
    if (this.deferred.length === 0) return;
    const actions = this.deferred;
    this.deferred = [];
    for (const action of actions) action();
  }
}
