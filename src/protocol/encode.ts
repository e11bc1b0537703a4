/**
 * Frame encoding (RFC 6455 section 5.2): the header with the minimal length form, and the close body.
 * Pure functions, no streams: `FrameWritable` and the tests' fixture builders both use them.
 *
 * @packageDocumentation
 */
// The global `Buffer` is an accessor in ES modules (about 13 ns a read on Node 20): use the import.
import { Buffer } from 'node:buffer';
import { WebSocketProxyError } from '../errors.js';
import { type Frame, isValidCloseCode, opcodeOf } from '../frame.js';
import { mask } from './mask.js';
import { isValidUtf8 } from './utf8.js';

/** Largest payload of a control frame (RFC 6455 section 5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/** Unmasked payloads up to this size are copied next to their header rather than written apart. */
const SMALL_PAYLOAD = 1024;

/** Largest close reason: a control payload less the 2-byte status code. */
export const MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2;

/**
 * Length of the header for a payload of `length` bytes.
 *
 * @param length - payload length
 * @param masked - whether a 4-byte masking key follows the length
 */
export function headerLength(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Writes a frame header into `target` at offset 0.
 *
 * "The minimal number of bytes MUST be used to encode the length" (RFC 6455 section 5.2), so a
 * length below 126 goes in 7 bits, below 65536 in 16 bits, and anything else in 64 bits.
 *
 * @param target - at least {@link headerLength} bytes
 * @param opcode - the frame's opcode
 * @param fin - the FIN bit
 * @param rsv1 - the RSV1 bit
 * @param length - the payload length
 * @param key - the masking key, or undefined for an unmasked frame
 * @returns the number of header bytes written
 */
export function writeHeader(
  target: Buffer,
  opcode: number,
  fin: boolean,
  rsv1: boolean,
  length: number,
  key: Buffer | undefined,
): number {
  target[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = key === undefined ? 0 : 0x80;
  let offset: number;
  if (length < 126) {
    target[1] = maskBit | length;
    offset = 2;
  } else if (length < 0x10000) {
    target[1] = maskBit | 126;
    target.writeUInt16BE(length, 2);
    offset = 4;
  } else {
    target[1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(length / 0x100000000), 2);
    target.writeUInt32BE(length >>> 0, 6);
    offset = 10;
  }
  if (key !== undefined) {
    target[offset] = key[0]!;
    target[offset + 1] = key[1]!;
    target[offset + 2] = key[2]!;
    target[offset + 3] = key[3]!;
    offset += 4;
  }
  return offset;
}

/**
 * Cuts a close reason to at most {@link MAX_CLOSE_REASON} bytes without splitting a UTF-8 character.
 *
 * @param reason - the reason as UTF-8 bytes
 * @returns `reason` itself when it fits, else a view of its longest valid prefix
 */
export function truncateCloseReason(reason: Buffer): Buffer {
  if (reason.length <= MAX_CLOSE_REASON) return reason;
  let end = MAX_CLOSE_REASON;
  // Step back over continuation bytes so the cut falls before a character's lead byte.
  while (end > 0 && (reason[end]! & 0xc0) === 0x80) end--;
  return reason.subarray(0, end);
}

/**
 * Checks the sender's rules that depend on the connection's state: fragments in sequence and never
 * interleaved (RFC 6455 section 5.4), FIN on control frames (section 5.5), and RSV1 only on the
 * first frame of a data message when an extension allows it (RFC 7692 section 6.1).
 *
 * @param frame - the frame about to be sent
 * @param messageOpen - whether a fragmented message sent on this connection is still open
 * @param allowRsv1 - whether a negotiated extension defines RSV1
 * @throws WebSocketProxyError WSP_ERR_INVALID_FRAME
 */
export function checkSendable(frame: Frame, messageOpen: boolean, allowRsv1: boolean): void {
  const type = frame.type;
  const data = type === 'text' || type === 'binary' || type === 'continuation';
  if (data) {
    if (type === 'continuation' ? !messageOpen : messageOpen) {
      throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME',
        type === 'continuation' ? 'continuation frame without an open message' : `${type} frame inside an open message`);
    }
  } else if (!frame.fin) {
    throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'control frames must have FIN set');
  }
  if (frame.rsv1 === true && (!allowRsv1 || type === 'continuation' || !data)) {
    throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'RSV1 set without an extension that allows it');
  }
}

