/**
 * One side of a proxied connection: its socket, its reader and writer, its Outbox, and its place in
 * the close handshake, as one state.
 *
 * @packageDocumentation
 */
import type { Duplex } from 'node:stream';
import { isWebSocketProxyError, type WebSocketProxyError } from '../errors.js';
import type { Frame } from '../frame.js';
import { FrameReadable } from '../streams/frame-readable.js';
import { FrameWritable } from '../streams/frame-writable.js';
import type { DeflateHop } from './deflate-hop.js';
import { type Forwarder, Outbox, type OutboxHooks } from './forwarder.js';
import type { Link } from './link.js';
import { Keepalive } from './keepalive.js';
import type { ProxyRole } from './options.js';

/** A close frame seen on the wire: its code (undefined for an empty close) and reason. */
export interface CloseInfo {
  code: number | undefined;
  reason: string;
}

/** What happened on one side of a proxied connection. */
export interface SideSummary {
  /** The close frame this side sent, if it sent one. */
  closeReceived: CloseInfo | undefined;
  /** The close frame the proxy sent to this side, if it sent one. */
  closeSent: CloseInfo | undefined;
  /** Frames received from this side (whole messages when aggregating), as they reached `onFrame`. */
  frames: number;
  /** Payload bytes of those frames. */
  bytes: number;
  /**
   * Whether the connection to this side ended without a close handshake (TCP loss, send timeout,
   * keepalive timeout, `destroy()`).
   */
  aborted: boolean;
}

/** A side's summary before anything happened on it. */
export function emptySummary(): SideSummary {
  return { closeReceived: undefined, closeSent: undefined, frames: 0, bytes: 0, aborted: false };
}

/**
 * Where a side stands in the close handshake (RFC 6455 section 7):
 *
 * - `open`: no close frame either way;
 * - `closeSent`: the proxy sent it a close frame and waits for its reply;
 * - `closeReceived`: it sent a close frame, which has not been answered yet;
 * - `closed`: both close frames went, or the connection is gone: nothing more is exchanged.
 */
export type SideState = 'open' | 'closeSent' | 'closeReceived' | 'closed';

/** What a side reports to the connection it belongs to (the lifecycle). */
export interface SideOwner {
  /** The side's reader read its close frame (before any stage saw it). */
  onCloseFrameRead(side: Side, frame: Frame): void;
  /** The side's socket closed. */
  onSocketClose(side: Side): void;
  /** A close frame was handed to the side's writer. */
  onCloseSent(side: Side, frame: Frame): void;
  /** The side stopped taking bytes (socket gone, `sendTimeout`). */
  onSendFailure(side: Side, error: Error): void;
  /** The proxy's keepalive ping reached the side's socket: its answer is awaited from now on. */
  onPingWritten(side: Side): void;
  /** The side's reader parsed a violation: the frames before it still go on down the direction. */
  onViolation(side: Side): void;
}

/** Settings of a side, from the proxy's options. */
export interface SideSettings {
  maxFrameSize: number;
  maxMessageSize: number | undefined;
  maxFragments: number;
  validateUtf8: boolean;
  /** Whether frames reaching the Outbox may have been made or changed by user code. */
  userCode: boolean;
  closeTimeout: number;
  sendTimeout: number | undefined;
  maxSendQueueSize: number;
  /** Keepalive: ms of silence before the proxy pings the side, or undefined for no pings. */
  pingInterval: number | undefined;
  /** Keepalive: ms the pinged side may stay silent before it is treated as gone. */
  pongTimeout: number | undefined;
  /** The side's permessage-deflate hop, when it negotiated one: RSV1 is then allowed both ways. */
  deflate: DeflateHop | undefined;
}

/**
 * Most bytes read (and discarded) from a side the proxy stopped reading, once its writer ended: enough
 * for its close reply and TCP close behind a few chunks it still had on their way; a side sending more
 * is cut off rather than read at full speed until `lingeringTimeout`.
 */
export const MAX_DISCARDED_BYTES = 256 * 1024;

const kSide = Symbol('side');

interface Tagged {
  [kSide]: Side;
}

/**
 * One side of a proxied connection. Its listeners are module-level functions that find the side
 * through a symbol (as ws's `socketOnData` does): an idle connection costs no closures.
 */
