/**
 * `FrameWritable`: `Frame` objects encoded onto a socket, masked for the client role, with the
 * sender's duties of RFC 6455 enforced and the socket's backpressure passed upstream.
 *
 * @packageDocumentation
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Writable } from 'readable-stream';
import { WebSocketProxyError } from '../errors.js';
import { type Frame, type PartialPayload, opcodeOf } from '../frame.js';
import { MASK_IN_PLACE_MIN, checkSendable, encodeFrame, headerLength, writeHeader } from '../protocol/encode.js';
import {
  type GenerateMask, MASK_PIECE_SIZE, mask, randomMask, releaseMaskPiece, rotateKey, takeMaskPiece,
} from '../protocol/mask.js';
import type { Role } from '../protocol/parser.js';

/**
 * Frames whose payload the writer may mask in place (see {@link transferPayload}). Weak: a frame
 * that is never written is not kept alive by being here.
 */
const transferred = new WeakSet<Frame>();

/**
 * Hands a frame's payload over to the {@link FrameWritable} it is about to be written to: in the
 * client role, a payload of at least `MASK_IN_PLACE_MIN` (16 KiB) bytes, or any piece of a frame
 * (`Frame.partial`), is then masked in place instead of into a fresh buffer, so reading it after
 * the write gives masked bytes.
 *
 * The rule (RFC 6455 says nothing here; the project's does): never call this for a payload that code
 * other than the caller may hold or read later, such as a frame user code has seen. The proxy calls
 * it only on directions where no user code sees frames (no `onFrame`, no user stages).
 *
 * @param frame - a frame whose payload no one will read again
 * @returns the same frame
 */
export function transferPayload(frame: Frame): Frame {
  transferred.add(frame);
  return frame;
}

/** Default {@link FrameWritableOptions.highWaterMark}, in frames. */
export const DEFAULT_WRITABLE_HIGH_WATER_MARK = 16;
/** Default {@link FrameWritableOptions.closeTimeout}, in milliseconds. */
export const DEFAULT_CLOSE_TIMEOUT = 5000;

/** Options of {@link FrameWritable}. */
export interface FrameWritableOptions {
  /**
   * Which end of the connection this writer is: `'client'` masks every frame with a fresh key
   * (RFC 6455 section 5.3), `'server'` never masks.
   */
  role: Role;
  /**
   * Fills a 4-byte buffer with a masking key (client role). Tests inject a fixed key here.
   * @defaultValue 4 bytes from a pool refilled by `crypto.randomFillSync`
   */
  generateMask?: GenerateMask;
  /**
   * How long `end()` in the client role waits, after a close frame was written, for the server to
   * close TCP before the socket is destroyed.
   * @defaultValue 5000
   */
  closeTimeout?: number;
  /**
   * Whether frames with RSV1 set may be written (a negotiated extension defines it).
   * @defaultValue false
   */
  allowRsv1?: boolean;
  /**
   * Frames queued in this stream before `write()` returns false.
   * @defaultValue 16
   */
  highWaterMark?: number;
}

type Callback = (error?: Error | null) => void;

/**
 * Writes {@link Frame} objects to a socket as RFC 6455 frames.
 *
 * - Client role: every frame is masked with a fresh key into a new buffer, except a data payload of
 *   16 KiB or more, which is masked 64 KiB at a time into reused scratch pieces, each written as the
 *   socket takes it (so a large frame costs no allocation of its size, and holds at most 256 KiB of
 *   pieces while the socket is full); server role: the header and the payload are written as two
 *   buffers (small payloads are copied next to the header). The caller's payload buffer is never
 *   modified, unless the caller handed it over with {@link transferPayload} (then a large one is
 *   masked in place).
 * - A frame may come in pieces (`Frame.partial`, cut-through): the first piece writes the header
 *   with the whole frame's length (and its key), each piece's bytes follow as they come, masked from
 *   their offset on. Until the last piece, any other frame, or a piece out of order, fails with
 *   `WSP_ERR_INVALID_FRAME` (a frame's bytes are contiguous on the wire).
 * - A sender's duties are enforced: control payloads of at most 125 bytes (a close reason is cut at
 *   a character boundary to 123 bytes), valid close codes only, FIN on control frames, fragments in
 *   sequence, and no data frame (nor a second close frame) after a close frame. A violation fails the
 *   write with a {@link WebSocketProxyError} and writes nothing.
 * - Backpressure: `write()` returns false while the socket's buffer is over its high-water mark, and
 *   a write's callback fires once its bytes are handed to the socket; while the socket is full the
 *   next frame waits, so a `pipeline()` feeding this stream slows down. If the socket closes under
 *   a waiting frame, or while a caller waits for 'drain', the stream fails with
 *   `WSP_ERR_SOCKET_CLOSED` (1006).
 * - `end()`: without a close frame written, the socket is ended at once. After one, the server role
 *   ends the socket at once (the server closes TCP first, section 7.1.1); the client role waits for
 *   the server to close TCP, or `closeTimeout`, then destroys the socket.
 *
 * @example
 * ```ts
 * const out = new FrameWritable(socket, { role: 'client' });
 * out.write(textFrame('hello'));
 * out.end(closeFrame(1000, 'bye'));
 * ```
 */