/**
 * The wire payload of a frame: the payload itself, or for a close frame the 2-byte code followed by
 * the (cut) reason. Checks what a sender must: control payloads of at most 125 bytes, a valid close
 * code, a UTF-8 reason and no reason without a code.
 *
 * @param frame - the frame to send
 * @returns the bytes that go on the wire after the header, before masking
 * @throws WebSocketProxyError WSP_ERR_INVALID_FRAME
 */
export function wirePayload(frame: Frame): Buffer {
  const payload = frame.payload;
  if (!Buffer.isBuffer(payload)) throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'payload must be a Buffer');
  if (frame.type === 'close') {
    if (frame.code === undefined) {
      if (payload.length > 0) {
        throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'a close reason needs a close code');
      }
      return payload;
    }
    // Sending a code that may not be sent is our own misuse (1011), unlike receiving one (1002):
    // "Endpoints MUST NOT send ... a status code that is not defined" (RFC 6455 section 7.4).
    if (!isValidCloseCode(frame.code)) {
      throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', `close code ${String(frame.code)} may not be sent`);
    }
    // A peer fails the connection on a reason that is not UTF-8 (section 8.1): don't send one.
    if (!isValidUtf8(payload)) throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'close reason is not valid UTF-8');
    const reason = truncateCloseReason(payload);
    const body = Buffer.allocUnsafe(2 + reason.length);
    body.writeUInt16BE(frame.code, 0);
    reason.copy(body, 2);
    return body;
  }
  if ((frame.type === 'ping' || frame.type === 'pong') && payload.length > MAX_CONTROL_PAYLOAD) {
    // "All control frames MUST have a payload length of 125 bytes or less" (RFC 6455 section 5.5).
    throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', `${frame.type} payload of ${payload.length} bytes`);
  }
  return payload;
}

/**
 * Masked payloads from this size up are masked in place when the caller allows it: below it, one
 * buffer for the header and a masked copy costs less than a second buffer handed to the socket.
 */
export const MASK_IN_PLACE_MIN = 16 * 1024;

/**
 * Encodes a frame as a header and a payload, without copying an unmasked payload.
 *
 * A masked frame comes back as one buffer holding the header and a masked copy of the payload, and
 * the caller's payload is not modified; unless `inPlace` is set and the payload has at least
 * {@link MASK_IN_PLACE_MIN} bytes: then the payload itself is masked (it is garbage to anyone who
 * reads it afterwards) and comes back as the second buffer, and no payload-sized buffer is allocated.
 *
 * @param frame - the frame to encode
 * @param key - a 4-byte masking key, or undefined for an unmasked frame
 * @param inPlace - whether the payload is the encoder's to mask in place: set it only for a buffer
 *   no one will read again (see `transferPayload` in `FrameWritable`)
 * @returns one or two buffers to write in order
 * @throws WebSocketProxyError when the frame cannot be sent (see {@link wirePayload})
 * @defaultValue inPlace: false
 */
export function encodeFrame(frame: Frame, key?: Buffer, inPlace = false): [Buffer] | [Buffer, Buffer] {
  const opcode = opcodeOf(frame.type);
  if (opcode === undefined) throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', `unknown type ${String(frame.type)}`);
  if (opcode >= 0x8 && !frame.fin) {
    throw new WebSocketProxyError('WSP_ERR_INVALID_FRAME', 'control frames must have FIN set');
  }
  const payload = wirePayload(frame);
  const length = payload.length;
  const size = headerLength(length, key !== undefined);
  if (key === undefined) {
    if (length > SMALL_PAYLOAD) {
      const header = Buffer.allocUnsafe(size);
      writeHeader(header, opcode, frame.fin, frame.rsv1 === true, length, undefined);
      return [header, payload];
    }
    // A small payload is cheaper to copy than to hand to the socket as a buffer of its own.
    const out = Buffer.allocUnsafe(size + length);
    writeHeader(out, opcode, frame.fin, frame.rsv1 === true, length, undefined);
    out.set(payload, size); // TypedArray#set: a builtin, cheaper than Buffer#copy for small payloads
    return [out];
  }
  if (inPlace && length >= MASK_IN_PLACE_MIN) {
    const header = Buffer.allocUnsafe(size);
    writeHeader(header, opcode, frame.fin, frame.rsv1 === true, length, key);
    mask(payload, key, payload, 0);
    return [header, payload];
  }
  const out = Buffer.allocUnsafe(size + length);
  writeHeader(out, opcode, frame.fin, frame.rsv1 === true, length, key);
  mask(payload, key, out, size);
  return [out];
}