export class Side implements OutboxHooks {
  /** Where the side stands in the close handshake. */
  state: SideState = 'open';
  /** Whether its socket has closed. */
  socketClosed = false;
  readonly readable: FrameReadable;
  readonly writable: FrameWritable;
  readonly outbox: Outbox;
  readonly summary: SideSummary = emptySummary();
  /**
   * What writes to this side, once the directions run: the `Forwarder` at the end of the other
   * side's pipeline, or the direct path's `Link` when no user code reads that direction.
   */
  forwarder: Forwarder | Link | undefined;
  /**
   * The error the side's reader failed with on its own, or the violation it ended its output on
   * (see readableOnViolation).
   */
  readError: Error | undefined;
  /**
   * The error a later stage of this side's direction failed with first; pipeline() then destroys the
   * reader with it too, which is not the reader's failure.
   */
  stageError: Error | undefined;
  /** Whether this side's close frame was passed on to its peer (forwarded, or sent for it). */
  closeForwarded = false;
  /**
   * When the last frame from this side reached the proxy's last stage, or the proxy's close frame
   * went to it (ms since the epoch): what `lingeringTimeout` counts from.
   */
  lastFrameAt = 0;
  /** Since when `recvTimeout` counts for this side (its last frame, or its last log line). */
  recvMark = 0;
  /** When the proxy ended its writer while the socket was open (ms since the epoch), or 0. */
  endedAt = 0;
  /** Its keepalive, when the proxy pings this side (`pingInterval`). */
  readonly keepalive: Keepalive | undefined;
  /**
   * Whether the proxy stopped reading this side for good (it broke the protocol, a limit or a
   * stage's policy): its socket is paused, nothing more of it is parsed or forwarded.
   */
  readStopped = false;
  /**
   * The failure whose close frame this side is owed, while its peer's frames already on their way
   * still go to it first (the `relayFirst` endings of the lifecycle).
   */
  owedClose: WebSocketProxyError | undefined;
  /** When {@link Side.owedClose} was set (ms since the epoch): `lingeringTimeout` counts from here. */
  owedSince = 0;
  /**
   * When the reader parsed a violation (ms since the epoch; see `readable.violation`): the frames
   * before it get `lingeringTimeout` to go on down the direction before the side is failed anyway.
   */
  violationAt = 0;
  /** Whether the lifecycle handled that violation (when the direction ended, or at its deadline). */
  violationHandled = false;
  /** Bytes discarded from this side after its writer ended, once it was no longer read. */
  discarded = 0;
  /** The side's permessage-deflate hop, when it negotiated one. */
  readonly deflate: DeflateHop | undefined;

  /**
   * @param role - which side
   * @param socket - its socket, after the handshake
   * @param head - bytes read past the handshake
   * @param settings - limits and timeouts
   * @param owner - the connection the side reports to
   */
  constructor(
    readonly role: ProxyRole,
    readonly socket: Duplex,
    head: Buffer,
    settings: SideSettings,
    readonly owner: SideOwner,
  ) {
    const wireRole = role === 'client' ? 'server' : 'client';
    const allowRsv1 = settings.deflate !== undefined;
    this.deflate = settings.deflate;
    this.readable = new FrameReadable(socket, {
      role: wireRole,
      head,
      maxFrameSize: settings.maxFrameSize,
      maxMessageSize: settings.maxMessageSize,
      maxFragments: settings.maxFragments,
      validateUtf8: settings.validateUtf8,
      allowRsv1,
      // The frames parsed before a violation still go on down the direction (see readableOnViolation).
      endOnViolation: true,
      ...(settings.pingInterval === undefined ? {} : { consumePong: readableOnPong }),
    });
    this.writable = new FrameWritable(socket, { role: wireRole, closeTimeout: settings.closeTimeout, allowRsv1 });
    this.outbox = new Outbox(role, this.writable, settings.sendTimeout, this, {
      checkText: settings.userCode && settings.validateUtf8,
      maxQueuedBytes: settings.maxSendQueueSize,
      allowRsv1,
    });
    if (settings.pingInterval !== undefined) {
      this.keepalive = new Keepalive(settings.pingInterval, settings.pongTimeout ?? settings.pingInterval, this.readable);
    }
    (this.readable as unknown as Tagged)[kSide] = this;
    (this.writable as unknown as Tagged)[kSide] = this;
    (socket as unknown as Tagged)[kSide] = this;
    this.readable.on('error', readableOnError);
    this.readable.on('closeFrame', readableOnCloseFrame);
    this.readable.on('violation', readableOnViolation);
    this.writable.on('error', writableOnError);
    socket.once('close', socketOnClose);
  }

  /** Whether the proxy stopped writing to this side (its writer ended). */
  get ending(): boolean {
    return this.outbox.disposed;
  }

