/**
 * The direct path of a direction that no user code reads: no `aggregateFragments`, no `onFrame`, no
 * stage, no inflating or deflating (an internal observer, the inspector's, may watch and hold frames). Its frames go from the source's parser to the destination's
 * {@link Outbox} in the same call, without the stream stages between them (a `pipeline()`, the
 * `Forwarder`'s `Writable`, their queues, callbacks and ticks). The streams themselves stay: the
 * source's `FrameReadable` hands its frames to the link (its sink) instead of its queue, and still
 * ends or fails as a stream; the destination's `FrameWritable` still checks and writes every frame.
 *
 * It keeps the `Forwarder`'s contract with the proxy, frame for frame: the same accounting, the
 * same handling of close frames, one frame at a time handed to the outbox, the reading stopped while
 * the destination's socket is full (so the source's socket pauses), and the direction's end reported
 * as `pipeline()` would (after the last frame was taken by the outbox; at once on a failure).
 *
 * @packageDocumentation
 */
import { finished } from 'readable-stream';
import type { Frame } from '../frame.js';
import { MASK_IN_PLACE_MIN } from '../protocol/encode.js';
import type { FrameSink } from '../streams/frame-readable.js';
import { CurrentFrame } from './current-frame.js';
import { FORWARD_OWNED, FORWARD_PARSED } from './forwarder.js';
import { type FrameObserver, type ObserverHolder, observeFrame } from './options.js';
import type { Side } from './side.js';

/** What a {@link Link} reports to its proxy: the methods the `Forwarder` reaches through its context. */
export interface LinkOwner {
  /** A frame reached the end of its direction (for a frame in pieces: each piece). */
  onLinkFrame(from: Side, frame: Frame): void;
  /** A close frame is about to be forwarded: false keeps it from being forwarded. */
  onLinkClose(from: Side, to: Side, frame: Frame): boolean;
  /** The direction is over: its source ended (`err` undefined) or it failed. */
  onLinkEnd(from: Side, to: Side, err: Error | undefined): void;
  /** The direction's observer threw or rejected: it was detached (called once). */
  onLinkObserverError(from: Side, err: Error): void;
}

type Callback = (error?: Error | null) => void;

/** Whether a forwarded frame's payload is worth handing over to the writer (see MASK_IN_PLACE_MIN). */
function worthHandingOver(frame: Frame): boolean {
  return (frame.partial !== undefined || frame.payload.length >= MASK_IN_PLACE_MIN)
    && (frame.type === 'binary' || frame.type === 'text' || frame.type === 'continuation');
}

/** Where a {@link Link} stands with the frame it handed to the outbox. */
const IDLE = 0;
/** In `Outbox.forward()`: its callback, if it comes now, is its answer. */
const FORWARDING = 1;
/** The outbox took the frame but the destination is full: the reading waits for its callback. */
const WAITING = 2;
/** Over: its end was reported, or it was destroyed. */
const DONE = 3;
/** The observer holds the frame (a breakpoint): the reading waits for what it gives back. */
const HOLDING = 4;

/**
 * The direct path of one direction (see the module's comment). Made by the proxy's lifecycle in
 * place of a `pipeline()` to a `Forwarder`; it starts reading on the next tick.
 */
export class Link implements FrameSink, ObserverHolder {
  /** The frame being processed, and what waits for its hand-over (see `afterCurrent`). */
  private readonly current = new CurrentFrame();
  private state = IDLE;
  /** The outbox's answer while `FORWARDING`: null (taken) or the error. */
  private answer: Error | null | undefined;
  /** Whether the source ended (normally) while a frame waited: reported once it is taken. */
  private sourceEnded = false;
  /** Whether a burst of writes to the destination is open (see FrameWritable.beginBatch). */
  private batching = false;
  /** The outbox's callback: one per link, not one per frame. */
  private readonly onForwarded: Callback;
  /** The direction's observer (the inspector's), until it fails. */
  private observer: FrameObserver | undefined;
  /**
   * Whether the payloads are the proxy's alone, so that the writer may mask them in place: no
   * observer may read or keep them.
   */
  private readonly ownsPayloads: boolean;

  /**
   * @param from - the side frames come from (its reader must not have been read yet)
   * @param to - the side they go to
   * @param owner - the proxy
   * @param observer - sees each frame before it goes on, and may hold it (see `FrameObserver`)
   */
  constructor(
    private readonly from: Side,
    private readonly to: Side,
    private readonly owner: LinkOwner,
    observer?: FrameObserver,
  ) {
    this.observer = observer;
    this.ownsPayloads = observer === undefined;
    this.onForwarded = (err) => this.forwarded(err ?? null);
    from.readable.setSink(this);
    finished(from.readable as unknown as NodeJS.ReadableStream, (err) => this.sourceDone(err ?? undefined));
    // Flowing: the reader ends as a stream ('end'), and its first read comes on the next tick.
    from.readable.resume();
  }

