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
import { MASK_IN_PLACE_MIN, checkSendable, wirePayload } from '../protocol/encode.js';
import { Utf8Validator, isValidUtf8 } from '../protocol/utf8.js';
import { type FrameWritable, transferPayload } from '../streams/frame-writable.js';
import { toError } from '../transforms/stage.js';
import { CurrentFrame } from './current-frame.js';
import type { DeflateHop } from './deflate-hop.js';
import { type FrameObserver, type ObserverHolder, observeFrame, type OnFrameResult, type ProxyRole, applyOnFrameResult } from './options.js';

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
  /** A keepalive ping sent with {@link Outbox.ping} was handed to the side's socket. */
  onPingWritten?(role: ProxyRole): void;
  /** A frame to the side was cut mid-way (its source ended): the side's socket was destroyed. */
  onFrameAborted?(role: ProxyRole): void;
}

/** Options of an {@link Outbox}. */
export interface OutboxOptions {
  /**
   * Check that text leaving through this outbox is UTF-8 (set when user code may have made or
   * changed frames: what the peer would have to reject must not be sent).
   */
  checkText: boolean;
  /** Most bytes of injected frames queued and not yet handed to the socket. */
  maxQueuedBytes: number;
  /**
   * Whether forwarded data frames may carry RSV1: permessage-deflate was negotiated with this side.
   * @defaultValue false
   */
  allowRsv1?: boolean;
}

const kOutbox = Symbol('outbox');

/**
 * Most control frames an {@link Outbox} holds behind a frame written in pieces (cut-through): nothing
 * can go inside a frame on the wire, so pings and injected control frames wait for its last piece,
 * which a slow source may take long to send. Injected control frames past it are refused
 * (`send()` throws `WSP_ERR_SEND_QUEUE_FULL`): their bytes alone would not bound them, an empty ping
 * counting 0 bytes against `maxSendQueueSize`. (The proxy's own keepalive ping is one per silence of
 * the side, never more than one at a time.)
 */
export const MAX_HELD_CONTROLS = 32;

/**
 * {@link Outbox.forward} flag: the frame comes as the proxy's reader parsed it (no user code
 * between): the reader enforced what the writer would refuse, so it is not checked twice (the writer
 * still checks it).
 */
export const FORWARD_PARSED = 1;
/**
 * {@link Outbox.forward} flag: the frame's payload is the proxy's alone, which the writer may mask in
 * place (see `FrameWritable.writeNow`).
 */
export const FORWARD_OWNED = 2;

/**
 * The single entrance to one side's `FrameWritable`. It keeps forwarded and injected frames in FIFO
 * order, holds injected data frames back while a forwarded fragmented message is open, sends at most
 * one close frame, drops what may not follow a close frame, and checks frames a user changed or made
 * before the writable sees them (an invalid frame must not destroy the writable, nor reach the peer).
 */
export class Outbox {
  /** The close frame sent to this side, once one was. */
  closeSent: Frame | undefined;
  /** Why this side can take no more frames, once it can't. */
  failure: Error | undefined;
  private midMessage = false;
  /**
   * Whether a forwarded frame is being written in pieces (cut-through): until its last piece nothing
   * else can go to the writable, so control frames and a close wait in `heldControls`/`pendingClose`.
   */
  private midFrame = false;
  /** Control frames that came while a frame was written in pieces: pings (ours) and injected ones. */
  private heldControls: { frame: Frame; ping: boolean }[] = [];
  /** A close asked for while a frame was written in pieces; it goes right after the frame's last piece. */
  private pendingClose: Frame | undefined;
  /** Whether the open (or last) message forwarded is text. */
  private textMessage = false;
  /** Whether the open (or last) message forwarded is compressed (RSV1 on its first frame). */
  private compressedMessage = false;
  private readonly allowRsv1: boolean;
  private isDisposed = false;
  private readonly held: Frame[] = [];
  private waiting: Callback | undefined;
  private sendTimer: NodeJS.Timeout | undefined;
  /** Bytes of injected frames not yet handed to the socket. */
  private queuedBytes = 0;
  /** Whether the writable answered false to an injected frame (its socket is full) since its last 'drain'. */
  private blocked = false;
  private drainWaiters: (() => void)[] = [];
  private readonly utf8: Utf8Validator | undefined;
  private readonly maxQueuedBytes: number;

