/**
 * fast-check arbitraries of WebSocket frames for the property specs: payloads across the 7-, 16- and
 * 64-bit length forms, UTF-8 edge cases, valid close codes, and valid frame sequences (messages,
 * fragments cut anywhere, even inside a character, control frames between fragments).
 *
 * Large payloads are described by a size and a seed and filled here: an array arbitrary of 65536
 * bytes would cost fast-check far more than the property under test.
 */
import fc from 'fast-check';
import type { Frame } from '../../src/frame.js';

/** Payload lengths at and around the length-form boundaries of RFC 6455 section 5.2. */
export const BOUNDARY_SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537] as const;

/**
 * Characters at the edges of UTF-8 (each byte length's first and last code point, the surrogate gap,
 * U+FEFF, U+FFFD, U+10FFFF) and a few ordinary ones.
 */
export const EDGE_CHARS = [
  '\u0000', 'a', '\u007f', '\u0080', 'é', '\u07ff', '\u0800', '€', '\ud7ff', '\ue000', '\ufeff', '\ufffd', '\uffff',
  '\u{10000}', '😀', '\u{10ffff}',
] as const;

/** Close codes that may be sent (RFC 6455 section 7.4): every defined one and the private ranges. */
export const closeCodeArb: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014),
  fc.integer({ min: 3000, max: 4999 }),
);

/** `size` bytes made from `seed` (xorshift), so that a large payload costs one integer to shrink. */
export function seededBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let s = seed | 0 || 1;
  for (let i = 0; i < size; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

/** Valid UTF-8 of at least `size` bytes (at most 3 more): `unit` repeated. */
export function repeatedText(unit: string, size: number): Buffer {
  const piece = Buffer.from(unit === '' ? 'a' : unit, 'utf8');
  const count = Math.ceil(size / piece.length);
  return Buffer.concat(Array.from({ length: count }, () => piece));
}

/** A size: mostly small, often at a length-form boundary, sometimes past 64 KiB. */
export function sizeArb(max = 70000): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 125 }) },
    { weight: 3, arbitrary: fc.constantFrom(...BOUNDARY_SIZES.filter((n) => n <= max)) },
    { weight: 2, arbitrary: fc.integer({ min: 126, max: Math.min(3000, max) }) },
    { weight: 1, arbitrary: fc.integer({ min: Math.min(65536, max), max }) },
  );
}

/** Binary payloads: short ones byte by byte, long ones from a size and a seed. */
export function binaryArb(max = 70000): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 130 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 2, arbitrary: fc.tuple(sizeArb(max), fc.integer()).map(([size, seed]) => seededBytes(size, seed)) },
  );
}

/** Text as UTF-8: short strings of edge-case or any characters, and long repetitions of them. */
export function textArb(max = 70000): fc.Arbitrary<Buffer> {
  const char = fc.oneof(fc.constantFrom(...EDGE_CHARS), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
  const short = fc.string({ unit: char, maxLength: 40 }).map((text) => Buffer.from(text, 'utf8'));
  const long = fc.tuple(fc.string({ unit: char, minLength: 1, maxLength: 6 }), sizeArb(max)).map(([unit, size]) => repeatedText(unit, size));
  return fc.oneof({ weight: 3, arbitrary: short }, { weight: 2, arbitrary: long });
}

/** A close reason of at most 123 bytes of UTF-8. */
export const closeReasonArb: fc.Arbitrary<Buffer> = fc
  .string({ unit: fc.constantFrom(...EDGE_CHARS), maxLength: 40 })
  .map((text) => Buffer.from(text, 'utf8'))
  .filter((reason) => reason.length <= 123);

/** A ping or pong (0 to 125 bytes) or a close frame (with a code and a reason, or an empty body). */
export const controlArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.tuple(fc.constantFrom('ping' as const, 'pong' as const), fc.oneof(
    fc.uint8Array({ maxLength: 125 }),
    fc.constantFrom(0, 125).map((n) => new Uint8Array(n).fill(0x5a)),
  )).map(([type, payload]): Frame => ({ type, fin: true, rsv1: false, payload: Buffer.from(payload) })),
  fc.tuple(closeCodeArb, closeReasonArb).map(([code, payload]): Frame => ({ type: 'close', fin: true, rsv1: false, payload, code })),
  fc.constant<Frame>({ type: 'close', fin: true, rsv1: false, payload: Buffer.alloc(0) }),
);

/** One item of a frame sequence: a data message (maybe fragmented, controls between) or a control frame. */
type Item =
  | { kind: 'control'; frame: Frame }
  | { kind: 'message'; text: boolean; payload: Buffer; cuts: number[]; between: (Frame | null)[]; rsv1: boolean };

function itemArb(allowRsv1: boolean, max: number): fc.Arbitrary<Item> {
  const message = fc.boolean().chain((text) => fc.record({
    kind: fc.constant('message' as const),
    text: fc.constant(text),
    payload: text ? textArb(max) : binaryArb(max),
    cuts: fc.array(fc.nat(), { maxLength: 5 }),
    between: fc.array(fc.option(controlArb, { freq: 3 }), { maxLength: 5 }),
    rsv1: allowRsv1 ? fc.boolean() : fc.constant(false),
  }));
  return fc.oneof(
    { weight: 1, arbitrary: controlArb.map((frame): Item => ({ kind: 'control', frame })) },
    { weight: 3, arbitrary: message },
  );
}

/** The frames of one item: a message's fragments are cut at `cuts` (empty fragments too). */
function framesOf(item: Item): Frame[] {
  if (item.kind === 'control') return [item.frame];
  const { payload } = item;
  const cuts = item.cuts.map((c) => c % (payload.length + 1)).sort((a, b) => a - b);
  const bounds = [0, ...cuts, payload.length];
  const frames: Frame[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const control = i > 0 ? item.between[i - 1] : null;
    if (control !== null && control !== undefined) frames.push(control);
    const fin = i + 2 === bounds.length;
    const part = payload.subarray(bounds[i]!, bounds[i + 1]!);
    frames.push(i === 0
      ? { type: item.text ? 'text' : 'binary', fin, rsv1: item.rsv1, payload: part }
      : { type: 'continuation', fin, rsv1: false, payload: part });
  }
  return frames;
}

/**
 * A valid frame sequence as one peer may send it. With `allowRsv1`, some messages are marked
 * compressed (RSV1 on their first frame); their payloads are then not UTF-8 checked by a parser.
 *
 * @param allowRsv1 - whether RSV1 may be set
 * @param maxItems - most messages and lone control frames
 * @param maxSize - largest data payload
 */
export function frameSequenceArb(allowRsv1: boolean, maxItems = 8, maxSize = 70000): fc.Arbitrary<Frame[]> {
  return fc.array(itemArb(allowRsv1, maxSize), { maxLength: maxItems }).map((items) => items.flatMap(framesOf));
}
