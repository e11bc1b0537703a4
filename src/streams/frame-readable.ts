/**
 * `FrameReadable`: a socket's bytes as a stream of validated `Frame` objects, with backpressure that
 * reaches the socket and memory bounded in bytes.
 *
 * @packageDocumentation
 */
import type { Duplex } from 'node:stream';
import { Readable } from 'readable-stream';
import { WebSocketProxyError } from '../errors.js';
import type { Frame } from '../frame.js';
import { FrameParser, type Role } from '../protocol/parser.js';

/** Default {@link FrameReadableOptions.maxFrameSize}: 16 MiB. */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;
/** Default {@link FrameReadableOptions.highWaterMark}, in frames. */
export const DEFAULT_READABLE_HIGH_WATER_MARK = 16;
/** Default {@link FrameReadableOptions.highWaterMarkBytes}: 1 MiB. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 1024 * 1024;
/**
 * Payload length from which {@link FrameReadableOptions.partialFrames} gives out an unfinished data
 * frame in pieces: 16 KiB. Smaller frames are cheaper to wait for than to relay piece by piece.
 */
export const PARTIAL_FRAME_MIN = 16 * 1024;
/** Longest frame header: 2 bytes, a 64-bit length and a masking key. */
const MAX_HEADER = 14;

/** Options of {@link FrameReadable}. */
export interface FrameReadableOptions {
  /**
   * Which end of the connection this reader is: `'server'` reads frames from a client (they MUST be
   * masked), `'client'` reads frames from a server (they MUST NOT be masked).
   */
  role: Role;
  /**
   * Bytes read past the HTTP upgrade (the `head` of Node's `'upgrade'` event), parsed before
   * anything read from the socket. They are copied, never modified.
   */
  head?: Buffer;
  /**
   * Largest payload of one data frame, in bytes; a frame whose header announces more fails with
   * `WSP_ERR_FRAME_TOO_LARGE` (1009) before any of its payload is buffered. Exactly the limit passes.
   * Control frames (at most 125 bytes) are never counted.
   * @defaultValue 16 MiB (16777216)
   */
  maxFrameSize?: number;
  /**
   * Most bytes held for one frame while waiting for the rest of it (header included); a frame that
   * cannot fit fails with `WSP_ERR_BUFFER_LIMIT` (1009) when its header is read.
   * @defaultValue max(maxFrameSize, 125) + 14 (any frame within maxFrameSize, and any control frame, fits)
   */
  maxBufferedBytes?: number;
  /**
   * Largest message, in payload bytes summed over its fragments (an unfragmented message is one
   * fragment); the frame that would exceed it fails with `WSP_ERR_MESSAGE_TOO_LARGE` (1009) when its
   * header is read, unless `maxFrameSize` fails it first. Exactly the limit passes.
   * @defaultValue Infinity (no limit beyond maxFrameSize per frame)
   */
  maxMessageSize?: number;
  /**
   * Most data frames in one message, empty fragments included, control frames never; one more fails
   * with `WSP_ERR_TOO_MANY_FRAGMENTS` (1009). Exactly the limit passes.
   * @defaultValue Infinity
   */
  maxFragments?: number;
  /**
   * Whether text payloads are validated as UTF-8, incrementally as their bytes arrive, inside a frame
   * and across fragments: invalid text fails (1007) before its frame completes. Close reasons are
   * always validated.
   * @defaultValue true
   */
  validateUtf8?: boolean;
  /**
   * Whether RSV1 may be set on the first frame of a data message, for a negotiated extension such as
   * permessage-deflate. Without it any RSV bit fails with `WSP_ERR_UNEXPECTED_RSV` (1002).
   * @defaultValue false
   */
  allowRsv1?: boolean;
  /**
   * Whether a data frame of at least {@link PARTIAL_FRAME_MIN} bytes that has not fully arrived is
   * pushed in pieces as its bytes arrive (`Frame.partial` set, see `PartialPayload`), for
   * cut-through forwarding: memory then stays bounded by the high-water marks whatever the frame
   * size. Limits still apply at the header, and text is still UTF-8 checked piece by piece. Only a
   * consumer that handles pieces (a `FrameWritable`) should ask for them.
   * @defaultValue false
   */
  partialFrames?: boolean;
  /**
   * Frames parsed ahead of the consumer before the socket is paused.
   * @defaultValue 16
   */
  highWaterMark?: number;
  /**
   * Payload bytes parsed ahead of the consumer before the socket is paused. Object-mode streams
   * count frames, so this is what bounds memory in bytes: at most this many bytes plus one frame
   * wait in the queue.
   * @defaultValue 1 MiB (1048576)
   */
  highWaterMarkBytes?: number;
  /**
   * Called with each pong frame read, before it is pushed, with `this` set to the reader (so that one
   * module-level function can serve every reader); returning true consumes the pong: it is never
   * pushed. A proxy takes the answers to its own pings out of the stream this way.
   * @defaultValue undefined (every pong is pushed)
   */
  consumePong?: (this: FrameReadable, frame: Frame) => boolean;
  /**
   * Whether a protocol violation, an exceeded limit or a frame cut by the end of input ends the
   * stream normally, after the frames parsed before it, instead of failing it. The error is then
   * announced by the `'violation'` event and kept in {@link FrameReadable.violation}, and the socket
   * is left paused (its owner decides what to do with what the peer still sends). For a consumer
   * that handles the failure itself and must not lose what its own pipeline still holds: in a
   * `pipeline()`, a failed source destroys every later stage, with whatever frames they still hold;
   * an ended one lets them finish. A proxy relays the peer's last valid frames this way before it
   * fails the peer, as an endpoint without a proxy would have processed them.
   * @defaultValue false (the stream fails with the error, after the frames queued before it)
   */
  endOnViolation?: boolean;
}