  /**
   * @param role - the side this outbox writes to
   * @param writable - that side's writer
   * @param sendTimeout - milliseconds a full socket may stay full, or undefined for no limit
   * @param hooks - where close frames and failures are reported
   * @param options - see {@link OutboxOptions}
   */
  constructor(
    readonly role: ProxyRole,
    readonly writable: FrameWritable,
    private readonly sendTimeout: number | undefined,
    private readonly hooks: OutboxHooks,
    options: OutboxOptions = { checkText: false, maxQueuedBytes: Infinity },
  ) {
    this.utf8 = options.checkText ? new Utf8Validator() : undefined;
    this.maxQueuedBytes = options.maxQueuedBytes;
    this.allowRsv1 = options.allowRsv1 ?? false;
    (writable as unknown as Tagged)[kOutbox] = this;
    writable.on('drain', writableOnDrain);
    writable.on('close', writableOnClose);
  }

  /** Whether the proxy is done with this side. */
  get disposed(): boolean {
    return this.isDisposed;
  }

  /**
   * Whether injected frames should wait: the side's socket is full, or injected messages wait for a
   * forwarded fragmented message to end.
   */
  get full(): boolean {
    return this.blocked || this.held.length > 0 || this.writable.writableNeedDrain || this.waiting !== undefined;
  }

  /**
   * Forwards a frame from the pipeline.
   *
   * @param frame - the frame to write
   * @param callback - called when the writable can take the next frame, or with why not
   * @param flags - what the caller knows of the frame: {@link FORWARD_PARSED}, {@link FORWARD_OWNED}
   * @returns false if the frame was dropped because a close frame was already sent to this side
   */
  forward(frame: Frame, callback: Callback, flags = 0): boolean {
    if (this.failure !== undefined) {
      callback(this.failure);
      return false;
    }
    // The rest of a frame written in pieces: its first piece was checked, the writable checks the order.
    const continuing = frame.partial !== undefined && frame.partial.offset > 0;
    if (this.closeSent !== undefined || this.isDisposed || (this.pendingClose !== undefined && !continuing)) {
      // "After sending a Close frame, the endpoint MUST NOT send any more data frames" (5.5.1); a
      // close reply to our own close is not forwarded either.
      callback();
      return false;
    }
    if (!continuing && (flags & FORWARD_PARSED) === 0) {
      try {
        this.check(frame);
      } catch (err) {
        callback(err as Error);
        return false;
      }
    }
    const ok = this.write(frame, (flags & FORWARD_OWNED) !== 0);
    if (ok) callback();
    else this.wait(callback);
    return true;
  }

