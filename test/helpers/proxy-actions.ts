/**
 * What the client and the upstream of a proxied connection may do, as fast-check arbitraries, for
 * the proxy's property spec: messages (text or binary, sizes across the length forms, fragmented or
 * not, a ping between fragments), pings and pongs, close frames with any valid code, pauses in
 * reading, and the faults (invalid frames, TCP resets, FIN without a close frame).
 *
 * Each invalid frame comes with the error the proxy must end the connection with.
 */
import fc from 'fast-check';
import type { ErrorCode } from '../../src/errors.js';
import type { Frame } from '../../src/frame.js';
import { naiveEncode } from '../fixtures/frames.js';
import { EDGE_CHARS, closeCodeArb, closeReasonArb, repeatedText, seededBytes, sizeArb } from './frame-arbitraries.js';

/** A side of the proxied connection (the proxy's name for it). */
export type SideName = 'client' | 'upstream';

/** Invalid frames a side may send; see {@link invalidFrame}. */
export const INVALID_VARIANTS = [
  'opcode', 'rsv1', 'rsv2', 'mask', 'fragmentedPing', 'longPing', 'utf8', 'closeBody', 'closeCode', 'closeReason',
  'continuation', 'interleaved', 'tooLarge',
] as const;
export type InvalidVariant = (typeof INVALID_VARIANTS)[number];

/** One thing a side (or, for `pause`, its reader) does. */
export type Action =
  | { kind: 'message'; from: SideName; text: boolean; size: number; seed: number; unit: string; cuts: number[]; pingBetween: boolean }
  | { kind: 'control'; from: SideName; type: 'ping' | 'pong'; payload: Buffer }
  | { kind: 'close'; from: SideName; code: number | undefined; reason: Buffer }
  | { kind: 'pause'; who: SideName; ms: number }
  | { kind: 'wait'; turns: number }
  | { kind: 'invalid'; from: SideName; variant: InvalidVariant }
  | { kind: 'reset'; from: SideName }
  | { kind: 'end'; from: SideName; midFrame: boolean };

const sideArb = fc.constantFrom<SideName>('client', 'upstream');

/** A message's payload as its sender sends it. */
export function messagePayload(action: Extract<Action, { kind: 'message' }>): Buffer {
  if (!action.text) return seededBytes(action.size, action.seed);
  return repeatedText(action.unit, action.size);
}

/** The fragments of a message: its payload cut at `cuts` (modulo its length), empty ones too. */
export function messageFrames(action: Extract<Action, { kind: 'message' }>): Frame[] {
  const payload = messagePayload(action);
  const cuts = action.cuts.map((c) => c % (payload.length + 1)).sort((a, b) => a - b);
  const bounds = [0, ...cuts, payload.length];
  const frames: Frame[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const fin = i + 2 === bounds.length;
    const part = payload.subarray(bounds[i]!, bounds[i + 1]!);
    frames.push(i === 0
      ? { type: action.text ? 'text' : 'binary', fin, rsv1: false, payload: part }
      : { type: 'continuation', fin, rsv1: false, payload: part });
  }
  return frames;
}

/** An action arbitrary: mostly messages, with the rarer events (closes, faults) less likely. */
export const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('message' as const),
      from: sideArb,
      text: fc.boolean(),
      size: sizeArb(200000),
      seed: fc.integer(),
      unit: fc.string({ unit: fc.constantFrom(...EDGE_CHARS), minLength: 1, maxLength: 4 }),
      cuts: fc.oneof(fc.constant<number[]>([]), fc.array(fc.nat(), { maxLength: 4 })),
      pingBetween: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('control' as const),
      from: sideArb,
      type: fc.constantFrom('ping' as const, 'pong' as const),
      payload: fc.uint8Array({ maxLength: 125 }).map((b) => Buffer.from(b)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('close' as const),
      from: sideArb,
      code: fc.option(closeCodeArb, { freq: 5, nil: undefined }),
      reason: closeReasonArb,
    }).map((a) => (a.code === undefined ? { ...a, reason: Buffer.alloc(0) } : a)),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pause' as const), who: sideArb, ms: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait' as const), turns: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('invalid' as const), from: sideArb, variant: fc.constantFrom(...INVALID_VARIANTS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const), from: sideArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('end' as const), from: sideArb, midFrame: fc.boolean() }) },
);