/**
 * A consumer that takes frames straight from the parser instead of through the stream's queue (see
 * {@link FrameReadable.setSink}): the proxy's direct path for a direction no user code reads.
 * @internal
 */
export interface FrameSink {
  /**
   * Takes the next frame, in order.
   *
   * @returns false to be given no more until {@link FrameReadable.resumeSink}
   */
  write(frame: Frame): boolean;
  /** The frames parsed from the bytes at hand were all given (a burst is over). */
  flush(): void;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === Infinity) return value;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`options.${name} must be an integer >= 1 or Infinity`);
  }
  return value;
}

/**
 * Reads a socket (or any byte `Duplex`) and emits one {@link Frame} per wire frame, in order, control
 * frames included, each validated against RFC 6455 section 5.
 *
 * - Payloads come out unmasked. A frame that arrived within one socket chunk is a view of that chunk;
 *   one that spanned chunks is copied once; with `partialFrames`, a large one that has not fully
 *   arrived comes out in pieces, views of the chunks as they arrive (see `PartialPayload`).
 * - A protocol violation or exceeded limit fails the stream with a {@link WebSocketProxyError}
 *   carrying `code` and `closeCode`, in order: every frame parsed before the violation is still
 *   given out first (those already queued when it was parsed: at most `highWaterMark` frames or
 *   `highWaterMarkBytes` bytes plus one frame), then the stream is destroyed with the error
 *   (`'error'`, then `'close'`). A consumer that stops reading before the queue is empty never gets
 *   the error: the `'violation'` event announces it at once, whatever the consumer does. Nothing is
 *   parsed after it, and later bytes are discarded. With `endOnViolation` the stream ends instead of
 *   failing (see {@link FrameReadableOptions.endOnViolation}).
 * - A close frame is also announced at once by a `'closeFrame'` event (with the frame), even while the
 *   consumer is behind or never reads it (a proxy learns of the peer's close whatever its stages do).
 *   So is a violation, by a `'violation'` event (with the error), before the frames queued ahead of
 *   it are given out.
 * - After a close frame the stream ends; later bytes are read and discarded, so the peer's TCP close
 *   can still be seen.
 * - When the consumer falls behind (`highWaterMark` frames or `highWaterMarkBytes` bytes queued), the
 *   socket is paused; it resumes when the consumer reads again.
 * - The socket belongs to the caller: destroying this stream removes its listeners but neither ends
 *   nor destroys the socket.
 *
 * @example
 * ```ts
 * const frames = new FrameReadable(socket, { role: 'server', head });
 * for await (const frame of frames) console.log(frame.type, frame.payload.length);
 * ```
 */
