/**
 * Property-based tests (fast-check) of the frame codec: `FrameParser` (src/protocol/parser.ts) and
 * `encodeFrame` (src/protocol/encode.ts).
 *
 * - any valid frame sequence, in either role, split at any points, parses to the same frames
 *   (also when large frames come out in pieces, `partialFrom`);
 * - any byte string gives frames, then either "more bytes needed" or exactly one coded
 *   `WebSocketProxyError`, never another throw, never a loop; the frames it gave re-encode and
 *   re-parse to themselves;
 * - `encodeFrame` then the parser is the identity, byte for byte the naive oracle's encoding, and
 *   never touches the caller's payload unless told to mask in place.
 *
 * Reproducing a failure: the failure message ends with `Replay: WSP_SEED=<seed> WSP_PATH=<path>`;
 * run `WSP_SEED=<seed> WSP_PATH=<path> npx mocha dist/test/protocol/parser.property.spec.js --grep
 * '<test title>'` to run that counterexample alone. `WSP_PROPERTY_RUNS=<factor>` multiplies the run
 * counts (200 per property by default) for a long run. See test/helpers/property.ts.
 */
import { expect } from 'chai';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { type ErrorCode, ErrorCodes, WebSocketProxyError } from '../../src/errors.js';
import { type Frame, isValidCloseCode } from '../../src/frame.js';
import { MASK_IN_PLACE_MIN, encodeFrame } from '../../src/protocol/encode.js';
import { FrameParser, type FrameParserOptions, type Role } from '../../src/protocol/parser.js';
import { isValidUtf8 } from '../../src/protocol/utf8.js';
import { concat, naiveEncode, parserOptions, view } from '../fixtures/frames.js';
import { EDGE_CHARS, closeCodeArb, controlArb, frameSequenceArb, seededBytes } from '../helpers/frame-arbitraries.js';
import { checkProperty, propertyParameters } from '../helpers/property.js';

const RUNS = 200;

const roleArb = fc.constantFrom<Role>('server', 'client');
const keyArb = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((bytes) => Buffer.from(bytes));
/** Where large data frames start to come out in pieces: mostly never, sometimes always. */
const partialFromArb = fc.constantFrom(Infinity, Infinity, 0, 1, 126, 65536);

/** Cuts `bytes` at the given points (taken modulo its length), or into 1-byte chunks. */
function split(bytes: Buffer, cuts: readonly number[], oneByte: boolean): Buffer[] {
  if (oneByte) return Array.from(bytes, (b) => Buffer.from([b]));
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const bounds = [0, ...points, bytes.length];
  const chunks: Buffer[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    if (bounds[i + 1]! > bounds[i]!) chunks.push(bytes.subarray(bounds[i]!, bounds[i + 1]!));
  }
  return chunks;
}

/** What a parser made of a byte string: its frames, and the error it ended with, if any. */
interface Outcome {
  frames: Frame[];
  error: unknown;
}

/**
 * Pushes each chunk (a copy: the parser unmasks in place) and drains the parser after each push.
 * Fails the property if the parser gives more frames than bytes were pushed (every frame or piece
 * consumes at least one byte: more means it loops), or throws twice.
 */
function parse(options: FrameParserOptions, chunks: readonly Buffer[]): Outcome {
  const parser = new FrameParser(options);
  const frames: Frame[] = [];
  let pushed = 0;
  let error: unknown;
  for (const chunk of chunks) {
    parser.push(Buffer.from(chunk));
    pushed += chunk.length;
    try {
      for (let f = parser.next(); f !== null; f = parser.next()) {
        // Copied: a later push may not touch what was given out, but the test keeps them all.
        frames.push({ ...f, payload: Buffer.from(f.payload) });
        if (frames.length > pushed) throw new Error(`the parser gave ${frames.length} frames for ${pushed} bytes`);
      }
    } catch (err) {
      if (error !== undefined) throw new Error('the parser threw twice', { cause: err });
      error = err;
    }
  }
  return { frames, error };
}

/**
 * Joins the pieces of each frame given in pieces (`partial`), checking they are in order and
 * contiguous. A frame whose last piece has not come (the input stopped inside it) is left out.
 */