  /** @internal Sink: one frame from the source's parser. */
  write(frame: Frame): boolean {
    if (this.state === DONE) return true;
    this.owner.onLinkFrame(this.from, frame);
    this.current.begin();
    const held = this.observer === undefined ? undefined : observeFrame(this, this.observer, frame, this.from.role);
    if (held !== undefined) {
      // Held (a breakpoint): the direction waits, in order, as it would for an async onFrame.
      this.state = HOLDING;
      held.then((out) => this.afterHold(frame, out));
      return false;
    }
    return this.pass(frame, false);
  }

  /**
   * Hands a frame to the outbox (a close frame only if the proxy forwards it).
   *
   * @param frame - the frame
   * @param changed - whether the observer gave another frame than the reader's (checked then)
   * @returns whether the reader may go on
   */
  private pass(frame: Frame, changed: boolean): boolean {
    const from = this.from;
    const to = this.to;
    if (frame.type === 'close' && !this.owner.onLinkClose(from, to, frame)) {
      this.current.end();
      return true;
    }
    // No user code sees this direction's frames: their payloads are the proxy's, so the writer may
    // mask them in place (never done where user code, or an observer, may hold a payload).
    const owned = this.ownsPayloads && worthHandingOver(frame);
    if (!this.batching) {
      this.batching = true;
      to.writable.beginBatch();
    }
    this.state = FORWARDING;
    this.answer = undefined;
    to.outbox.forward(frame, this.onForwarded, (changed ? 0 : FORWARD_PARSED) | (owned ? FORWARD_OWNED : 0));
    // What was deferred while this frame was processed goes right after it.
    this.current.end();
    if (this.state !== FORWARDING) return false;
    const answer = this.answer;
    if (answer === undefined) {
      this.state = WAITING;
      return false;
    }
    this.state = IDLE;
    if (answer !== null) {
      this.fail(answer);
      return false;
    }
    return true;
  }

  /** The observer gave back the frame it held (`out`, or null to drop it): the direction goes on. */
  private afterHold(frame: Frame, out: Frame | null): void {
    if (this.state !== HOLDING) {
      // Over meanwhile (the source failed, or the proxy is done with the direction).
      this.current.end();
      return;
    }
    this.state = IDLE;
    let more = true;
    if (out === null) this.current.end();
    else more = this.pass(out, out !== frame);
    // Outside the reader's burst: what this frame's write corked goes now.
    this.flush();
    if (more && this.state === IDLE) this.goOn();
  }

  /** The frame that stopped the reading is taken: the direction ends if its source did, else reads on. */
  private goOn(): void {
    if (this.sourceEnded) this.report(undefined);
    else this.from.readable.resumeSink();
  }

  /**
   * @internal {@link ObserverHolder}: the observer failed; it sees no more frames of this
   * direction, which goes on without it (a debugging hook must not end the connections it shows,
   * nor hold them).
   */
  detachObserver(err: Error): void {
    if (this.observer === undefined) return;
    this.observer = undefined;
    this.owner.onLinkObserverError(this.from, err);
  }

  /** @internal Sink: the burst of frames at hand is over. */
  flush(): void {
    if (!this.batching) return;
    this.batching = false;
    this.to.writable.endBatch();
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

  /**
   * The proxy is done with the direction (its socket closed): a frame it was relaying in pieces can
   * never be finished, and nothing more is reported.
   */
  destroy(): void {
    this.state = DONE;
    this.abortUnfinished();
    this.flush();
    this.current.end();
  }

  /** The outbox's answer to a frame: now (in `forward()`), or later when the destination drained. */
  private forwarded(err: Error | null): void {
    if (this.state === FORWARDING) {
      this.answer = err;
      return;
    }
    if (this.state !== WAITING) return;
    this.state = IDLE;
    if (err !== null) this.fail(err);
    else this.goOn();
  }

  /**
   * The destination takes no more frames: the direction fails with its error, as the `Forwarder`
   * would have (the reader is destroyed with it, an error that is not the reader's own).
   */
  private fail(err: Error): void {
    if (this.sourceEnded) {
      this.report(err);
      return;
    }
    this.from.stageError ??= err;
    this.from.readable.destroy(err);
  }

  /** The source's stream is over: ended after its last frame, or failed or destroyed (`err`). */
  private sourceDone(err: Error | undefined): void {
    if (this.state === DONE) return;
    if (err !== undefined) {
      // A failed source ends the direction at once (pipeline() destroys its last stage).
      this.report(err);
      return;
    }
    this.sourceEnded = true;
    // Otherwise the frame waiting for the destination (or held by the observer) goes first.
    if (this.state !== WAITING && this.state !== HOLDING) this.report(undefined);
  }

  private report(err: Error | undefined): void {
    if (this.state === DONE) return;
    this.state = DONE;
    // The direction is over: a frame it was relaying in pieces can never be finished (the
    // Forwarder's stream destroys itself once finished, with the same effect).
    this.abortUnfinished();
    this.flush();
    // A frame the observer still holds goes nowhere now: what waited for it runs.
    this.current.end();
    this.owner.onLinkEnd(this.from, this.to, err);
  }

  private abortUnfinished(): void {
    if (this.to.outbox.unfinishedFrame) this.to.outbox.abortFrame();
  }

}
