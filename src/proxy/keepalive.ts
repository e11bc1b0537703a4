/**
 * Keepalive of one side: when the proxy pings it, how it knows its own pongs, and when the side is
 * given up for silent. The deadlines are read by the connection's one timer (`Lifecycle`); nothing
 * here arms a timer.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { type Frame, pingFrame } from '../frame.js';
import type { FrameReadable } from '../streams/frame-readable.js';

/**
 * What starts the payload of every ping the proxy sends: a fixed tag and a random token drawn once per
 * process, so that a ping a peer sends (and the pong answering it, which is forwarded) cannot carry it
 * by chance. The ping's number follows, in decimal.
 */
export const KEEPALIVE_PREFIX: Buffer = Buffer.from(`wsp-keepalive:${randomBytes(6).toString('hex')}:`, 'latin1');

/** What the timer should do for a side's keepalive. */
export type KeepaliveAction = 'ping' | 'lost' | undefined;

const IDLE = 0;
/** A ping was handed to the side's Outbox and has not reached its socket yet. */
const QUEUED = 1;
/** A ping reached the side's socket; an answer (any byte) is awaited. */
const WAITING = 2;

/**
 * The keepalive state of one side. `lastFrameAt` (the side's last frame at the end of its direction,
 * which the lifecycle already keeps) and the reader's counters are read, never copied per frame: the
 * data path pays nothing for keepalive.
 */
export class Keepalive {
  private state: typeof IDLE | typeof QUEUED | typeof WAITING = IDLE;
  /** Pings sent so far: the number in the last ping's payload. */
  private sent = 0;
  /** Since when the side counts as heard from, besides its last frame: start, own pong, bytes seen. */
  private heardAt = 0;
  /** When the awaited ping reached the socket, or when the wait started over. */
  private since = 0;
  private bytesAtPing = 0;
  private stallsAtPing = 0;

  /**
   * @param interval - `pingInterval` of the side, in ms
   * @param timeout - `pongTimeout` of the side, in ms
   * @param reader - the side's reader, whose byte and stall counters tell whether it was heard from
   */
  constructor(
    readonly interval: number,
    readonly timeout: number,
    private readonly reader: FrameReadable,
  ) {}

  /** The connection opened (`execute()`): the interval counts from now. */
  start(now: number): void {
    this.heardAt = now;
  }

  /**
   * When the next thing is due: a ping `interval` after the side was last heard from, or the end of
   * the wait for its answer; Infinity while a ping waits to reach the socket.
   *
   * @param lastFrameAt - when the side's last frame reached the end of its direction
   */
  deadline(lastFrameAt: number): number {
    if (this.state === IDLE) return Math.max(this.heardAt, lastFrameAt) + this.interval;
    if (this.state === WAITING) return this.since + this.timeout;
    return Infinity;
  }

  /**
   * What is due at `now`; moves the state on. `'ping'`: send {@link Keepalive.ping}'s frame now.
   * `'lost'`: nothing came for `timeout` while the side was read.
   *
   * @param now - the time
   * @param lastFrameAt - when the side's last frame reached the end of its direction
   */
  check(now: number, lastFrameAt: number): KeepaliveAction {
    if (this.state === IDLE) {
      return now >= Math.max(this.heardAt, lastFrameAt) + this.interval ? 'ping' : undefined;
    }
    if (this.state !== WAITING || now < this.since + this.timeout) return undefined;
    const reader = this.reader;
    if (reader.bytesReceived !== this.bytesAtPing) {
      // Something came after the ping (a frame, or part of a long one): the side is there. It was
      // heard from after the ping went, at the latest; a whole frame moved lastFrameAt already.
      this.state = IDLE;
      this.heardAt = Math.max(this.heardAt, this.since);
      return undefined;
    }
    if (!reader.reading || reader.stalls !== this.stallsAtPing) {
      // The proxy stopped reading the side for a while (its frames wait for a slow peer): its answer
      // may be waiting unread. The wait starts over; a slow peer is sendTimeout's business.
      this.since = now;
      this.stallsAtPing = reader.stalls;
      return undefined;
    }
    return 'lost';
  }

  /**
   * A wall clock set back leaves timestamps in the future: they are taken as now (see the
   * lifecycle's `clampTimestamps`).
   */
  clamp(now: number): void {
    if (this.heardAt > now) this.heardAt = now;
    if (this.since > now) this.since = now;
  }

  /** The next ping: its payload is the prefix and its number. Call on `'ping'`. */
  ping(): Frame {
    this.state = QUEUED;
    this.sent++;
    return pingFrame(Buffer.concat([KEEPALIVE_PREFIX, Buffer.from(String(this.sent), 'latin1')]));
  }

  /**
   * The ping reached the side's socket: its answer is awaited from now on.
   *
   * @param now - the time
   */
  written(now: number): void {
    if (this.state !== QUEUED) return;
    this.state = WAITING;
    this.since = now;
    this.bytesAtPing = this.reader.bytesReceived;
    this.stallsAtPing = this.reader.stalls;
  }

  /**
   * Whether a pong from the side answers one of the proxy's pings; if so, the side is heard from.
   * "A Pong frame sent in response to a Ping frame must have identical 'Application data' as found in
   * the message body of the Ping frame being replied to" (RFC 6455 section 5.5.3), so its payload
   * is the prefix and the number of a ping already sent.
   *
   * @param payload - the pong's payload
   * @param now - the time
   */
  answers(payload: Buffer, now: number): boolean {
    const start = KEEPALIVE_PREFIX.length;
    const length = payload.length;
    if (length <= start || length > start + 15 || payload.compare(KEEPALIVE_PREFIX, 0, start, 0, start) !== 0) return false;
    let n = 0;
    for (let i = start; i < length; i++) {
      const digit = payload[i]! - 0x30;
      if (digit < 0 || digit > 9) return false;
      n = n * 10 + digit;
    }
    if (n < 1 || n > this.sent) return false;
    // The answer to the last ping ends the wait, even if its write was not reported yet.
    if (this.state === WAITING || n === this.sent) this.state = IDLE;
    this.heardAt = now;
    return true;
  }
}