function joinPieces(frames: readonly Frame[]): Frame[] {
  const out: Frame[] = [];
  let open: { frame: Frame; parts: Buffer[]; next: number } | undefined;
  for (const f of frames) {
    if (f.partial === undefined) {
      expect(open, 'a whole frame inside a frame given in pieces').to.equal(undefined);
      out.push(f);
      continue;
    }
    expect(['text', 'binary', 'continuation']).to.include(f.type);
    if (open === undefined) {
      expect(f.partial.offset, 'first piece offset').to.equal(0);
      open = { frame: f, parts: [], next: 0 };
    }
    expect(f.partial.offset, 'pieces are contiguous').to.equal(open.next);
    expect([f.type, f.fin, f.rsv1, f.partial.length]).to.deep.equal([open.frame.type, open.frame.fin, open.frame.rsv1, open.frame.partial!.length]);
    open.parts.push(f.payload);
    open.next += f.payload.length;
    if (open.next === f.partial.length) {
      out.push({ type: f.type, fin: f.fin, rsv1: f.rsv1, payload: Buffer.concat(open.parts) });
      open = undefined;
    }
  }
  return out;
}

/** The wire bytes of frames as a peer of `role` sends them (masked toward a server), by the naive oracle. */
function wire(frames: readonly Frame[], role: Role, keys: readonly Buffer[]): Buffer {
  return concat(frames.map((f, i) => naiveEncode(f, role === 'server' ? keys[i % keys.length] : undefined)));
}

/** Checks that `err` is one coded parser error: a WebSocketProxyError of the table with its close code. */
function expectCodedError(err: unknown): void {
  expect(err, String(err)).to.be.instanceOf(WebSocketProxyError);
  const e = err as WebSocketProxyError;
  expect(Object.keys(ErrorCodes)).to.include(e.code);
  expect(e.closeCode).to.equal(ErrorCodes[e.code as ErrorCode].closeCode);
  // A parser fails for the protocol (1002), the text (1007) or a limit (1009), never for another reason.
  expect([1002, 1007, 1009]).to.include(e.closeCode);
}

/**
 * The naive oracle of what a parser may give: control frames final and short, close codes sendable
 * and reasons UTF-8, RSV1 only where allowed, fragments in sequence, every limit held, and each
 * finished text message valid UTF-8 (checked whole with node:buffer's isUtf8, not the parser's code).
 */
function expectAllowed(frames: readonly Frame[], options: FrameParserOptions): void {
  let open: { text: boolean; rsv1: boolean; size: number; count: number; parts: Buffer[] } | undefined;
  for (const f of frames) {
    if (f.type === 'ping' || f.type === 'pong' || f.type === 'close') {
      expect([f.fin, f.rsv1, f.payload.length <= 125], `${f.type} frame`).to.deep.equal([true, false, true]);
      if (f.type === 'close') {
        if (f.code === undefined) expect(f.payload.length, 'reason without a code').to.equal(0);
        else expect(isValidCloseCode(f.code), `close code ${f.code}`).to.equal(true);
        expect(isUtf8(f.payload), 'close reason').to.equal(true);
      }
      continue;
    }
    expect(f.payload.length, 'maxFrameSize').to.be.at.most(options.maxFrameSize);
    if (f.type === 'continuation') {
      expect(open, 'continuation without a message').not.to.equal(undefined);
      expect(f.rsv1, 'RSV1 on a continuation').to.equal(false);
    } else {
      expect(open, `${f.type} frame inside a message`).to.equal(undefined);
      if (f.rsv1) expect(options.allowRsv1, 'RSV1 allowed').to.equal(true);
      open = { text: f.type === 'text', rsv1: f.rsv1, size: 0, count: 0, parts: [] };
    }
    const message = open!;
    message.size += f.payload.length;
    message.count++;
    message.parts.push(f.payload);
    expect(message.size, 'maxMessageSize').to.be.at.most(options.maxMessageSize ?? Infinity);
    expect(message.count, 'maxFragments').to.be.at.most(options.maxFragments ?? Infinity);
    if (f.fin) {
      if (message.text && !message.rsv1 && options.validateUtf8) expect(isUtf8(Buffer.concat(message.parts)), 'a text message').to.equal(true);
      open = undefined;
    }
  }
}

