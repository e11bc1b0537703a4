/**
 * The RFC 6455 frame parser: bytes in, validated `Frame` objects out, no streams and no I/O.
 * `FrameReadable` drives it; the tests and the benchmark drive it directly too.
 *
 * The chunk list with a byte counter, views for frames inside one chunk and a single copy for frames
 * that span chunks follow ws (lib/receiver.js, MIT license).
 *
 * @packageDocumentation
 */
import { WebSocketProxyError } from '../errors.js';
import { type Frame, type FrameType, isValidCloseCode } from '../frame.js';
import { mask, rotateKey, unmask } from './mask.js';
import { Utf8Validator, isValidUtf8 } from './utf8.js';

/** Which end of the connection the parser reads for: `'server'` reads a client, `'client'` a server. */
export type Role = 'server' | 'client';

/** Options of {@link FrameParser}; `FrameReadable` documents their defaults. */
export interface FrameParserOptions {
  /** Which end reads: a server requires masked frames, a client forbids them. */
  role: Role;
  /** Largest payload of one frame, in bytes. */
  maxFrameSize: number;
  /** Largest frame (header and payload) the parser may hold while waiting for its last byte. */
  maxBufferedBytes: number;
  /** Largest message, in payload bytes summed over its fragments (Infinity: no limit). */
  maxMessageSize?: number;
  /** Most data frames in one message, empty ones included (Infinity: no limit). */
  maxFragments?: number;
  /**
   * Whether text payloads are checked to be UTF-8: as their bytes arrive, so that an unfinished frame
   * already fails on the first byte that makes its text impossible.
   */
  validateUtf8: boolean;
  /** Whether RSV1 may be set (an extension such as permessage-deflate was negotiated). */
  allowRsv1: boolean;
  /**
   * Payload length from which a data frame that has not fully arrived is given out in pieces as its
   * bytes arrive (see `PartialPayload`), instead of held until complete (Infinity: never).
   */
  partialFrom?: number;
}

const TYPES: readonly (FrameType | undefined)[] = [
  'continuation', 'text', 'binary', undefined, undefined, undefined, undefined, undefined,
  'close', 'ping', 'pong', undefined, undefined, undefined, undefined, undefined,
];

const EMPTY = Buffer.alloc(0);

/**
 * Node's Buffer class proper (`Buffer[Symbol.species]`): constructing a view with it skips the
 * argument checks of `subarray`, which are measurable once per frame.
 */
const BufferView = (Buffer as unknown as {
  readonly [Symbol.species]: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => Buffer;
})[Symbol.species];
const TWO_TO_32 = 0x100000000;

/**
 * Payload length from which a frame that spans socket chunks is assembled as its bytes arrive (see
 * `FrameParser.assemble`) rather than copied out of the chunks once complete: 64 KiB, a socket read.
 */
export const ASSEMBLE_MIN = 64 * 1024;
/**
 * A frame is assembled once at least 1/ASSEMBLE_RATIO of its payload has arrived: its buffer is
 * allocated at its whole length then, so a peer must send that share of a frame before the parser
 * commits memory for all of it (an announced length alone commits nothing).
 */
const ASSEMBLE_RATIO = 16;

/** Text payloads up to this size are scanned for ASCII in JS first: cheaper than a native call. */
const SHORT_TEXT = 32;