export class FrameWritable extends Writable {
  /** The socket written to. */
  readonly socket: Duplex;
  private readonly role: Role;
  private readonly generateMask: GenerateMask;
  private readonly closeTimeout: number;
  private readonly allowRsv1: boolean;
  // Outside Node's shared 8 KiB pool: a pooled slice lives as long as the connection and would keep
  // its whole pool slab alive.
  private readonly keys = Buffer.allocUnsafeSlow(8);
  private readonly key = this.keys.subarray(0, 4);
  /** The key of the frame being written in pieces, rotated per piece into `key`. */
  private readonly pieceKey = this.keys.subarray(4, 8);
  /**
   * Whether scratch pieces may be reused once the socket's write callback gave them back: true for
   * a `net.Socket` (TLS included), whose callback comes once the bytes are in the kernel or in the
   * TLS engine. Any other Duplex may still hold a written chunk after its callback (a PassThrough
   * queues it as it is), so it gets fresh pieces.
   */
  private readonly reusePieces: boolean;
  /** The frame being masked into scratch pieces (see {@link FrameWritable.pump}), if any; its key is `key`. */
  private spillFrame: Frame | undefined;
  /** The callback of the frame being masked in pieces. */
  private spillCallback: Callback | undefined;
  /** Index in the payload of `spillFrame` of the next byte to mask. */
  private spillAt = 0;
  /** Scratch pieces handed to the socket whose write callback has not come yet. */
  private piecesOut = 0;
  /** Whether the frame being masked in pieces waits for a piece to come back. */
  private waitingForPiece = false;
  /** Payload length of the frame being written in pieces, or -1 when none is open. */
  private pieceLength = -1;
  /** Offset the next piece of the open frame must start at. */
  private pieceNext = 0;
  private closeSent = false;
  private messageOpen = false;
  private corked = false;
  /**
   * The burst under way (see {@link FrameWritable.beginBatch}): 0 none, 1 open with nothing written
   * yet, 2 one frame written at once, 3 the socket corked for the rest of the burst.
   */
  private batch = 0;
  /** Whether the socket's last write returned false and its 'drain' has not come yet. */
  private socketFull = false;
  /** Whether `write()` returned false for `socketFull` alone and so owes a 'drain'. */
  private owesDrain = false;
  /** A write waiting for the socket to drain. */
  private pending: (() => void) | undefined;
  private pendingCallback: Callback | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private finalCallback: Callback | undefined;

  private readonly onSocketDrain = (): void => {
    this.socketFull = false;
    const pending = this.pending;
    this.pending = undefined;
    this.pendingCallback = undefined;
    if (pending !== undefined) pending();
    if (this.owesDrain && !this.socketFull && this.spillFrame === undefined) {
      this.owesDrain = false;
      if (!this.writableNeedDrain) this.emit('drain');
    }
  };

