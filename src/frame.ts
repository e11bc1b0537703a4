/**
 * The frame model shared by every stage of a direction: what a `FrameReadable` emits, what transforms
 * see and what a `FrameWritable` sends.
 *
 * @packageDocumentation
 */

/** The six frame types of RFC 6455 section 5.2, by name. */
export type FrameType = 'continuation' | 'text' | 'binary' | 'close' | 'ping' | 'pong';

/**
 * Where the piece of a frame carried by a {@link Frame} lies in that frame (cut-through forwarding).
 *
 * A frame too large to wait for may travel as pieces: several `Frame` objects with the same `type`,
 * `fin` and `rsv1` (the frame's), each with `partial` set and `payload` holding the frame's payload
 * bytes `[offset, offset + payload.length)`. Pieces of one frame come in order, contiguous, with
 * nothing between them (no control frame can go inside a frame on the wire); the last one is the one
 * where `offset + payload.length === length`. Only a `FrameReadable` asked for them emits pieces,
 * and only a `FrameWritable` (and the proxy's stage-less directions) takes them: stages and `onFrame`
 * never see one.
 */
export interface PartialPayload {
  /** Index, in the frame's payload, of this piece's first byte. */
  offset: number;
  /** Payload length of the whole frame, as its header announces it. */
  length: number;
}

/**
 * One WebSocket frame.
 *
 * For close frames `code` is the status code (absent when the close body is empty) and `payload` is
 * the reason only, without the 2-byte code. For every other type `code` is absent.
 *
 * Payload buffers may be views into a socket chunk: treat them as read-only, and copy before mutating.
 */
export interface Frame {
  /** Frame type, from the opcode. */
  type: FrameType;
  /** FIN bit: false for every fragment of a message but the last. Always true for control frames. */
  fin: boolean;
  /** Payload, unmasked; for a close frame, the reason only. */
  payload: Buffer;
  /** RSV1 bit (used by extensions such as permessage-deflate). */
  rsv1: boolean;
  /** Close status code, close frames only. */
  code?: number;
  /** Set on a piece of a data frame, absent on a whole frame: see {@link PartialPayload}. */
  partial?: PartialPayload;
}

/** Opcodes of RFC 6455 section 5.2. */
export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** Close status codes of RFC 6455 section 7.4.1 and the IANA registry. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Reserved: never sent; means "no status code was present". */
  NO_STATUS: 1005,
  /** Reserved: never sent; means "the connection closed without a close frame". */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  /** Reserved: never sent; means "the TLS handshake failed". */
  TLS_HANDSHAKE: 1015,
} as const;

const EMPTY = Buffer.alloc(0);

/**
 * The opcode of a frame type.
 *
 * @param type - a frame type
 * @returns its opcode, or undefined for a value that is not a frame type
 */
export function opcodeOf(type: FrameType): number | undefined {
  // A switch compares strings without a property lookup: it runs for every frame written, and a
  // lookup keyed by the type in an object goes through V8's generic (megamorphic) keyed load.
  switch (type) {
    case 'text': return Opcode.TEXT;
    case 'binary': return Opcode.BINARY;
    case 'continuation': return Opcode.CONTINUATION;
    case 'close': return Opcode.CLOSE;
    case 'ping': return Opcode.PING;
    case 'pong': return Opcode.PONG;
    default: return undefined;
  }
}

/**
 * Tells whether a frame type is a control type (close, ping, pong).
 *
 * @param type - a frame type
 */
export function isControlType(type: FrameType): boolean {
  return type === 'close' || type === 'ping' || type === 'pong';
}

/**
 * Tells whether a close code may appear in a close frame on the wire (RFC 6455 section 7.4):
 * 1000-1003, 1007-1014 and 3000-4999. 1004 is reserved, 1005, 1006 and 1015 are never sent,
 * 1016-2999 are reserved for the protocol, and anything below 1000 or from 5000 up is undefined.
 *
 * @param code - a close status code
 */
export function isValidCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
      (code >= 3000 && code <= 4999))
  );
}

function toPayload(data: string | Buffer | undefined): Buffer {
  if (data === undefined) return EMPTY;
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * A text frame.
 *
 * @param data - the payload; a string is encoded as UTF-8
 * @param fin - false for a fragment that more fragments follow
 * @defaultValue fin: true
 */
export function textFrame(data: string | Buffer, fin = true): Frame {
  return { type: 'text', fin, payload: toPayload(data), rsv1: false };
}

/**
 * A binary frame.
 *
 * @param data - the payload; a string is encoded as UTF-8
 * @param fin - false for a fragment that more fragments follow
 * @defaultValue fin: true
 */
export function binaryFrame(data: string | Buffer, fin = true): Frame {
  return { type: 'binary', fin, payload: toPayload(data), rsv1: false };
}

/**
 * A continuation frame of a fragmented message.
 *
 * @param data - the payload; a string is encoded as UTF-8
 * @param fin - true for the last fragment of the message
 * @defaultValue fin: true
 */
export function continuationFrame(data: string | Buffer, fin = true): Frame {
  return { type: 'continuation', fin, payload: toPayload(data), rsv1: false };
}

/**
 * A ping frame.
 *
 * @param data - application data, at most 125 bytes
 */
export function pingFrame(data?: string | Buffer): Frame {
  return { type: 'ping', fin: true, payload: toPayload(data), rsv1: false };
}

/**
 * A pong frame.
 *
 * @param data - application data, at most 125 bytes (a pong answering a ping carries the ping's data)
 */
export function pongFrame(data?: string | Buffer): Frame {
  return { type: 'pong', fin: true, payload: toPayload(data), rsv1: false };
}

/**
 * A close frame.
 *
 * @param code - the status code; omit it for an empty close body (then no reason may be given)
 * @param reason - the reason; a `FrameWritable` cuts it at a character boundary to fit 123 bytes
 */
export function closeFrame(code?: number, reason?: string | Buffer): Frame {
  const frame: Frame = { type: 'close', fin: true, payload: toPayload(reason), rsv1: false };
  if (code !== undefined) frame.code = code;
  return frame;
}