/** Whether a short payload is all ASCII, hence valid UTF-8; false means "ask the full validator". */
function isShortAscii(bytes: Buffer): boolean {
  const n = bytes.length;
  if (n > SHORT_TEXT) return false;
  for (let i = 0; i < n; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

/**
 * Incremental frame parser. Feed bytes with {@link FrameParser.push}; take frames with
 * {@link FrameParser.next} until it returns null (more bytes needed). A protocol violation throws a
 * {@link WebSocketProxyError}; after that the parser returns null for ever.
 */
export class FrameParser {
  /** Bytes pushed and not yet consumed. */
  bufferedBytes = 0;

  private readonly role: Role;
  private readonly maxFrameSize: number;
  private readonly maxBufferedBytes: number;
  private readonly maxMessageSize: number;
  private readonly maxFragments: number;
  private readonly validateUtf8: boolean;
  private readonly allowRsv1: boolean;

  private readonly chunks: Buffer[] = [];
  /** Offset of the first unconsumed byte in `chunks[0]`. */
  private offset = 0;
  // One small store of the parser's own, outside Node's shared 8 KiB pool: a pooled slice lives as
  // long as the connection and would keep its whole pool slab alive (about 8 KiB per buffer).
  private readonly store = Buffer.allocUnsafeSlow(22);
  private readonly scratch = this.store.subarray(0, 14);
  private readonly key = this.store.subarray(14, 18);
  private readonly rotatedKey = this.store.subarray(18, 22);

  /** Whether a header has been read and its payload is awaited. */
  private haveHeader = false;
  private fin = false;
  private rsv1 = false;
  private opcode = 0;
  private masked = false;
  private payloadLength = 0;

  /** Opcode of the open fragmented message (text or binary), or -1 when none is open. */
  private messageOpcode = -1;
  /** Whether the open message's first frame had RSV1 set (compressed: not UTF-8 checked here). */
  private messageRsv1 = false;
  /** Payload bytes and data frames of the open message so far. */
  private messageSize = 0;
  private messageFragments = 0;
  private readonly utf8 = new Utf8Validator();
  private failed = false;
  /** Whether the current frame's payload is text to check as UTF-8 (decided at its header). */
  private textCheck = false;
  /**
   * Payload bytes of the current frame already unmasked in place and UTF-8 checked while the rest
   * was awaited: invalid text fails as soon as its bytes arrive, not when its frame completes.
   */
  private checked = 0;
  /**
   * Where payload byte `checked` lies while `checked > 0`: its chunk's index and its offset in that
   * chunk. The chunk list only grows while a frame is awaited, so the cursor stays valid, and each
   * byte is visited once however small the chunks (a walk from the first chunk each time would be
   * quadratic for a large frame sent in tiny pieces).
   */
  private checkChunk = 0;
  private checkOffset = 0;
  /** See {@link FrameParserOptions.partialFrom}. */
  private partialFrom: number;
  /** Payload bytes of the current frame given out in pieces so far, or -1 when it is not in pieces. */
  private pieceOffset = -1;
  /** The current frame's payload being assembled as its bytes arrive (see `assemble`), if it is. */
  private assembly: Buffer | undefined;
  /** Payload bytes of the current frame in `assembly` so far. */
  private assembled = 0;

  /** @param options - see {@link FrameParserOptions} */
  constructor(options: FrameParserOptions) {
    this.role = options.role;
    this.maxFrameSize = options.maxFrameSize;
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.maxMessageSize = options.maxMessageSize ?? Infinity;
    this.maxFragments = options.maxFragments ?? Infinity;
    this.validateUtf8 = options.validateUtf8;
    this.allowRsv1 = options.allowRsv1;
    this.partialFrom = options.partialFrom ?? Infinity;
  }

  /**
   * Changes {@link FrameParserOptions.partialFrom} from the next frame on.
   *
   * @param length - the payload length from which unfinished data frames come in pieces
   */
  setPartialFrom(length: number): void {
    this.partialFrom = length;
  }

  /** Whether bytes of an unfinished frame are held (a connection ending now would cut a frame). */
  get midFrame(): boolean {
    return this.bufferedBytes > 0 || this.haveHeader;
  }

  /** Whether a fragmented message is open (its final fragment has not arrived). */
  get midMessage(): boolean {
    return this.messageOpcode !== -1;
  }

  /**
   * Adds bytes to parse. The parser keeps a reference and unmasks in place, so pass bytes nobody
   * else will read.
   *
   * @param chunk - the next bytes from the connection
   */
  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.failed) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /**
   * Parses the next frame.
   *
   * @returns the frame, or null when more bytes are needed
   * @throws WebSocketProxyError on a protocol violation or an exceeded limit
   */
  next(): Frame | null {
    if (this.failed) return null;
    try {
      if (!this.haveHeader && !this.readHeader()) return null;
      const length = this.payloadLength;
      if (this.assembly !== undefined) return this.assemble();
      if (this.pieceOffset >= 0 || (this.bufferedBytes < length && length >= this.partialFrom && this.opcode < 8 && this.checked === 0)) {
        return this.nextPiece();
      }
      if (this.bufferedBytes < length && length >= ASSEMBLE_MIN && this.bufferedBytes * ASSEMBLE_RATIO >= length) {
        return this.assemble();
      }
      if (this.bufferedBytes < length) {
        // Every byte buffered is this frame's: check the text that arrived since the last call.
        if (this.textCheck && this.bufferedBytes > this.checked) this.checkAhead(this.bufferedBytes);
        return null;
      }
      this.haveHeader = false;
      if (this.checked > 0) {
        // Part of the payload is unmasked and checked already: finish both, then take it as it is.
        this.checkAhead(length);
        this.checked = 0;
        return this.toFrame(this.consume(length, undefined), true);
      }
      const payload = length === 0 ? EMPTY : this.consume(length, this.masked ? this.key : undefined);
      return this.toFrame(payload, false);
    } catch (err) {
      this.failed = true;
      this.chunks.length = 0;
      this.bufferedBytes = 0;
      this.assembly = undefined;
      throw err;
    }
  }

  /** Reads and validates a header once all its bytes are buffered; false if they are not yet. */
  private readHeader(): boolean {
    if (this.bufferedBytes < 2) return false;
    const first = this.chunks[0]!;
    let b0: number, b1: number;
    if (first.length - this.offset >= 2) {
      b0 = first[this.offset]!;
      b1 = first[this.offset + 1]!;
    } else {
      b0 = first[this.offset]!;
      b1 = this.chunks[1]![0]!;
    }
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const type = TYPES[opcode];

    // "MUST be 0 unless an extension is negotiated that defines meanings for non-zero values. If a
    // nonzero value is received and none of the negotiated extensions defines the meaning of such a
    // nonzero value, the receiving endpoint MUST _Fail the WebSocket Connection_." (section 5.2)
    if ((b0 & 0x30) !== 0) throw new WebSocketProxyError('WSP_ERR_UNEXPECTED_RSV', 'RSV2 and RSV3 must be clear');
    // "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket Connection_."
    if (type === undefined) throw new WebSocketProxyError('WSP_ERR_INVALID_OPCODE', `0x${opcode.toString(16)}`);
    if (rsv1) {
      if (!this.allowRsv1) throw new WebSocketProxyError('WSP_ERR_UNEXPECTED_RSV', 'RSV1 must be clear');
      // RFC 7692 section 6.1: RSV1 only on the first frame of a data message.
      if (opcode === 0 || opcode >= 8) {
        throw new WebSocketProxyError('WSP_ERR_UNEXPECTED_RSV', `RSV1 must be clear on a ${type} frame`);
      }
    }
    if (opcode >= 8) {
      // "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be
      // fragmented." (section 5.5)
      if (!fin) throw new WebSocketProxyError('WSP_ERR_FRAGMENTED_CONTROL', `${type} frame with FIN=0`);
      if (len7 > 125) throw new WebSocketProxyError('WSP_ERR_CONTROL_TOO_LONG', `${type} frame`);
    } else if (opcode === 0) {
      // Section 5.4: a continuation frame only continues an open fragmented message.
      if (this.messageOpcode === -1) throw new WebSocketProxyError('WSP_ERR_UNEXPECTED_CONTINUATION');
    } else if (this.messageOpcode !== -1) {
      // Section 5.4: "fragments of one message MUST NOT be interleaved between fragments of another".
      throw new WebSocketProxyError('WSP_ERR_MESSAGE_NOT_FINISHED', `${type} frame inside a fragmented message`);
    }
    // "The server MUST close the connection upon receiving a frame that is not masked." and "A client
    // MUST close a connection if it detects a masked frame." (section 5.1)
    if (masked !== (this.role === 'server')) {
      throw new WebSocketProxyError(masked ? 'WSP_ERR_MASK_FORBIDDEN' : 'WSP_ERR_MASK_REQUIRED');
    }

    const lengthBytes = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const size = 2 + lengthBytes + (masked ? 4 : 0);
    if (this.bufferedBytes < size) return false;
    // The header is read where it lies (no view per frame); one cut by a chunk boundary is copied.
    let header = this.chunks[0]!;
    let at = this.offset;
    if (header.length - at >= size) {
      this.advance(header, size);
    } else {
      this.copyInto(this.scratch, size);
      header = this.scratch;
      at = 0;
    }
    let length: number;
    if (lengthBytes === 0) {
      length = len7;
    } else if (lengthBytes === 2) {
      length = (header[at + 2]! << 8) | header[at + 3]!;
    } else {
      const high = header.readUInt32BE(at + 2);
      // "the most significant bit MUST be 0" (section 5.2)
      if (high >= 0x80000000) throw new WebSocketProxyError('WSP_ERR_INVALID_LENGTH');
      // 2^53 and up cannot be counted exactly in a number: too large whatever maxFrameSize says.
      if (high >= 0x200000) throw new WebSocketProxyError('WSP_ERR_FRAME_TOO_LARGE', 'length of 2^53 or more');
      length = high * TWO_TO_32 + header.readUInt32BE(at + 6);
    }
    // Control frames are never counted against the limits: they are at most 125 bytes anyway.
    if (length > this.maxFrameSize && opcode < 8) {
      throw new WebSocketProxyError('WSP_ERR_FRAME_TOO_LARGE', `${length} > ${this.maxFrameSize}`);
    }
    if (size + length > this.maxBufferedBytes) {
      throw new WebSocketProxyError('WSP_ERR_BUFFER_LIMIT', `${size + length} > ${this.maxBufferedBytes}`);
    }
    if (opcode < 8) {
      // Message limits count every data frame of a message, empty ones too, and never control frames.
      const first = opcode !== 0;
      const messageSize = (first ? 0 : this.messageSize) + length;
      const fragments = (first ? 0 : this.messageFragments) + 1;
      if (messageSize > this.maxMessageSize) {
        throw new WebSocketProxyError('WSP_ERR_MESSAGE_TOO_LARGE', `${messageSize} > ${this.maxMessageSize}`);
      }
      if (fragments > this.maxFragments) {
        throw new WebSocketProxyError('WSP_ERR_TOO_MANY_FRAGMENTS', `more than ${this.maxFragments}`);
      }
      this.messageSize = messageSize;
      this.messageFragments = fragments;
    }
    if (masked) {
      const key = this.key;
      const k = at + size - 4;
      key[0] = header[k]!;
      key[1] = header[k + 1]!;
      key[2] = header[k + 2]!;
      key[3] = header[k + 3]!;
    }
    this.textCheck = this.validateUtf8 && (opcode === 1 ? !rsv1 : opcode === 0 && this.messageOpcode === 1 && !this.messageRsv1);
    this.fin = fin;
    this.rsv1 = rsv1;
    this.opcode = opcode;
    this.masked = masked;
    this.payloadLength = length;
    this.haveHeader = true;
    return true;
  }

  /**
   * Unmasks in place and UTF-8 checks the current frame's payload bytes from `checked` up to
   * `upTo`, which are all buffered. The chunks are the parser's own (see {@link FrameParser.push}).
   */
  private checkAhead(upTo: number): void {
    const chunks = this.chunks;
    const key = this.masked ? this.key : undefined;
    const rotated = this.rotatedKey;
    let at = this.checked;
    // Payload byte 0 is at `offset` in chunks[0]; later ones where the cursor left off.
    let index = at === 0 ? 0 : this.checkChunk;
    let start = at === 0 ? this.offset : this.checkOffset;
    while (at < upTo) {
      const chunk = chunks[index]!;
      const take = Math.min(chunk.length - start, upTo - at);
      const part = new BufferView(chunk.buffer, chunk.byteOffset + start, take);
      if (key !== undefined) {
        // Key byte 0 lines up with payload byte 0, so the key is rotated to start at `at`.
        rotated[0] = key[at & 3]!;
        rotated[1] = key[(at + 1) & 3]!;
        rotated[2] = key[(at + 2) & 3]!;
        rotated[3] = key[(at + 3) & 3]!;
        unmask(part, rotated);
      }
      // "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is
      // not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_"
      // (section 8.1): failed at the first bytes that can no longer be valid.
      if (!this.utf8.write(part)) throw new WebSocketProxyError('WSP_ERR_INVALID_UTF8', 'in a text message');
      at += take;
      start += take;
      if (start === chunk.length) {
        index++;
        start = 0;
      }
    }
    this.checked = upTo;
    this.checkChunk = index;
    this.checkOffset = start;
  }

  /**
   * Gives out the next piece of the current data frame: the buffered payload bytes of the first
   * chunk, unmasked in place and UTF-8 checked, as a view (never a copy).
   *
   * @returns the piece, or null when none of the frame's bytes are buffered
   */
  private nextPiece(): Frame | null {
    const length = this.payloadLength;
    const offset = this.pieceOffset < 0 ? 0 : this.pieceOffset;
    const available = Math.min(this.bufferedBytes, length - offset);
    if (available === 0) return null;
    const first = this.chunks[0]!;
    const start = this.offset;
    const n = Math.min(first.length - start, available);
    this.advance(first, n);
    const piece = start === 0 && n === first.length ? first : new BufferView(first.buffer, first.byteOffset + start, n);
    if (this.masked) {
      rotateKey(this.key, offset, this.rotatedKey);
      unmask(piece, this.rotatedKey);
    }
    const opcode = this.opcode;
    const fin = this.fin;
    const last = offset + n === length;
    // Section 8.1, as in checkAhead: the text is checked piece by piece as it goes out.
    if (this.textCheck && (!this.utf8.write(piece) || (last && fin && !this.utf8.end()))) {
      throw new WebSocketProxyError('WSP_ERR_INVALID_UTF8', 'in a text message');
    }
    this.pieceOffset = last ? -1 : offset + n;
    const rsv1 = opcode === 0 ? false : this.rsv1;
    if (last) {
      this.haveHeader = false;
      if (opcode === 0) {
        if (fin) this.messageOpcode = -1;
      } else if (!fin) {
        this.messageOpcode = opcode;
        this.messageRsv1 = rsv1;
      }
    }
    return { type: TYPES[opcode]!, fin, payload: piece, rsv1, partial: { offset, length } };
  }

  /**
   * Assembles the current frame's payload as its bytes arrive: the buffered bytes are moved
   * (unmasked on the way) into one buffer of the frame's length, allocated on the first call, and
   * their socket chunks let go; text is UTF-8 checked as it is moved. A frame that comes in many
   * socket reads is then held once, in the buffer it will be given out in, instead of as its chunks
   * until the last one arrives and then copied: half the memory, and each chunk is freed young,
   * while it is still in the cache, rather than kept until its frame completes.
   *
   * @returns the frame once its last byte arrived, else null
   */
  private assemble(): Frame | null {
    const length = this.payloadLength;
    let target = this.assembly;
    if (target === undefined) {
      target = this.assembly = Buffer.allocUnsafe(length);
      // Bytes checkAhead() already unmasked and checked in place are moved as they are.
      const checked = this.checked;
      if (checked > 0) this.copyInto(target, checked, undefined, 0);
      this.assembled = checked;
      this.checked = 0;
    }
    const at = this.assembled;
    const n = Math.min(this.bufferedBytes, length - at);
    if (n > 0) {
      this.copyInto(target, n, this.masked ? this.key : undefined, at);
      this.assembled = at + n;
      // Section 8.1, as in checkAhead: invalid text fails as soon as its bytes arrive.
      if (this.textCheck && !this.utf8.write(new BufferView(target.buffer, target.byteOffset + at, n))) {
        throw new WebSocketProxyError('WSP_ERR_INVALID_UTF8', 'in a text message');
      }
    }
    if (this.assembled < length) return null;
    this.assembly = undefined;
    this.assembled = 0;
    this.haveHeader = false;
    // Every text byte went through the validator above: toFrame only ends the message's check.
    return this.toFrame(target, true);
  }

  /** Consumes `n` payload bytes: a view when they are in one chunk, else one copy. */
  private consume(n: number, key: Buffer | undefined): Buffer {
    const first = this.chunks[0]!;
    const start = this.offset;
    if (first.length - start >= n) {
      this.advance(first, n);
      const view = start === 0 && n === first.length ? first : new BufferView(first.buffer, first.byteOffset + start, n);
      if (key !== undefined) unmask(view, key);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    this.copyInto(out, n, key);
    return out;
  }

  private advance(first: Buffer, n: number): void {
    this.bufferedBytes -= n;
    this.offset += n;
    if (this.offset === first.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }

  /**
   * Moves the next `n` bytes into `target` from index `at` on, unmasking them on the way when a key
   * is given (`at` is also their offset in the payload, for the key).
   */
  private copyInto(target: Buffer, n: number, key?: Buffer, at = 0): void {
    // Walk the chunks by index and drop the used ones with one splice: a shift() per chunk is
    // quadratic when a peer sends a large frame in tiny pieces (70000 1-byte chunks took 0.7 s).
    const chunks = this.chunks;
    let written = 0;
    let index = 0;
    let offset = this.offset;
    while (written < n) {
      const chunk = chunks[index]!;
      const take = Math.min(chunk.length - offset, n - written);
      if (key === undefined) {
        chunk.copy(target, at + written, offset, offset + take);
      } else {
        // One pass (copy and unmask together) instead of a copy then an in-place unmask; the key is
        // rotated so that its byte 0 lines up with the payload byte at `at + written`.
        const rotated = this.rotatedKey;
        rotateKey(key, at + written, rotated);
        mask(new BufferView(chunk.buffer, chunk.byteOffset + offset, take), rotated, target, at + written);
      }
      written += take;
      offset += take;
      if (offset === chunk.length) {
        index++;
        offset = 0;
      }
    }
    if (index > 0) chunks.splice(0, index);
    this.offset = offset;
    this.bufferedBytes -= n;
  }

  /**
   * Builds the frame for a complete payload, checking close bodies, UTF-8 and message sequencing.
   *
   * @param payload - the unmasked payload
   * @param checked - whether its bytes went through the UTF-8 validator already ({@link checkAhead})
   */
  private toFrame(payload: Buffer, checked: boolean): Frame {
    const opcode = this.opcode;
    const fin = this.fin;
    if (opcode >= 8) {
      if (opcode !== 8) return { type: TYPES[opcode]!, fin: true, payload, rsv1: false };
      return closeFrameOf(payload);
    }
    if (opcode === 0) {
      if (this.textCheck) {
        if ((!checked && !this.utf8.write(payload)) || (fin && !this.utf8.end())) {
          throw new WebSocketProxyError('WSP_ERR_INVALID_UTF8', 'in a text message');
        }
      }
      if (fin) this.messageOpcode = -1;
      return { type: 'continuation', fin, payload, rsv1: false };
    }
    const rsv1 = this.rsv1;
    if (this.textCheck) {
      const valid = checked
        ? !fin || this.utf8.end()
        : fin ? isShortAscii(payload) || isValidUtf8(payload) : this.utf8.write(payload);
      if (!valid) throw new WebSocketProxyError('WSP_ERR_INVALID_UTF8', 'in a text message');
    }
    if (!fin) {
      this.messageOpcode = opcode;
      this.messageRsv1 = rsv1;
    }
    return { type: opcode === 1 ? 'text' : 'binary', fin, payload, rsv1 };
  }
}

/** Splits a close payload into code and reason, as section 5.5.1 defines the close body. */
function closeFrameOf(body: Buffer): Frame {
  if (body.length === 0) return { type: 'close', fin: true, payload: EMPTY, rsv1: false };
  // "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned integer" (5.5.1)
  if (body.length === 1) throw new WebSocketProxyError('WSP_ERR_INVALID_CLOSE_BODY');
  const code = body.readUInt16BE(0);
  if (!isValidCloseCode(code)) throw new WebSocketProxyError('WSP_ERR_INVALID_CLOSE_CODE', String(code));
  const reason = body.subarray(2);
  // "the body ... MAY contain UTF-8-encoded data", and invalid UTF-8 there fails the connection (8.1).
  if (!isValidUtf8(reason)) throw new WebSocketProxyError('WSP_ERR_INVALID_UTF8', 'in a close reason');
  return { type: 'close', fin: true, payload: reason, rsv1: false, code };
}