export class FrameReadable extends Readable {
  /** The socket read from. */
  readonly socket: Duplex;
  private readonly parser: FrameParser;
  private readonly highWaterMarkBytes: number;
  /** Payload bytes pushed into the readable queue and not yet read out of it. */
  private queuedBytes = 0;
  /** Whether the consumer asked for frames (`_read`) and has not been given enough yet. */
  private wanted = false;
  /** Whether a `_read` was refused for `highWaterMarkBytes` and is owed a push. */
  private owed = false;
  /** Whether the socket will send no more bytes. */
  private socketEnded = false;
  /** Whether this stream has pushed its end, or failed. */
  private done = false;
  /** Whether a close frame was read. */
  private closeSeen = false;
  private closeFrameRead: Frame | undefined;
  private readonly consumePong: ((this: FrameReadable, frame: Frame) => boolean) | undefined;
  /** Bytes read from the socket ('data' events; `head` excluded). */
  private received = 0;
  /** Times the reader stopped reading the socket because its consumer was behind. */
  private stallCount = 0;
  private readonly endOnViolation: boolean;
  /** The violation that stopped the parsing, once one did. */
  private violationError: WebSocketProxyError | undefined;
  /** Where frames go instead of the queue, once {@link FrameReadable.setSink} was called. */
  private sink: FrameSink | undefined;
  /** Whether `drain()` is running (a sink that resumes from inside it must not re-enter it). */
  private draining = false;

  private readonly onData = (chunk: Buffer): void => {
    this.received += chunk.length;
    if (this.done) return;
    this.parser.push(chunk);
    if (this.wanted) this.drain();
    else this.socket.pause();
  };

  private readonly onEnd = (): void => {
    this.socketEnded = true;
    if (this.wanted) this.drain();
  };

  private readonly onError = (err: Error): void => {
    if (!this.done) {
      this.done = true;
      this.destroy(err);
    }
  };