/**
 * Well-formed frames in any order with any content: continuations without a message, messages
 * inside messages, fragmented controls, any close code, text cut inside characters or not UTF-8 at
 * all; masked as the role wants, one time in ten not.
 */
function shuffledFramesArb(role: Role): fc.Arbitrary<Buffer> {
  const frameArb = fc.record({
    // Mostly text and continuations, RSV1 rarely: sequences that get far enough to reach the checks
    // of message state and of text cut across fragments.
    type: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom<Frame['type']>('continuation', 'text') },
      { weight: 1, arbitrary: fc.constantFrom<Frame['type']>('binary', 'close', 'ping', 'pong') },
    ),
    fin: fc.boolean(),
    rsv1: fc.integer({ min: 0, max: 29 }).map((n) => n === 0),
    code: fc.option(fc.nat(0xffff), { nil: undefined }),
    payload: fc.oneof(
      fc.tuple(fc.string({ unit: fc.constantFrom(...EDGE_CHARS), maxLength: 10 }), fc.nat()).map(([text, cut]) => {
        const bytes = Buffer.from(text, 'utf8');
        return bytes.subarray(0, cut % (bytes.length + 1));
      }),
      fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b)),
    ),
  });
  return fc.record({
    key: keyArb,
    frames: fc.array(frameArb, { minLength: 1, maxLength: 8 }),
    wrongMask: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  }).map(({ key, frames, wrongMask }) => concat(frames.map((f) => {
    const frame: Frame = { type: f.type, fin: f.fin, rsv1: f.rsv1, payload: f.payload };
    if (f.type === 'close' && f.code !== undefined) frame.code = f.code;
    return naiveEncode(frame, (role === 'server') !== wrongMask ? key : undefined);
  })));
}

/** Valid sequences with some payloads cut short: text (and close reasons) ending inside a character. */
function cutPayloadsArb(role: Role): fc.Arbitrary<Buffer> {
  return fc.record({
    frames: frameSequenceArb(true, 5, 300),
    key: keyArb,
    cuts: fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 3 }),
  }).map(({ frames, key, cuts }) => {
    const edited = frames.map((f) => ({ ...f }));
    for (const [which, at] of cuts) {
      const f = edited[which % Math.max(1, edited.length)];
      if (f !== undefined) f.payload = f.payload.subarray(0, at % (f.payload.length + 1));
    }
    return wire(edited, role, [key]);
  });
}

/** Valid sequences with bytes flipped, overwritten, deleted, inserted, or cut off. */
function editedWireArb(role: Role): fc.Arbitrary<Buffer> {
  const editArb = fc.record({ at: fc.nat(), kind: fc.constantFrom('flip', 'set', 'delete', 'insert', 'truncate'), value: fc.nat(255) });
  return fc.record({
    frames: frameSequenceArb(true, 5, 300),
    key: keyArb,
    edits: fc.array(editArb, { minLength: 1, maxLength: 4 }),
  }).map(({ frames, key, edits }) => {
    const bytes = [...wire(frames, role, [key])];
    for (const { at, kind, value } of edits) {
      const i = bytes.length === 0 ? 0 : at % bytes.length;
      if (kind === 'flip' && bytes.length > 0) bytes[i] = bytes[i]! ^ (1 << (value % 8));
      else if (kind === 'set' && bytes.length > 0) bytes[i] = value;
      else if (kind === 'delete') bytes.splice(i, 1);
      else if (kind === 'insert') bytes.splice(i, 0, value);
      else if (kind === 'truncate') bytes.length = i;
    }
    return Buffer.from(bytes);
  });
}

/** Headers built field by field (any opcode, any length form and value, masked or not), short payloads. */
const headerSoupArb: fc.Arbitrary<Buffer> = fc.array(fc.record({
  // FIN, RSV1 and any opcode; RSV2 and RSV3 rarely, or nothing gets past the first header.
  b0: fc.tuple(fc.nat(0xcf), fc.integer({ min: 0, max: 15 })).map(([b, n]) => (n === 0 ? b | 0x30 : b)),
  masked: fc.boolean(),
  len7: fc.oneof(fc.nat(125), fc.constantFrom(126, 127)),
  extended: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  key: keyArb,
  payload: fc.uint8Array({ maxLength: 40 }),
}), { minLength: 1, maxLength: 6 }).map((headers) => concat(headers.map((h) => concat([
  Buffer.from([h.b0, (h.masked ? 0x80 : 0) | h.len7]),
  Buffer.from(h.extended.subarray(0, h.len7 === 126 ? 2 : h.len7 === 127 ? 8 : 0)),
  h.masked ? h.key : Buffer.alloc(0),
  Buffer.from(h.payload),
]))));