  private readonly onSocketGone = (): void => {
    const callback = this.pendingCallback;
    this.pending = undefined;
    this.pendingCallback = undefined;
    this.endSpill();
    if (callback !== undefined) {
      callback(new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
    } else if (this.owesDrain && !this.writableEnded && !this.destroyed) {
      // write() returned false and its caller (e.g. a pipeline) waits for a 'drain' that can no
      // longer come: fail the stream rather than leave it stalled for ever.
      this.owesDrain = false;
      this.destroy(new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
    }
    this.finishClose();
  };

  private readonly onSocketError = (): void => {
    // The reader reports socket errors; here an error only means no more bytes can be written.
    this.onSocketGone();
  };

  /**
   * @param socket - the connection, after the HTTP upgrade
   * @param options - see {@link FrameWritableOptions}; `role` is required
   * @throws TypeError for a missing role or an option of the wrong type
   */
  constructor(socket: Duplex, options: FrameWritableOptions) {
    const highWaterMark = options?.highWaterMark ?? DEFAULT_WRITABLE_HIGH_WATER_MARK;
    if (!Number.isSafeInteger(highWaterMark) || highWaterMark < 1) {
      throw new TypeError('options.highWaterMark must be an integer >= 1');
    }
    super({ objectMode: true, highWaterMark, decodeStrings: false });
    if (options?.role !== 'server' && options?.role !== 'client') {
      throw new TypeError("options.role must be 'server' or 'client'");
    }
    const closeTimeout = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    if (!Number.isFinite(closeTimeout) || closeTimeout < 0) {
      throw new TypeError('options.closeTimeout must be a number >= 0');
    }
    if (options.generateMask !== undefined && typeof options.generateMask !== 'function') {
      throw new TypeError('options.generateMask must be a function');
    }
    this.socket = socket;
    this.role = options.role;
    this.generateMask = options.generateMask ?? randomMask;
    this.closeTimeout = closeTimeout;
    this.allowRsv1 = options.allowRsv1 ?? false;
    this.reusePieces = socket instanceof Socket;
    socket.on('drain', this.onSocketDrain);
    socket.on('close', this.onSocketGone);
    socket.on('error', this.onSocketError);
  }

  /** Whether a close frame has been written. */
  get closeFrameSent(): boolean {
    return this.closeSent;
  }

  /**
   * Writes a frame (see Node's `writable.write()`).
   *
   * @param frame - the frame to send
   * @param callback - called once the frame's bytes are handed to the socket, or with the error
   * @returns false when the caller should wait for 'drain': this stream's queue is full or the
   *   socket's buffer is over its high-water mark
   */
  override write(frame: Frame, callback?: Callback): boolean;
  override write(frame: Frame, encoding: BufferEncoding | undefined, callback?: Callback): boolean;
  /**
   * The signature Node's stream typings expect, so that `pipeline(frames, ..., frameWritable)` type-checks;
   * anything but a {@link Frame} fails the write with `WSP_ERR_INVALID_FRAME`.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | Callback, callback?: Callback): boolean;
  override write(frame: unknown, encoding?: BufferEncoding | Callback, callback?: Callback): boolean {
    const ret = super.write(frame, encoding as BufferEncoding, callback);
    // A frame still being masked in pieces holds the next ones back like a full socket: what waits
    // here is bounded in frames, and a frame can be large.
    if (ret && (this.socketFull || this.spillFrame !== undefined)) {
      this.owesDrain = true;
      return false;
    }
    return ret;
  }

  /**
   * @internal Writes a frame at once, past this stream's queue, when nothing waits in it: the same
   * checks, bytes and answer as {@link FrameWritable.write} (false: wait for 'drain'), without its
   * per-write callback and tick. Otherwise (frames queued, the socket full or a frame still being
   * masked in pieces, the stream ended, corked or destroyed) it is `write()`. An invalid frame
   * destroys the stream with its error, as a failed `write()` does.
   *
   * @param frame - the frame to send
   * @param owned - the frame's payload is handed over, as with {@link transferPayload} (without
   *   its bookkeeping: a caller that knows it per frame, the proxy's direct path, says so here)
   * @returns false when the caller should wait for 'drain'
   */
  writeNow(frame: Frame, owned = false): boolean {
    const socket = this.socket;
    if (this.writableLength !== 0 || this.socketFull || this.spillFrame !== undefined || this.writableCorked !== 0 || this.writableEnded || this.destroyed
      || socket.destroyed || !socket.writable) {
      if (owned) transferPayload(frame);
      return this.write(frame);
    }
    let buffers: Buffer[] | undefined;
    try {
      buffers = this.encode(frame, owned);
    } catch (err) {
      this.destroy(err as Error);
      return false;
    }
    if (buffers === undefined) {
      // A large payload someone else may hold, masked in scratch pieces as the socket takes them
      // (see pump): what follows waits for its last piece, as behind a full socket.
      this.spillCallback = noop;
      this.pump();
      if (this.spillFrame === undefined && !this.socketFull) return true;
      this.owesDrain = true;
      return false;
    }
    if (this.batch === 1) {
      // The first frame of a burst goes at once: alone (one frame in flight), it needs no cork.
      this.batch = 2;
    } else if (this.batch === 2) {
      // A second one: the rest of the burst is gathered into one socket write, at endBatch().
      this.batch = 3;
      socket.cork();
    } else if (this.batch === 0) {
      this.corkUntilNextTick();
    }
    const ok = this.writeBuffers(buffers);
    if (!ok) {
      this.socketFull = true;
      this.owesDrain = true;
    }
    return ok;
  }

  /**
   * @internal Opens a burst of {@link FrameWritable.writeNow} calls that ends with
   * {@link FrameWritable.endBatch}, called in the same tick: the first frame goes to the socket at
   * once, the rest are gathered into one write at the end. Without a burst, frames written in one
   * tick are gathered until the next tick.
   */
  beginBatch(): void {
    if (this.batch === 0) this.batch = 1;
  }

  /** @internal Ends the burst: what it gathered goes to the socket now. */
  endBatch(): void {
    const corked = this.batch === 3;
    this.batch = 0;
    if (corked) this.socket.uncork();
  }

  /** @internal */
  override _write(frame: Frame, _encoding: string, callback: Callback): void {
    let buffers: Buffer[] | undefined;
    try {
      buffers = this.encode(frame);
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (buffers === undefined) {
      this.spillCallback = callback;
      this.pump();
      return;
    }
    if (this.socketFull) {
      this.pending = () => this.send(buffers, callback);
      this.pendingCallback = callback;
    } else {
      this.send(buffers, callback);
    }
  }

  /** @internal */
  override _final(callback: Callback): void {
    const socket = this.socket;
    if (!this.closeSent || this.role === 'server' || socket.destroyed || socket.readableEnded) {
      socket.end();
      callback();
      return;
    }
    // "the underlying TCP connection, in most normal cases, SHOULD be closed first by the server"
    // (section 7.1.1): the client waits for the server's FIN, then closes its side too.
    this.finalCallback = callback;
    socket.once('end', this.onSocketGone);
    this.closeTimer = setTimeout(() => {
      this.closeTimer = undefined;
      socket.destroy();
      this.finishClose();
    }, this.closeTimeout);
  }

  /** @internal */
  override _destroy(err: Error | null, callback: (error: Error | null) => void): void {
    this.release();
    const pendingCallback = this.pendingCallback;
    this.pending = undefined;
    this.pendingCallback = undefined;
    this.endSpill();
    if (pendingCallback !== undefined) pendingCallback(err ?? new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
    callback(err);
  }

  private finishClose(): void {
    const callback = this.finalCallback;
    if (callback === undefined) return;
    this.finalCallback = undefined;
    this.release();
    if (!this.socket.destroyed) this.socket.end();
    callback();
  }

  private release(): void {
    if (this.closeTimer !== undefined) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
    this.socket.off('drain', this.onSocketDrain);
    this.socket.off('close', this.onSocketGone);
    this.socket.off('end', this.onSocketGone);
    this.socket.off('error', this.onSocketError);
    if (this.socket.listenerCount('error') === 0) this.socket.on('error', noop);
  }

  /**
   * Checks a frame against the sender's rules and encodes it: the buffers to write, or undefined
   * for a large masked payload that is masked in pieces instead (`spillFrame`, see `pump`).
   */
  private encode(frame: Frame, owned = false): Buffer[] | undefined {
    if (frame === null || typeof frame !== 'object') {
      throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'not a frame object');
    }
    const type = frame.type;
    const data = type === 'text' || type === 'binary' || type === 'continuation';
    if (this.closeSent) {
      // "The application MUST NOT send any more data frames after sending a Close frame." (5.5.1)
      if (data) throw new WebSocketProxyError('WSP_ERR_WRITE_AFTER_CLOSE', `${type} frame`);
      if (type === 'close') throw new WebSocketProxyError('WSP_ERR_WRITE_AFTER_CLOSE', 'a close frame was sent already');
    }
    if (frame.partial !== undefined) return this.encodePiece(frame, frame.partial, owned);
    // A frame's bytes are contiguous on the wire: nothing may go inside a frame written in pieces.
    if (this.pieceLength >= 0) {
      throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', `${type} frame inside a frame written in pieces`);
    }
    checkSendable(frame, this.messageOpen, this.allowRsv1);
    let key: Buffer | undefined;
    if (this.role === 'client') {
      this.generateMask(this.key);
      key = this.key;
    }
    const payload = frame.payload;
    // Only large masked payloads can be masked in place: the set is not consulted for the others.
    const large = key !== undefined && data && Buffer.isBuffer(payload) && payload.length >= MASK_IN_PLACE_MIN;
    if (large) owned ||= transferred.has(frame);
    if (large && !owned) {
      // A large payload someone else may hold: masked through reused scratch pieces as the socket
      // takes them, never modified, and never copied whole.
      this.spillFrame = frame;
      this.spillAt = 0;
      this.messageOpen = !frame.fin;
      return undefined;
    }
    const buffers = encodeFrame(frame, key, large && owned);
    if (data) this.messageOpen = !frame.fin;
    else if (type === 'close') this.closeSent = true;
    return buffers;
  }

  /**
   * Writes the frame in `spillFrame`: the header and its payload masked piece by piece into
   * scratch pieces (`MASK_PIECE_SIZE` bytes, reused: see `takeMaskPiece`), each handed to the
   * socket, while the socket takes them. It stops while the socket is full (until 'drain') and
   * while `MAX_PIECES_OUT` pieces wait for their write callback (until one comes), so a frame of
   * any size holds at most that many pieces. The frame's callback fires once its last piece is
   * handed to the socket; nothing else is written meanwhile (the Writable holds the next frames).
   */
  private pump(): void {
    const frame = this.spillFrame;
    const callback = this.spillCallback;
    if (frame === undefined || callback === undefined) return;
    const payload = frame.payload;
    const socket = this.socket;
    const key = this.key;
    for (;;) {
      if (socket.destroyed || !socket.writable) {
        this.endSpill();
        callback(new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
        return;
      }
      if (this.socketFull) {
        this.pending = () => this.pump();
        this.pendingCallback = callback;
        return;
      }
      if (this.piecesOut >= MAX_PIECES_OUT) {
        this.waitingForPiece = true;
        this.pendingCallback = callback;
        return;
      }
      const at = this.spillAt;
      const piece = this.reusePieces ? takeMaskPiece() : Buffer.allocUnsafe(MASK_PIECE_SIZE);
      let used = 0;
      if (at === 0) used = writeHeader(piece, opcodeOf(frame.type)!, frame.fin, frame.rsv1 === true, payload.length, key);
      const n = Math.min(MASK_PIECE_SIZE - used, payload.length - at);
      // Payload byte i is masked with key byte i % 4 (RFC 6455 section 5.3), whatever piece it is in.
      rotateKey(key, at, rotatedKey);
      mask(payload.subarray(at, at + n), rotatedKey, piece, used);
      used += n;
      this.spillAt = at + n;
      this.piecesOut++;
      const ok = socket.write(used === MASK_PIECE_SIZE ? piece : piece.subarray(0, used), (): void => this.pieceWritten(piece));
      if (!ok) this.socketFull = true;
      if (this.spillAt === payload.length) {
        this.endSpill();
        callback();
        // write() answered false for this frame (see there): the next frames may come now, unless
        // the socket itself is full (then its 'drain' tells).
        if (this.owesDrain && !this.socketFull) process.nextTick(emitOwedDrain, this);
        return;
      }
    }
  }

  /** A scratch piece's bytes have left it (its write callback came, or the write failed). */
  private pieceWritten(piece: Buffer): void {
    this.piecesOut--;
    if (this.reusePieces) releaseMaskPiece(piece);
    if (this.waitingForPiece) {
      this.waitingForPiece = false;
      this.pendingCallback = undefined;
      this.pump();
    }
  }

  /** Forgets the frame being masked in pieces (done, or its socket is gone). */
  private endSpill(): void {
    this.spillFrame = undefined;
    this.spillCallback = undefined;
    this.waitingForPiece = false;
  }

  /** @internal The 'drain' a frame masked in pieces owed (see `pump`), unless something took it since. */
  emitOwedDrain(): void {
    if (!this.owesDrain || this.socketFull || this.spillFrame !== undefined || this.destroyed) return;
    this.owesDrain = false;
    if (!this.writableNeedDrain) this.emit('drain');
  }

  /**
   * Encodes a piece of a frame (cut-through): the first piece brings the header, with the whole
   * frame's length and, in the client role, a fresh key; each piece's bytes are masked with that key
   * from their offset on (key byte `i % 4` for payload byte `i`, across pieces).
   */
  private encodePiece(frame: Frame, partial: PartialPayload, owned: boolean): Buffer[] {
    const type = frame.type;
    const opcode = opcodeOf(type);
    const payload = frame.payload;
    const { offset, length } = partial;
    if (opcode === undefined || opcode >= 0x8 || !Buffer.isBuffer(payload) || !Number.isSafeInteger(offset)
      || !Number.isSafeInteger(length) || offset < 0 || offset + payload.length > length) {
      throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'a piece must be a data frame\'s payload bytes within its length');
    }
    const masked = this.role === 'client';
    let header: Buffer | undefined;
    if (offset === 0) {
      if (this.pieceLength >= 0) throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'a frame inside a frame written in pieces');
      checkSendable(frame, this.messageOpen, this.allowRsv1);
      if (masked) this.generateMask(this.pieceKey);
      header = Buffer.allocUnsafe(headerLength(length, masked));
      writeHeader(header, opcode, frame.fin, frame.rsv1 === true, length, masked ? this.pieceKey : undefined);
      this.messageOpen = !frame.fin;
      this.pieceLength = length;
      this.pieceNext = 0;
    } else if (offset !== this.pieceNext || length !== this.pieceLength) {
      throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', `piece at ${offset} of ${length}; expected one at ${this.pieceNext} of ${this.pieceLength}`);
    }
    this.pieceNext = offset + payload.length;
    if (this.pieceNext === length) this.pieceLength = -1;
    let body = payload;
    if (masked && payload.length > 0) {
      const key = this.key;
      rotateKey(this.pieceKey, offset, key);
      // A piece handed over is a view of the reader's socket chunk: masked where it lies.
      if (!owned && !transferred.has(frame)) body = Buffer.allocUnsafe(payload.length);
      mask(payload, key, body, 0);
    }
    if (header === undefined) return [body];
    return body.length === 0 ? [header] : [header, body];
  }

  /** Hands encoded bytes to the socket, corked until the next tick so a burst leaves in one write. */
  private send(buffers: Buffer[], callback: Callback): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) {
      callback(new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED'));
      return;
    }
    this.corkUntilNextTick();
    if (!this.writeBuffers(buffers)) this.socketFull = true;
    callback();
  }

  /** Corks the socket until the next tick (once per tick), so that a burst leaves in one write. */
  private corkUntilNextTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(uncork, this);
  }

  /**
   * Hands a frame's buffers to the socket as one write: a header and its payload go together (a
   * writev), or join the write a cork already gathers.
   *
   * @returns the socket's answer (false: over its high-water mark)
   */
  private writeBuffers(buffers: Buffer[]): boolean {
    const socket = this.socket;
    if (buffers.length === 1) return socket.write(buffers[0]!);
    socket.cork();
    socket.write(buffers[0]!);
    const ok = socket.write(buffers[1]!);
    socket.uncork();
    return ok;
  }

  /** @internal */
  uncorkSocket(): void {
    this.corked = false;
    this.socket.uncork();
  }
}

function uncork(stream: FrameWritable): void {
  stream.uncorkSocket();
}

function emitOwedDrain(stream: FrameWritable): void {
  stream.emitOwedDrain();
}

/**
 * Scratch pieces of one frame that may wait for their write callback at once: 256 KiB. Written
 * pieces come back on the next tick when the kernel takes them at once, so a frame is masked 256 KiB
 * per tick at most, and a socket that stalls holds at most this many.
 */
const MAX_PIECES_OUT = 4;

/** The key rotated for the piece being masked: used within one synchronous step, so shared. */
const rotatedKey = Buffer.allocUnsafeSlow(4);

function noop(): void {}