  /**
   * Injects a frame (`proxy.send`): control frames go at once, data frames wait for the end of a
   * forwarded fragmented message.
   *
   * @param frame - the frame to send
   * @returns false when the caller should wait for {@link Outbox.whenDrained} before injecting more
   * @throws WebSocketProxyError for a frame that cannot be sent now or at all, or
   *   `WSP_ERR_SEND_QUEUE_FULL` when it would queue more than the bound
   */
  inject(frame: Frame): boolean {
    if (this.failure !== undefined) throw this.failure;
    if (this.closeSent !== undefined || this.isDisposed) {
      throw new WebSocketProxyError('WSP_ERR_WRITE_AFTER_CLOSE', `${frame.type} frame to the ${this.role}`);
    }
    const size = Buffer.isBuffer(frame.payload) ? frame.payload.length : 0;
    if (this.queuedBytes + size > this.maxQueuedBytes) {
      throw new WebSocketProxyError('WSP_ERR_SEND_QUEUE_FULL',
        `${this.queuedBytes} bytes wait for the ${this.role}; ${size} more would pass the bound of ${this.maxQueuedBytes}`);
    }
    if (isData(frame)) {
      if (frame.type === 'continuation' || !frame.fin) {
        throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'send() takes whole messages (fin: true, not continuation)');
      }
      if (frame.rsv1) throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'RSV1 set without an extension');
      // Section 8.1: a peer fails the connection on text that is not UTF-8; refused here instead.
      if (frame.type === 'text' && !isValidUtf8(frame.payload)) {
        throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'text that is not UTF-8');
      }
      this.queuedBytes += size;
      if (this.midMessage || this.midFrame) {
        this.held.push(frame);
        return false;
      }
    } else {
      this.check(frame);
      if (this.midFrame) {
        if (this.heldControls.length >= MAX_HELD_CONTROLS) {
          throw new WebSocketProxyError('WSP_ERR_SEND_QUEUE_FULL',
            `${this.heldControls.length} control frames wait for the ${this.role} behind a frame written in pieces (MAX_HELD_CONTROLS)`);
        }
        this.queuedBytes += size;
        // Nothing can go inside a frame on the wire: it follows the frame being written in pieces.
        this.heldControls.push({ frame, ping: false });
        return false;
      }
      this.queuedBytes += size;
    }
    this.writeInjected(frame);
    return !this.full;
  }

  /**
   * Sends the proxy's own keepalive ping, in order with the frames before it. A control frame, it
   * goes at once, also inside a forwarded fragmented message: "Control frames (see Section 5.5) MAY be
   * injected in the middle of a fragmented message" (RFC 6455 section 5.4). It is the proxy's, not the
   * user's: `maxQueuedBytes` does not count it. The hooks' `onPingWritten` tells when it reached the
   * socket.
   *
   * @param frame - the ping
   * @returns false when the side takes no more frames (a close frame went, it failed, or it is done)
   */
  ping(frame: Frame): boolean {
    if (this.failure !== undefined || this.closeSent !== undefined || this.isDisposed) return false;
    if (this.midFrame) {
      this.heldControls.push({ frame, ping: true });
      return true;
    }
    // One callback per ping (every pingInterval at most), none per connection.
    const ok = this.writable.write(frame, (err) => {
      if (!err) this.hooks.onPingWritten?.(this.role);
    });
    if (!ok) this.blocked = true;
    return true;
  }

  /**
   * Resolves once injected frames may go on ({@link Outbox.full} is false), or once the side is done.
   */
  whenDrained(): Promise<void> {
    if (!this.full || this.isDisposed || this.failure !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Sends a close frame unless one was sent already.
   *
   * @param code - the status code, or undefined for an empty close
   * @param reason - the reason (cut to fit)
   * @returns whether a close frame was sent now
   */
  sendClose(code: number | undefined, reason: string | Buffer = ''): boolean {
    if (this.closeSent !== undefined || this.failure !== undefined || this.isDisposed || this.writable.destroyed) return false;
    const frame = closeFrame(code, code === undefined ? undefined : reason);
    if (this.midFrame) {
      // It goes after the last piece of the frame being written (see abortFrame when that never comes).
      this.pendingClose ??= frame;
      return true;
    }
    this.write(frame);
    return true;
  }

  /** Whether a forwarded frame is being written in pieces and its last piece has not come yet. */
  get unfinishedFrame(): boolean {
    return this.midFrame;
  }

  /**
   * The frame being written in pieces can never be finished (its source failed or ended mid-frame):
   * no other frame, not even a close, can follow the bytes already sent, so the side's connection is
   * dropped (its socket destroyed; the proxy sees that side lost). Nothing is reported from here: the
   * source's own failure is what ends the connection.
   */
  abortFrame(): void {
    if (!this.midFrame) return;
    this.midFrame = false;
    this.heldControls.length = 0;
    this.pendingClose = undefined;
    this.failure ??= new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED', `a frame to the ${this.role} was cut: its source ended mid-frame`);
    this.writable.socket.destroy();
    this.hooks.onFrameAborted?.(this.role);
  }

  /** Stops waiting and listening; called once the proxy is done with this side. */
  dispose(): void {
    this.isDisposed = true;
    this.clearTimer();
    this.writable.off('drain', writableOnDrain);
    this.writable.off('close', writableOnClose);
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting !== undefined) waiting(this.failure ?? new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
    this.wakeDrainWaiters();
  }

  /** Checks what the writable would reject, so that a bad frame fails the direction, not the side. */
  private check(frame: Frame): void {
    // The writable's own rules, applied first (RSV1 only where permessage-deflate was negotiated).
    checkSendable(frame, this.midMessage, this.allowRsv1);
    if (!isData(frame)) {
      wirePayload(frame);
      return;
    }
    if (frame.type !== 'continuation') this.compressedMessage = frame.rsv1;
    // Compressed text cannot be checked here: the proxy checked it before compressing it
    // (checkPlainText), or it passes through from a peer the receiver validates after inflating.
    if (!this.compressedMessage) this.checkPlainText(frame);
  }

  /**
   * The UTF-8 check of {@link Outbox.forward} for user code's text, applied to a frame before the
   * proxy compresses it (the compressed frame is then not checked again).
   *
   * @param frame - an uncompressed data frame about to be compressed for this side
   * @throws WebSocketProxyError `WSP_ERR_INVALID_FRAME` for text that is not UTF-8
   */
  checkPlainText(frame: Frame): void {
    const utf8 = this.utf8;
    if (utf8 === undefined) return;
    if (frame.type !== 'continuation') this.textMessage = frame.type === 'text';
    // "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is not,
    // in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_" (section
    // 8.1): text user code made must not reach a peer that would then fail.
    if (this.textMessage && !(utf8.write(frame.payload) && (!frame.fin || utf8.end()))) {
      utf8.reset();
      throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'text that is not UTF-8');
    }
    if (frame.fin) utf8.reset();
  }

  private write(frame: Frame, owned = false): boolean {
    if (isData(frame)) {
      const partial = frame.partial;
      if (partial === undefined || partial.offset === 0) this.midMessage = !frame.fin;
      if (partial !== undefined) this.midFrame = partial.offset + frame.payload.length < partial.length;
    } else if (frame.type === 'close') {
      this.closeSent = frame;
      this.held.length = 0;
    }
    // Past the writer's queue when nothing waits in it (the same bytes, without a callback and a tick).
    let ok = this.writable.writeNow(frame, owned);
    if (frame.type === 'close') {
      // Reported once written: the proxy may end the writable in response.
      this.hooks.onCloseSent(this.role, frame);
      return ok;
    }
    if (this.midFrame) return ok;
    if (this.heldControls.length > 0 || this.pendingClose !== undefined) ok = this.writeHeldControls() && ok;
    if (this.closeSent === undefined && !this.midMessage && this.held.length > 0) {
      // The forwarded message ended: injected messages that waited for it go now, in order.
      const held = this.held.splice(0);
      for (const message of held) ok = this.writeInjected(message);
    }
    return ok;
  }

  /** Writes what waited for the end of a frame written in pieces: control frames, then a close. */
  private writeHeldControls(): boolean {
    let ok = true;
    const controls = this.heldControls.splice(0);
    for (const { frame, ping } of controls) ok = ping ? this.ping(frame) && !this.blocked : this.writeInjected(frame);
    const close = this.pendingClose;
    this.pendingClose = undefined;
    if (close !== undefined) ok = this.write(close);
    return ok;
  }

  private writeInjected(frame: Frame): boolean {
    if (frame.type === 'close') return this.write(frame);
    const size = frame.payload.length;
    const ok = this.writable.write(frame, () => {
      this.queuedBytes -= size;
      this.wakeDrainWaiters();
    });
    if (!ok) this.blocked = true;
    return ok;
  }

  private wakeDrainWaiters(): void {
    if (this.drainWaiters.length === 0) return;
    if (this.full && !this.isDisposed && this.failure === undefined) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
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

  /** @internal The writable drained. */
  release(): void {
    this.blocked = false;
    this.clearTimer();
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting !== undefined) waiting();
    this.wakeDrainWaiters();
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.clearTimer();
    const waiting = this.waiting;
    this.waiting = undefined;
    this.hooks.onFailure(this.role, error);
    if (waiting !== undefined) waiting(error);
    this.wakeDrainWaiters();
  }

  /** @internal The writable closed: no frame can reach the side any more. */
  gone(): void {
    if (!this.isDisposed) this.fail(new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
  }

  private clearTimer(): void {
    if (this.sendTimer !== undefined) {
      clearTimeout(this.sendTimer);
      this.sendTimer = undefined;
    }
  }
}

interface Tagged {
  [kOutbox]: Outbox;
}

function writableOnDrain(this: Tagged): void {
  this[kOutbox].release();
}

function writableOnClose(this: Tagged): void {
  this[kOutbox].gone();
}

/** What a {@link Forwarder} needs from its proxy. */
export interface ForwarderContext {
  /** The side frames come from. */
  readonly from: ProxyRole;
  /** The outbox of the other side. */
  readonly to: Outbox;
  /**
   * Whether the frames reaching this stage are the proxy's alone: no user code saw them (no
   * `onFrame`, no user stages on the direction) and none will. Their payloads are then handed over
   * to the writer ({@link transferPayload}), which may mask them in place. Never set it when user
   * code can hold a payload: "never mutate a payload buffer user code may hold" is enforced here.
   * @defaultValue false
   */
  readonly ownsPayloads?: boolean;
  /**
   * The destination's permessage-deflate hop when the proxy compresses what it forwards there
   * (after `onFrame`): messages whose first frame has at least `threshold` bytes are compressed.
   * @defaultValue undefined (frames go as they are)
   */
  readonly deflate?: DeflateHop;
  /**
   * Sees every frame after `onInput` and before `onFrame` (see {@link FrameObserver}): an internal
   * hook, the inspector's. Set it only with `ownsPayloads` false.
   * @defaultValue undefined (none)
   */
  readonly observer?: FrameObserver;
  /**
   * The observer threw or rejected: it is detached from the direction (called once).
   * @defaultValue nothing is reported
   */
  onObserverError?(error: Error): void;
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
export class Forwarder extends Writable implements ObserverHolder {
  /** The frame being processed, and what waits for its hand-over (see `afterCurrent`). */
  private readonly current = new CurrentFrame();
  /** Whether the open message is being compressed (see {@link ForwarderContext.deflate}). */
  private compressing = false;
  /** The direction's observer, until it fails. */
  private observer: FrameObserver | undefined;

  /** @param context - the proxy's side of the contract */
  constructor(private readonly context: ForwarderContext) {
    super({ objectMode: true, highWaterMark: 1 });
    this.observer = context.observer;
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

  /** Whether a frame is between its arrival and its hand-over to the outbox. */
  get busy(): boolean {
    return this.current.active;
  }

  /**
   * Runs `action` right after the frame being processed is handed over ("forward this frame, then
   * close"), or now when no frame is being processed.
   *
   * @param action - what to run
   */
  afterCurrent(action: () => void): void {
    this.current.after(action);
  }

  /** @internal */
  override _write(frame: Frame, _encoding: string, callback: Callback): void {
    this.context.onInput(frame);
    this.current.begin();
    const held = this.observer === undefined ? undefined : observeFrame(this, this.observer, frame, this.context.from);
    if (held !== undefined) {
      // Held (a breakpoint): the direction waits, in order, as for an async onFrame.
      held.then((out) => {
        if (out === null) this.settle(callback);
        else this.process(out, callback);
      });
      return;
    }
    this.process(frame, callback);
  }

  /** A frame past the observer: `onFrame`, then on to the outbox. */
  private process(frame: Frame, callback: Callback): void {
    const context = this.context;
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
        (err: unknown) => this.settle(callback, toError(err)),
      );
    } else {
      this.apply(frame, result, callback);
    }
  }

  /** @internal */
  override _destroy(err: Error | null, callback: (error: Error | null) => void): void {
    // The direction is over: a frame it was relaying in pieces can never be finished.
    if (this.context.to.unfinishedFrame) this.context.to.abortFrame();
    this.current.end();
    callback(err);
  }

  /**
   * @internal {@link ObserverHolder}: the observer failed (see `observeFrame`); it sees no more
   * frames of this direction, which goes on without it (a debugging hook must not end the
   * connections it shows, nor hold them).
   */
  detachObserver(err: Error): void {
    if (this.observer === undefined) return;
    this.observer = undefined;
    this.context.onObserverError?.(err);
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
    const hop = this.context.deflate;
    if (hop !== undefined && isData(frame)) {
      this.compress(hop, frame, callback);
      return;
    }
    this.handOver(frame, callback);
  }

  /**
   * Compresses a data frame for the destination, keeping `busy` (and so `afterCurrent` actions)
   * until it is handed over. "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
   * frames and non-first fragments of a data message" (RFC 7692 section 6.1): RSV1 goes on the first
   * frame only, and whether a message is compressed is decided there.
   */
  private compress(hop: DeflateHop, frame: Frame, callback: Callback): void {
    const first = frame.type !== 'continuation';
    if (first) this.compressing = frame.payload.length >= hop.threshold;
    if (!this.compressing) {
      this.handOver(frame, callback);
      return;
    }
    try {
      this.context.to.checkPlainText(frame);
    } catch (err) {
      this.settle(callback, err as Error);
      return;
    }
    if (frame.fin) this.compressing = false;
    hop.deflater().deflate(frame.payload, frame.fin).then(
      // The compressed payload is the proxy's own: the writer may mask it in place.
      (payload) => this.handOver(transferPayload({ type: frame.type, fin: frame.fin, payload, rsv1: first }), callback),
      (err: Error) => this.settle(callback, err),
    );
  }

  private handOver(frame: Frame, callback: Callback): void {
    // Only a large data payload, or a piece of a frame, is worth handing over (see MASK_IN_PLACE_MIN).
    if (this.context.ownsPayloads === true && (frame.partial !== undefined || frame.payload.length >= MASK_IN_PLACE_MIN)
      && this.context.onFrame === undefined && isData(frame)) {
      transferPayload(frame);
    }
    this.context.to.forward(frame, (err) => this.settle(callback, err ?? undefined));
    // What was deferred while this frame was processed goes right after it, before its callback.
    this.current.end();
  }

  private settle(callback: Callback, err?: Error): void {
    this.current.end();
    callback(err);
  }

}