/** Byte strings a parser of `role` may be fed: all of the above, and plain random bytes. */
function hostileBytesArb(role: Role): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 4, arbitrary: shuffledFramesArb(role) },
    { weight: 3, arbitrary: cutPayloadsArb(role) },
    { weight: 3, arbitrary: editedWireArb(role) },
    { weight: 2, arbitrary: headerSoupArb },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
  );
}

/** `usual` three times in four, else one of `small`. */
function roomy(usual: number, ...small: number[]): fc.Arbitrary<number> {
  return fc.oneof({ weight: 3, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: fc.constantFrom(...small) });
}

/** Parser options across their range, small limits included. */
const anyOptionsArb = (role: Role): fc.Arbitrary<FrameParserOptions> => fc.record({
  role: fc.constant(role),
  // Mostly roomy limits, so that input gets past them to the other checks; small ones too.
  maxFrameSize: roomy(16 * 1024 * 1024, 0, 1, 125, 1000),
  maxBufferedBytes: roomy(16 * 1024 * 1024, 2, 14, 200),
  maxMessageSize: roomy(Infinity, 0, 10, 1000),
  maxFragments: roomy(Infinity, 1, 3),
  validateUtf8: fc.boolean(),
  allowRsv1: fc.boolean(),
  partialFrom: partialFromArb,
});