  /** @internal Outbox hook. */
  onCloseSent(_role: ProxyRole, frame: Frame): void {
    this.owner.onCloseSent(this, frame);
  }

  /** @internal Outbox hook. */
  onFailure(_role: ProxyRole, error: Error): void {
    this.owner.onSendFailure(this, error);
  }

  /**
   * @internal Outbox hook: a frame to this side was cut mid-way and its socket destroyed, so its
   * connection ends without a close handshake (whatever phase the connection is in).
   */
  onFrameAborted(): void {
    if (this.state !== 'closed') this.summary.aborted = true;
  }

  /** @internal Outbox hook. */
  onPingWritten(): void {
    this.keepalive?.written(Date.now());
    this.owner.onPingWritten(this);
  }

  /**
   * The proxy is done writing to this side: its Outbox stops, its writer ends (a close frame already
   * went, or the connection is being failed), and, when nothing reads this side any more, its bytes
   * flow away so that its TCP close is seen.
   *
   * @param reading - whether a pipeline still reads this side's frames
   */
  end(reading: boolean): void {
    if (this.outbox.disposed) return;
    this.outbox.dispose();
    if (!this.writable.destroyed && !this.writable.writableEnded) this.writable.end();
    if (this.readStopped) {
      // Read again only to see its TCP close, and within a bound (see MAX_DISCARDED_BYTES).
      this.socket.on('data', socketOnDiscard);
      this.socket.resume();
    } else if (!reading) {
      this.readable.resume();
    } else if (this.readable.destroyed) {
      this.socket.resume();
    }
  }

  /**
   * Stops reading this side for good: its reader is done, and its socket is paused rather than read
   * into the void, so that what it still sends waits in its own buffers (TCP flow control slows it
   * down) instead of costing the proxy CPU. Idempotent.
   */
  stopReading(): void {
    if (this.readStopped) return;
    this.readStopped = true;
    // A reader stopped by a violation parses nothing more already; what it parsed before still goes on.
    if (!this.readable.destroyed && this.readable.violation === undefined) this.readable.destroy();
    this.socket.pause();
  }

  /** Releases everything once the socket closed. */
  dispose(): void {
    this.outbox.dispose();
    this.readable.destroy();
    this.forwarder?.destroy();
    if (!this.writable.destroyed) this.writable.destroy();
    this.deflate?.close();
  }
}

/** Tells the reader's own failures from those pipeline() passes back to it (see `stageError`). */
function readableOnError(this: Tagged, err: Error): void {
  const side = this[kSide];
  if (err !== side.stageError) {
    side.readError ??= err;
    // A violation or a limit (1006 is a lost connection): the reader already parses nothing more,
    // and its socket stops here, before the reader's own discarding of later bytes gets going.
    if (isWebSocketProxyError(err) && err.closeCode !== 1006) side.stopReading();
  }
}

/**
 * The reader parsed a violation or a limit (or a frame cut by the end of input): it parses nothing
 * more and ends its output after the frames before it (`endOnViolation`), which still go on down the
 * direction, as the side's peer would have processed them without a proxy. The side is no longer
 * read from now; the lifecycle fails it once its direction has ended (`onDirectionEnd`).
 */
function readableOnViolation(this: Tagged, err: WebSocketProxyError): void {
  const side = this[kSide];
  side.readError ??= err;
  if (err.closeCode !== 1006) side.stopReading();
  side.violationAt = Date.now();
  side.owner.onViolation(side);
}

function readableOnCloseFrame(this: Tagged, frame: Frame): void {
  const side = this[kSide];
  side.owner.onCloseFrameRead(side, frame);
}

/** The reader's `consumePong`: the answers to the proxy's own pings go no further than the reader. */
function readableOnPong(this: FrameReadable, frame: Frame): boolean {
  const side = (this as unknown as Tagged)[kSide];
  return side.keepalive !== undefined && side.keepalive.answers(frame.payload, Date.now());
}

function writableOnError(): void {
  // The Outbox reports a side that takes no more bytes (onSendFailure); nothing else to do here.
}

/** What a side no longer read still sends, counted and dropped; past the bound it is cut off. */
function socketOnDiscard(this: Tagged, chunk: Buffer): void {
  const side = this[kSide];
  side.discarded += chunk.length;
  if (side.discarded > MAX_DISCARDED_BYTES) side.socket.destroy();
}

function socketOnClose(this: Tagged): void {
  const side = this[kSide];
  side.socketClosed = true;
  side.owner.onSocketClose(side);
}