const KEY = Buffer.from([0x12, 0x34, 0x56, 0x78]);

/** Encodes a frame as `from` sends it (masked by the client) with the naive encoder: no checks at all. */
function raw(from: SideName, frame: Frame): Buffer {
  return naiveEncode(frame, from === 'client' ? KEY : undefined);
}

function withFirstByte(bytes: Buffer, b0: number): Buffer {
  bytes[0] = b0;
  return bytes;
}

const text = (payload: Buffer | string, fin = true): Frame => ({ type: 'text', fin, rsv1: false, payload: Buffer.from(payload) });

/**
 * The bytes of an invalid frame sent by `from`, and the error the proxy's reader of that side must
 * fail with (each a MUST of RFC 6455 sections 5 and 8, or the side's frame size limit).
 */
export function invalidFrame(from: SideName, variant: InvalidVariant): { bytes: Buffer; code: ErrorCode } {
  switch (variant) {
    case 'opcode':
      return { bytes: withFirstByte(raw(from, text('x')), 0x83), code: 'WSP_ERR_INVALID_OPCODE' };
    case 'rsv1':
      // No extension is negotiated between the raw peers and the proxy: RSV1 is reserved too.
      return { bytes: withFirstByte(raw(from, text('x')), 0xc1), code: 'WSP_ERR_UNEXPECTED_RSV' };
    case 'rsv2':
      return { bytes: withFirstByte(raw(from, text('x')), 0xa1), code: 'WSP_ERR_UNEXPECTED_RSV' };
    case 'mask':
      return from === 'client'
        ? { bytes: naiveEncode(text('x')), code: 'WSP_ERR_MASK_REQUIRED' }
        : { bytes: naiveEncode(text('x'), KEY), code: 'WSP_ERR_MASK_FORBIDDEN' };
    case 'fragmentedPing':
      return { bytes: raw(from, { type: 'ping', fin: false, rsv1: false, payload: Buffer.from('p') }), code: 'WSP_ERR_FRAGMENTED_CONTROL' };
    case 'longPing':
      return { bytes: raw(from, { type: 'ping', fin: true, rsv1: false, payload: Buffer.alloc(126, 0x70) }), code: 'WSP_ERR_CONTROL_TOO_LONG' };
    case 'utf8':
      return { bytes: raw(from, text(Buffer.from([0x61, 0xff, 0xfe]))), code: 'WSP_ERR_INVALID_UTF8' };
    case 'closeBody':
      return { bytes: raw(from, { type: 'close', fin: true, rsv1: false, payload: Buffer.from([0x03]) }), code: 'WSP_ERR_INVALID_CLOSE_BODY' };
    case 'closeCode':
      return { bytes: raw(from, { type: 'close', fin: true, rsv1: false, payload: Buffer.alloc(0), code: 1005 }), code: 'WSP_ERR_INVALID_CLOSE_CODE' };
    case 'closeReason':
      return { bytes: raw(from, { type: 'close', fin: true, rsv1: false, payload: Buffer.from([0xc3, 0x28]), code: 1000 }), code: 'WSP_ERR_INVALID_UTF8' };
    case 'continuation':
      return { bytes: raw(from, { type: 'continuation', fin: true, rsv1: false, payload: Buffer.from('c') }), code: 'WSP_ERR_UNEXPECTED_CONTINUATION' };
    case 'interleaved':
      return {
        bytes: Buffer.concat([raw(from, text('ab', false)), raw(from, { type: 'binary', fin: true, rsv1: false, payload: Buffer.from('b') })]),
        code: 'WSP_ERR_MESSAGE_NOT_FINISHED',
      };
    case 'tooLarge': {
      // A header announcing 2^40 bytes: over any side's frame size limit, refused at the header.
      const header = Buffer.from([0x82, from === 'client' ? 0xff : 0x7f, 0, 0, 1, 0, 0, 0, 0, 0]);
      return { bytes: from === 'client' ? Buffer.concat([header, KEY]) : header, code: 'WSP_ERR_FRAME_TOO_LARGE' };
    }
  }
}

/** The first bytes of a valid frame, for a connection that ends in the middle of one. */
export function truncatedFrame(from: SideName): Buffer {
  return raw(from, text('truncated')).subarray(0, 4);
}