describe('FrameParser and encodeFrame (properties)', function () {
  this.timeout(120000);

  it('parses any valid frame sequence split at any points to the same frames (both roles, pieces too)', () => {
    checkProperty(fc.property(
      roleArb,
      fc.boolean().chain((allowRsv1) => fc.tuple(fc.constant(allowRsv1), frameSequenceArb(allowRsv1))),
      fc.array(keyArb, { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.boolean(),
      partialFromArb,
      (role, [allowRsv1, frames], keys, cuts, oneByte, partialFrom) => {
        const bytes = wire(frames, role, keys);
        const options = parserOptions(role, { allowRsv1, partialFrom });
        const { frames: parsed, error } = parse(options, split(bytes, cuts, oneByte && bytes.length < 3000));
        expect(error, String(error)).to.equal(undefined);
        expect(joinPieces(parsed).map(view)).to.deep.equal(frames.map(view));
      },
    ), propertyParameters(RUNS));
  });

  it('ends any byte string in frames and then nothing, or exactly one coded error; never loops, never throws anything else', () => {
    checkProperty(fc.property(
      roleArb.chain((role) => fc.tuple(anyOptionsArb(role), hostileBytesArb(role))),
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.boolean(),
      ([options, bytes], cuts, oneByte) => {
        const { frames, error } = parse(options, split(bytes, cuts, oneByte));
        if (error !== undefined) expectCodedError(error);
        // The frames it gave are ones a sender may send, and they parse again to themselves.
        const complete = joinPieces(frames);
        expectAllowed(complete, options);
        const again = parse({ ...options, partialFrom: Infinity, maxFragments: Infinity, maxMessageSize: Infinity }, [
          concat(complete.flatMap((f) => encodeFrame(f, options.role === 'server' ? Buffer.from([1, 2, 3, 4]) : undefined))),
        ]);
        expect(again.error, String(again.error)).to.equal(undefined);
        expect(again.frames.map(view)).to.deep.equal(complete.map(view));
      },
    ), propertyParameters(RUNS));
  });

  it('fails for ever after its error: null from next(), whatever is pushed', () => {
    const input = roleArb.chain((role) => fc.tuple(anyOptionsArb(role), hostileBytesArb(role)));
    checkProperty(fc.property(input, fc.uint8Array({ maxLength: 50 }), ([options, bytes], more) => {
      const parser = new FrameParser(options);
      parser.push(Buffer.from(bytes));
      let failed = false;
      try {
        for (let i = 0; parser.next() !== null; i++) if (i > bytes.length) throw new Error('loops');
      } catch (err) {
        expectCodedError(err);
        failed = true;
      }
      fc.pre(failed);
      parser.push(Buffer.from(more));
      parser.push(options.role === 'server' ? Buffer.from([0x81, 0x80, 0, 0, 0, 0]) : Buffer.from([0x81, 0x00]));
      expect(parser.next()).to.equal(null);
      expect(parser.next()).to.equal(null);
    }), propertyParameters(RUNS));
  });

  it('encodes any valid frame sequence so that the parser gives it back, byte for byte as the naive oracle does', () => {
    checkProperty(fc.property(
      roleArb,
      frameSequenceArb(true),
      keyArb,
      fc.boolean(),
      (role, frames, key, inPlace) => {
        const masked = role === 'server';
        const encoded: Buffer[] = [];
        for (const f of frames) {
          const original = Buffer.from(f.payload);
          // A copy to encode, so that masking in place cannot reach the expected frames.
          const sent: Frame = { ...f, payload: Buffer.from(f.payload) };
          const bytes = concat(encodeFrame(sent, masked ? key : undefined, inPlace));
          expect(bytes.equals(naiveEncode(f, masked ? key : undefined)), `${f.type} of ${f.payload.length} bytes`).to.equal(true);
          // The payload given is untouched, unless it was handed over to be masked in place.
          if (!(inPlace && masked && f.type !== 'close' && f.payload.length >= MASK_IN_PLACE_MIN)) {
            expect(sent.payload.equals(original)).to.equal(true);
          }
          encoded.push(bytes);
        }
        const { frames: parsed, error } = parse(parserOptions(role, { allowRsv1: true }), [concat(encoded)]);
        expect(error, String(error)).to.equal(undefined);
        expect(parsed.map(view)).to.deep.equal(frames.map(view));
      },
    ), propertyParameters(RUNS));
  });

  it('cuts a close reason over 123 bytes at a character boundary, and the parser reads the cut reason', () => {
    checkProperty(fc.property(
      roleArb,
      closeCodeArb,
      fc.string({ unit: fc.constantFrom(...EDGE_CHARS), minLength: 20, maxLength: 80 }).map((t) => Buffer.from(t, 'utf8')),
      keyArb,
      (role, code, reason, key) => {
        const f: Frame = { type: 'close', fin: true, rsv1: false, payload: reason, code };
        const bytes = concat(encodeFrame(f, role === 'server' ? key : undefined));
        const { frames, error } = parse(parserOptions(role), [bytes]);
        expect(error, String(error)).to.equal(undefined);
        expect(frames).to.have.length(1);
        const got = frames[0]!;
        expect(got.code).to.equal(code);
        expect(got.payload.length).to.be.at.most(123);
        expect(isValidUtf8(got.payload)).to.equal(true);
        expect(reason.subarray(0, got.payload.length).equals(got.payload), 'a prefix').to.equal(true);
        // Cut only as far as needed: a whole reason, or within one character (4 bytes) of 123.
        expect(got.payload.length === reason.length || got.payload.length > 123 - 4).to.equal(true);
      },
    ), propertyParameters(RUNS));
  });

  it('decodes control frames of any valid payload between the fragments of a large message, in any chunking', () => {
    // The frames most likely to be cut badly: a 64-bit length frame with controls around it.
    checkProperty(fc.property(
      roleArb,
      fc.integer({ min: 65536, max: 70000 }),
      fc.integer(),
      fc.array(controlArb, { maxLength: 3 }),
      keyArb,
      fc.array(fc.nat(), { maxLength: 60 }),
      (role, size, seed, controls, key, cuts) => {
        const payload = seededBytes(size, seed);
        const half = size >> 1;
        const frames: Frame[] = [
          { type: 'binary', fin: false, rsv1: false, payload: payload.subarray(0, half) },
          ...controls,
          { type: 'continuation', fin: true, rsv1: false, payload: payload.subarray(half) },
        ];
        const bytes = wire(frames, role, [key]);
        const { frames: parsed, error } = parse(parserOptions(role), split(bytes, cuts, false));
        expect(error, String(error)).to.equal(undefined);
        expect(parsed.map(view)).to.deep.equal(frames.map(view));
      },
    ), propertyParameters(Math.ceil(RUNS / 4)));
  });
});