  /**
   * @param socket - the connection, after the HTTP upgrade
   * @param options - see {@link FrameReadableOptions}; `role` is required
   * @throws TypeError for a missing role or a limit that is not a positive integer
   */
  constructor(socket: Duplex, options: FrameReadableOptions) {
    const highWaterMark = positiveInteger('highWaterMark', options?.highWaterMark, DEFAULT_READABLE_HIGH_WATER_MARK);
    super({ objectMode: true, highWaterMark });
    if (options?.role !== 'server' && options?.role !== 'client') {
      throw new TypeError("options.role must be 'server' or 'client'");
    }
    const maxFrameSize = positiveInteger('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE);
    if (options.partialFrames !== undefined && typeof options.partialFrames !== 'boolean') {
      throw new TypeError('options.partialFrames must be a boolean');
    }
    if (options.consumePong !== undefined && typeof options.consumePong !== 'function') {
      throw new TypeError('options.consumePong must be a function');
    }
    if (options.endOnViolation !== undefined && typeof options.endOnViolation !== 'boolean') {
      throw new TypeError('options.endOnViolation must be a boolean');
    }
    this.endOnViolation = options.endOnViolation ?? false;
    this.socket = socket;
    this.consumePong = options.consumePong;
    this.highWaterMarkBytes = positiveInteger(
      'highWaterMarkBytes', options.highWaterMarkBytes, DEFAULT_HIGH_WATER_MARK_BYTES);
    this.parser = new FrameParser({
      role: options.role,
      maxFrameSize,
      maxBufferedBytes: positiveInteger('maxBufferedBytes', options.maxBufferedBytes, Math.max(maxFrameSize, 125) + MAX_HEADER),
      maxMessageSize: positiveInteger('maxMessageSize', options.maxMessageSize, Infinity),
      maxFragments: positiveInteger('maxFragments', options.maxFragments, Infinity),
      validateUtf8: options.validateUtf8 ?? true,
      allowRsv1: options.allowRsv1 ?? false,
      partialFrom: options.partialFrames === true ? PARTIAL_FRAME_MIN : Infinity,
    });
    // The parser unmasks in place; the head belongs to the caller, so it gets its own copy.
    if (options.head !== undefined && options.head.length > 0) this.parser.push(Buffer.from(options.head));
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    // Nothing flows until the consumer asks: that is what lets backpressure reach the peer.
    socket.pause();
    // A socket that has already ended will send no 'end': what `head` holds is all there is.
    if (socket.readableEnded || socket.destroyed) this.socketEnded = true;
  }

  /** Whether a close frame has been read from the peer (the stream ends after it). */
  get closeReceived(): boolean {
    return this.closeSeen;
  }

  /** The close frame read from the peer, once one was (the same object pushed to the consumer). */
  get closeFrame(): Frame | undefined {
    return this.closeFrameRead;
  }

  /**
   * Bytes read from the socket so far (not counting `head`): any change tells that the peer sent
   * something, even part of a frame.
   */
  get bytesReceived(): number {
    return this.received;
  }

  /**
   * Whether the reader is reading its socket now: false before the consumer first asks, while the
   * consumer is behind (the socket is paused for backpressure), and once the stream is done.
   */
  get reading(): boolean {
    return this.wanted && !this.done;
  }

  /** How many times the reader stopped reading its socket because its consumer was behind. */
  get stalls(): number {
    return this.stallCount;
  }

  /**
   * Turns {@link FrameReadableOptions.partialFrames} on from the next frame: for a consumer that
   * learns only after construction that it can take pieces (the proxy, once it knows a direction has
   * no stage that needs whole frames).
   */
  enablePartialFrames(): void {
    this.parser.setPartialFrom(PARTIAL_FRAME_MIN);
  }

  /**
   * The protocol violation, exceeded limit or truncated frame that stopped the parsing, once one did
   * (the error the stream fails with, or, with `endOnViolation`, the reason it ended).
   */
  get violation(): WebSocketProxyError | undefined {
    return this.violationError;
  }

  /** Whether a fragmented message from the peer is open (its final fragment has not arrived). */
  get midMessage(): boolean {
    return this.parser.midMessage;
  }

  /**
   * @internal Hands every frame to `sink` instead of the stream's queue, from now on: nothing is
   * pushed, no frame is queued, and the sink's answer is the backpressure (false stops the reading,
   * and the socket, until {@link FrameReadable.resumeSink}). The stream still ends or fails as it
   * would (`'end'` once flowing, `'error'`, `'close'`), so `finished()` tells when it is over. Call
   * it before anything reads the stream, then `resume()` it.
   *
   * @param sink - the consumer
   */
  setSink(sink: FrameSink): void {
    this.sink = sink;
  }

  /** @internal The sink can take frames again (it answered false before). */
  resumeSink(): void {
    if (this.done) return;
    this.wanted = true;
    if (!this.draining) this.drain();
  }

  /** @internal */
  override _read(): void {
    if (this.queuedBytes >= this.highWaterMarkBytes) {
      this.owed = true;
      return;
    }
    this.wanted = true;
    this.drain();
  }

  /**
   * Reads a frame from the queue (see Node's `readable.read()`); overridden only to count the bytes
   * that leave the queue, for `highWaterMarkBytes`.
   *
   * @param size - ignored in object mode
   * @returns the next frame, or null
   */
  override read(size?: number): Frame | null {
    const frame = super.read(size) as Frame | null;
    if (frame !== null && frame !== undefined) {
      this.queuedBytes -= frame.payload.length;
      if (this.owed && this.queuedBytes < this.highWaterMarkBytes) {
        this.owed = false;
        process.nextTick(resumeReading, this);
      }
      // The last frame parsed before a violation has been given out (its 'data' already emitted):
      // now the stream fails.
      if (this.violationError !== undefined && !this.endOnViolation && this.readableLength === 0) this.failNow();
    }
    return frame;
  }

  /** @internal */
  override _destroy(err: Error | null, callback: (error: Error | null) => void): void {
    this.done = true;
    this.detach();
    callback(err);
  }

  /** @internal Parses and pushes frames (or hands them to the sink) while the consumer wants them. */
  drain(): void {
    const sink = this.sink;
    this.draining = true;
    while (this.wanted && !this.done) {
      let frame: Frame | null;
      try {
        frame = this.parser.next();
      } catch (err) {
        this.endBurst();
        this.fail(err as WebSocketProxyError);
        return;
      }
      if (frame === null) {
        this.endBurst();
        if (this.socketEnded) this.endOfInput();
        // Once per chunk: resume() only when the socket is not flowing already.
        else if (this.socket.readableFlowing !== true) this.socket.resume();
        return;
      }
      if (frame.type === 'pong' && this.consumePong !== undefined && this.consumePong(frame)) continue;
      let more: boolean;
      if (sink !== undefined) {
        more = sink.write(frame);
      } else {
        const before = this.readableLength;
        more = this.push(frame);
        // A frame handed straight to a 'data' listener never enters the queue.
        if (this.readableLength > before) this.queuedBytes += frame.payload.length;
      }
      if (frame.type === 'close') {
        this.endBurst();
        this.afterClose(frame);
        return;
      }
      if (!more || this.queuedBytes >= this.highWaterMarkBytes) {
        this.wanted = false;
        this.stallCount++;
      }
    }
    this.endBurst();
    if (!this.done) this.socket.pause();
  }

  /** `drain()` stops: the sink, if any, is told the frames at hand were all given. */
  private endBurst(): void {
    this.draining = false;
    this.sink?.flush();
  }

  private endOfInput(): void {
    if (this.parser.midFrame) {
      this.fail(new WebSocketProxyError('WSP_ERR_TRUNCATED_FRAME', `${this.parser.bufferedBytes} bytes left`));
      return;
    }
    this.done = true;
    this.detach();
    this.push(null);
  }

  /**
   * "After sending a Close frame, the endpoint MUST NOT send any more data frames" (section 5.5.1):
   * nothing valid follows a close frame, so the stream ends, and the socket keeps flowing into the
   * void so that the peer's TCP close ('end') is still seen by whoever waits for it.
   */
  private afterClose(frame: Frame): void {
    this.done = true;
    this.closeSeen = true;
    this.closeFrameRead = frame;
    this.push(null);
    // Told at once, however far behind the consumer is: see the 'closeFrame' event.
    this.emit('closeFrame', frame);
    this.detach();
    this.discardRest();
  }

  /**
   * Nothing is parsed after a violation, but the frames parsed before it still go out first, in
   * order, as an endpoint processes what came before the violation: the stream fails (or, with
   * `endOnViolation`, ends) once its queue is empty. What it holds is bounded by the high-water
   * marks, and nothing more is read into it.
   */
  private fail(err: WebSocketProxyError): void {
    this.done = true;
    this.violationError = err;
    this.detach();
    // Told at once, however far behind the consumer is (like 'closeFrame').
    this.emit('violation', err);
    if (this.endOnViolation) {
      // The socket's owner decides what happens to later bytes; until then the peer is not read.
      this.socket.pause();
      this.push(null);
    } else {
      // Like after a close frame, later bytes are read and discarded, so that the peer's TCP close
      // is still seen even if the socket was paused for backpressure.
      this.discardRest();
      if (this.readableLength === 0) this.failNow();
    }
  }

  /** Fails the stream with its violation, once no frame parsed before it is left in the queue. */
  private failNow(): void {
    if (!this.destroyed) this.destroy(this.violationError);
  }

  /** Reads what the peer still sends into the void (`detach()` already left an error listener). */
  private discardRest(): void {
    this.socket.on('data', discard);
    this.socket.resume();
  }

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    // Keep an error listener: an error after this stream is gone must not crash the process.
    this.socket.off('error', this.onError);
    if (this.socket.listenerCount('error') === 0) this.socket.on('error', discard);
  }
}

function resumeReading(stream: FrameReadable): void {
  if (stream.destroyed) return;
  stream._read();
}

function discard(): void {}
