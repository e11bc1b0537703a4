import { expect } from 'chai';
import { isUtf8 } from 'node:buffer';
import { type ErrorCode, ErrorCodes, WebSocketProxyError } from '../../src/errors.js';
import { type Frame, isValidCloseCode } from '../../src/frame.js';
import { ASSEMBLE_MIN, FrameParser, type FrameParserOptions, type Role } from '../../src/protocol/parser.js';
import {
  FIXTURES,
  KEY,
  ascii,
  SMALL_FIXTURES,
  concat,
  decodeChunks,
  drain,
  frame,
  hex,
  naiveEncode,
  parserOptions,
  pattern,
  randomChunks,
  randomFrames,
  randomText,
  thrown,
  view,
  xorKey,
} from '../fixtures/frames.js';
import { SeededRandom } from '../helpers/random.js';

const ROLES: readonly { role: Role; form: 'masked' | 'unmasked' }[] = [
  { role: 'server', form: 'masked' },
  { role: 'client', form: 'unmasked' },
];

/**
 * Pushes `bytes` (a copy) in one chunk and drains the parser, which must throw `code`; returns the
 * frames it gave before. Then checks the parser stays dead: null for ever, even with valid bytes.
 */
function expectFailure(
  options: FrameParserOptions,
  bytes: Buffer | readonly Buffer[],
  code: ErrorCode,
  closeCode: number,
): Frame[] {
  const parser = new FrameParser(options);
  const frames: Frame[] = [];
  const chunks = Buffer.isBuffer(bytes) ? [bytes] : bytes;
  const err = thrown(() => {
    for (const chunk of chunks) {
      parser.push(Buffer.from(chunk));
      drain(parser, frames);
    }
  });
  expect(err).to.be.instanceOf(WebSocketProxyError);
  const e = err as WebSocketProxyError;
  expect(e.code).to.equal(code);
  expect(e.closeCode).to.equal(closeCode);
  expect(parser.next()).to.equal(null);
  parser.push(options.role === 'server' ? hex('81 80 00000000') : hex('81 00'));
  expect(parser.next()).to.equal(null);
  expect(parser.next()).to.equal(null);
  return frames;
}

function client(overrides: Partial<FrameParserOptions> = {}): FrameParserOptions {
  return parserOptions('client', overrides);
}

function server(overrides: Partial<FrameParserOptions> = {}): FrameParserOptions {
  return parserOptions('server', overrides);
}

describe('FrameParser', () => {
  describe('fixtures', () => {
    for (const fixture of FIXTURES) {
      for (const { role, form } of ROLES) {
        const options = parserOptions(role, fixture.options);
        const bytes = fixture[form];
        const expected = fixture.frames.map(view);

        it(`decodes "${fixture.name}" (${form}, role ${role}) in one push`, () => {
          expect(decodeChunks(options, [bytes]).map(view)).to.deep.equal(expected);
        });

        it(`decodes "${fixture.name}" (${form}, role ${role}) one byte per push`, () => {
          // Large payloads too: a frame gathered from 70000 1-byte chunks must not cost a shift() each.
          const chunks: Buffer[] = [];
          for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
          expect(decodeChunks(options, chunks).map(view)).to.deep.equal(expected);
        });

        it(`decodes "${fixture.name}" (${form}, role ${role}) split in two at every point`, () => {
          const points: number[] = [];
          if (bytes.length <= 300) {
            for (let i = 0; i <= bytes.length; i++) points.push(i);
          } else {
            for (let i = 0; i <= 20; i++) points.push(i, bytes.length - i);
            points.push(65535, 65536, 65537, 70000, 70014, 70015, Math.floor(bytes.length / 2));
          }
          for (const at of points.filter((p) => p >= 0 && p <= bytes.length)) {
            const frames = decodeChunks(options, [bytes.subarray(0, at), bytes.subarray(at)]);
            expect(frames.map(view), `split at ${at}`).to.deep.equal(expected);
          }
        });
      }
    }

    it('has small fixtures for every frame type', () => {
      const types = new Set(SMALL_FIXTURES.flatMap((f) => f.frames.map((fr) => fr.type)));
      expect([...types].sort()).to.deep.equal(['binary', 'close', 'continuation', 'ping', 'pong', 'text']);
    });
  });

  describe('randomised valid streams', () => {
    for (const seed of [1, 2, 3, 42, 1234, 99991, 0xdecafbad, 0x5eed]) {
      for (const { role, form } of ROLES) {
        it(`decodes random frame sequences split in random chunks (seed ${seed}, ${form}, role ${role})`, () => {
          const rng = new SeededRandom(seed);
          for (let round = 0; round < 25; round++) {
            const rsv1 = rng.chance(0.3);
            const frames = randomFrames(rng, { big: round % 8 === 0, rsv1 });
            const bytes = concat(frames.map((f) => naiveEncode(f, form === 'masked' ? rng.bytes(4) : undefined)));
            const chunks = randomChunks(rng, bytes);
            const decoded = decodeChunks(parserOptions(role, { allowRsv1: rsv1 }), chunks);
            expect(decoded.map(view), `round ${round}`).to.deep.equal(frames.map(view));
          }
        });
      }
    }
  });

  describe('randomised invalid input', () => {
    const TYPES = ['continuation', 'text', 'binary', 'close', 'ping', 'pong'];

    /** Feeds `bytes` in random chunks; checks every result is a sane Frame, null or a coded error. */
    function fuzz(rng: SeededRandom, options: FrameParserOptions, bytes: Buffer): 'ok' | ErrorCode {
      const parser = new FrameParser(options);
      let failed: ErrorCode | undefined;
      for (const chunk of randomChunks(rng, bytes)) {
        parser.push(Buffer.from(chunk));
        for (;;) {
          let f: Frame | null;
          try {
            f = parser.next();
          } catch (err) {
            expect(failed, 'a second throw').to.equal(undefined);
            expect(err).to.be.instanceOf(WebSocketProxyError);
            const e = err as WebSocketProxyError;
            expect(Object.keys(ErrorCodes)).to.include(e.code);
            expect(e.closeCode).to.equal(ErrorCodes[e.code].closeCode);
            failed = e.code;
            break;
          }
          if (f === null) break;
          expect(failed, 'a frame after a throw').to.equal(undefined);
          expect(TYPES).to.include(f.type);
          expect(Buffer.isBuffer(f.payload)).to.equal(true);
          if (f.type !== 'close' && f.type !== 'ping' && f.type !== 'pong') expect(f.payload.length).to.be.at.most(options.maxFrameSize);
          if (f.type === 'close' || f.type === 'ping' || f.type === 'pong') {
            expect(f.fin).to.equal(true);
            expect(f.rsv1).to.equal(false);
            expect(f.payload.length).to.be.at.most(f.type === 'close' ? 123 : 125);
          }
          if (f.type === 'close' && f.code !== undefined) expect(isValidCloseCode(f.code)).to.equal(true);
          if (f.type === 'close' && f.code === undefined) expect(f.payload.length).to.equal(0);
          if (f.type === 'text' && f.fin && !f.rsv1 && options.validateUtf8) expect(isUtf8(f.payload)).to.equal(true);
          if (f.rsv1) expect(options.allowRsv1).to.equal(true);
        }
      }
      if (failed !== undefined) {
        expect(parser.next()).to.equal(null);
        parser.push(hex('81 00 81 80 00000000'));
        expect(parser.next()).to.equal(null);
      }
      return failed ?? 'ok';
    }

    function randomOptions(rng: SeededRandom): FrameParserOptions {
      const maxFrameSize = rng.pick([100, 1000, 16 * 1024 * 1024]);
      return parserOptions(rng.chance(0.5) ? 'server' : 'client', {
        maxFrameSize,
        maxBufferedBytes: rng.chance(0.8) ? maxFrameSize + 14 : rng.int(20, 200),
        validateUtf8: rng.chance(0.8),
        allowRsv1: rng.chance(0.3),
      });
    }

    for (const seed of [7, 8, 9, 314159, 0xbadc0de]) {
      it(`gives frames, null or a coded error for random bytes (seed ${seed})`, () => {
        const rng = new SeededRandom(seed);
        const seen = new Set<string>();
        for (let round = 0; round < 400; round++) {
          const options = randomOptions(rng);
          let bytes = rng.bytes(rng.int(0, 300));
          // Bias a few first bytes towards plausible headers so that more than opcode errors show.
          if (bytes.length > 2 && rng.chance(0.5)) {
            bytes[0] = rng.pick([0x81, 0x82, 0x01, 0x80, 0x88, 0x89, 0x8a, 0xc1, 0x00]);
            bytes[1] = (options.role === 'server' ? 0x80 : 0) | rng.pick([0, 1, 2, 5, 125, 126, 127, bytes[1]! & 0x7f]);
          }
          seen.add(fuzz(rng, options, bytes));
        }
        expect(seen.size).to.be.at.least(4);
      });

      it(`gives frames, null or a coded error for valid streams with flipped header bits (seed ${seed})`, () => {
        const rng = new SeededRandom(seed);
        const seen = new Set<string>();
        for (let round = 0; round < 120; round++) {
          const options = randomOptions(rng);
          const frames = randomFrames(rng);
          const encoded = frames.map((f) => naiveEncode(f, options.role === 'server' ? rng.bytes(4) : undefined));
          const bytes = concat(encoded);
          // Flip 1-3 bits in the first two bytes or the length bytes of random frames.
          const starts: number[] = [];
          let offset = 0;
          for (const e of encoded) {
            starts.push(offset);
            offset += e.length;
          }
          const flips = rng.int(1, 3);
          for (let i = 0; i < flips; i++) {
            const at = rng.pick(starts) + rng.int(0, 3);
            if (at < bytes.length) bytes[at]! ^= 1 << rng.int(0, 7);
          }
          seen.add(fuzz(rng, options, bytes));
        }
        expect(seen.size).to.be.at.least(4);
      });
    }
  });

  describe('protocol violations', () => {
    describe('reserved bits', () => {
      it('emits WSP_ERR_UNEXPECTED_RSV (1002) for RSV1 without allowRsv1', () => {
        expectFailure(client(), hex('c1 00'), 'WSP_ERR_UNEXPECTED_RSV', 1002);
        expectFailure(server(), hex('c2 80 37fa213d'), 'WSP_ERR_UNEXPECTED_RSV', 1002);
      });

      for (const [name, b0] of [['RSV2', 'a1'], ['RSV3', '91'], ['RSV2 and RSV3', 'b2']] as const) {
        it(`emits WSP_ERR_UNEXPECTED_RSV (1002) for ${name}, even with allowRsv1`, () => {
          expectFailure(client(), hex(`${b0} 00`), 'WSP_ERR_UNEXPECTED_RSV', 1002);
          expectFailure(client({ allowRsv1: true }), hex(`${b0} 00`), 'WSP_ERR_UNEXPECTED_RSV', 1002);
          expectFailure(server({ allowRsv1: true }), hex(`${b0} 80 37fa213d`), 'WSP_ERR_UNEXPECTED_RSV', 1002);
        });
      }

      for (const [type, b0] of [['close', 'c8'], ['ping', 'c9'], ['pong', 'ca']] as const) {
        it(`emits WSP_ERR_UNEXPECTED_RSV (1002) for RSV1 on a ${type} frame even with allowRsv1`, () => {
          expectFailure(client({ allowRsv1: true }), hex(`${b0} 00`), 'WSP_ERR_UNEXPECTED_RSV', 1002);
        });
      }

      it('emits WSP_ERR_UNEXPECTED_RSV (1002) for RSV1 on a continuation frame even with allowRsv1', () => {
        const before = expectFailure(
          client({ allowRsv1: true }),
          hex('41 01 61  c0 01 62'),
          'WSP_ERR_UNEXPECTED_RSV',
          1002,
        );
        expect(before.map(view)).to.deep.equal([view(frame('text', 'a', false, true))]);
      });

      it('accepts RSV1 on the first frame of a fragmented message with allowRsv1', () => {
        const frames = decodeChunks(client({ allowRsv1: true }), [hex('42 01 ff  00 01 fe  80 00')]);
        expect(frames.map(view)).to.deep.equal([
          view(frame('binary', hex('ff'), false, true)),
          view(frame('continuation', hex('fe'), false)),
          view(frame('continuation', '', true)),
        ]);
      });
    });

    describe('opcodes', () => {
      for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
        it(`emits WSP_ERR_INVALID_OPCODE (1002) for opcode 0x${opcode.toString(16)}`, () => {
          expectFailure(client(), Buffer.from([0x80 | opcode, 0x00]), 'WSP_ERR_INVALID_OPCODE', 1002);
          expectFailure(client(), Buffer.from([opcode, 0x01, 0x61]), 'WSP_ERR_INVALID_OPCODE', 1002);
          expectFailure(server(), concat([Buffer.from([0x80 | opcode, 0x80]), KEY]), 'WSP_ERR_INVALID_OPCODE', 1002);
        });
      }
    });

    describe('control frames', () => {
      for (const [type, b0] of [['close', '08'], ['ping', '09'], ['pong', '0a']] as const) {
        it(`emits WSP_ERR_FRAGMENTED_CONTROL (1002) for a ${type} frame with FIN=0`, () => {
          expectFailure(client(), hex(`${b0} 00`), 'WSP_ERR_FRAGMENTED_CONTROL', 1002);
          expectFailure(server(), hex(`${b0} 80 37fa213d`), 'WSP_ERR_FRAGMENTED_CONTROL', 1002);
        });
      }

      for (const [type, b0] of [['close', '88'], ['ping', '89'], ['pong', '8a']] as const) {
        it(`emits WSP_ERR_CONTROL_TOO_LONG (1002) for a ${type} payload of 126 bytes (16-bit length)`, () => {
          const payload = pattern(126);
          expectFailure(client(), concat([hex(`${b0} 7e 007e`), payload]), 'WSP_ERR_CONTROL_TOO_LONG', 1002);
          expectFailure(server(), concat([hex(`${b0} fe 007e`), KEY, xorKey(payload)]), 'WSP_ERR_CONTROL_TOO_LONG', 1002);
          // The first two bytes are enough to tell.
          expectFailure(client(), hex(`${b0} 7e`), 'WSP_ERR_CONTROL_TOO_LONG', 1002);
        });
      }

      it('emits WSP_ERR_CONTROL_TOO_LONG (1002) for a ping with a 64-bit length', () => {
        expectFailure(client(), hex('89 7f 0000000000000005 0102030405'), 'WSP_ERR_CONTROL_TOO_LONG', 1002);
      });
    });

    describe('lengths', () => {
      for (const length of ['8000000000000000', 'ffffffffffffffff', '8000000000000001']) {
        it(`emits WSP_ERR_INVALID_LENGTH (1002) for the 64-bit length 0x${length}`, () => {
          expectFailure(client(), hex(`82 7f ${length}`), 'WSP_ERR_INVALID_LENGTH', 1002);
          expectFailure(server(), hex(`82 ff ${length} 37fa213d`), 'WSP_ERR_INVALID_LENGTH', 1002);
          expectFailure(
            client({ maxFrameSize: Infinity, maxBufferedBytes: Infinity }),
            hex(`82 7f ${length}`),
            'WSP_ERR_INVALID_LENGTH',
            1002,
          );
        });
      }
    });

    describe('masking', () => {
      it('emits WSP_ERR_MASK_REQUIRED (1002) for an unmasked frame in role server', () => {
        expectFailure(server(), hex('81 05 48656c6c6f'), 'WSP_ERR_MASK_REQUIRED', 1002);
        expectFailure(server(), hex('89 00'), 'WSP_ERR_MASK_REQUIRED', 1002);
      });

      it('emits WSP_ERR_MASK_FORBIDDEN (1002) for a masked frame in role client', () => {
        expectFailure(client(), hex('81 85 37fa213d 7f9f4d5158'), 'WSP_ERR_MASK_FORBIDDEN', 1002);
        expectFailure(client(), hex('8a 80 37fa213d'), 'WSP_ERR_MASK_FORBIDDEN', 1002);
      });

      it('emits the mask error after valid frames, at the offending frame', () => {
        const before = expectFailure(client(), hex('81 01 61  82 81 37fa213d 00'), 'WSP_ERR_MASK_FORBIDDEN', 1002);
        expect(before.map(view)).to.deep.equal([view(frame('text', 'a'))]);
      });
    });

    describe('close frames', () => {
      it('emits WSP_ERR_INVALID_CLOSE_BODY (1002) for a close body of 1 byte', () => {
        expectFailure(client(), hex('88 01 03'), 'WSP_ERR_INVALID_CLOSE_BODY', 1002);
        expectFailure(server(), hex('88 81 37fa213d 34'), 'WSP_ERR_INVALID_CLOSE_BODY', 1002);
      });

      for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
        it(`emits WSP_ERR_INVALID_CLOSE_CODE (1002) for close code ${code}`, () => {
          const body = Buffer.from([code >> 8, code & 0xff]);
          expectFailure(client(), concat([hex('88 02'), body]), 'WSP_ERR_INVALID_CLOSE_CODE', 1002);
          expectFailure(server(), concat([hex('88 85'), KEY, xorKey(concat([body, hex('627965')]))]), 'WSP_ERR_INVALID_CLOSE_CODE', 1002);
        });
      }

      for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
        it(`accepts close code ${code}`, () => {
          const body = Buffer.from([code >> 8, code & 0xff]);
          expect(decodeChunks(client(), [concat([hex('88 02'), body])]).map(view)).to.deep.equal([
            view(frame('close', '', true, false, code)),
          ]);
          expect(decodeChunks(server(), [concat([hex('88 84'), KEY, xorKey(concat([body, hex('6f6b')]))])]).map(view)).to.deep.equal([
            view(frame('close', 'ok', true, false, code)),
          ]);
        });
      }

      for (const reason of ['c3', 'c328', 'ff', 'eda080', 'c080', 'e282']) {
        it(`emits WSP_ERR_INVALID_UTF8 (1007) for the close reason ${reason}, even with validateUtf8: false`, () => {
          expectFailure(client(), hex(`88 ${(2 + reason.length / 2).toString(16).padStart(2, '0')} 03e8 ${reason}`), 'WSP_ERR_INVALID_UTF8', 1007);
          expectFailure(
            client({ validateUtf8: false }),
            hex(`88 ${(2 + reason.length / 2).toString(16).padStart(2, '0')} 03e8 ${reason}`),
            'WSP_ERR_INVALID_UTF8',
            1007,
          );
        });
      }
    });

    describe('message sequencing', () => {
      it('emits WSP_ERR_UNEXPECTED_CONTINUATION (1002) for a continuation without a started message', () => {
        expectFailure(client(), hex('80 01 61'), 'WSP_ERR_UNEXPECTED_CONTINUATION', 1002);
        expectFailure(client(), hex('00 00'), 'WSP_ERR_UNEXPECTED_CONTINUATION', 1002);
        expectFailure(server(), hex('80 80 37fa213d'), 'WSP_ERR_UNEXPECTED_CONTINUATION', 1002);
      });

      it('emits WSP_ERR_UNEXPECTED_CONTINUATION (1002) for a continuation after a finished message', () => {
        const before = expectFailure(client(), hex('01 01 61  80 01 62  80 01 63'), 'WSP_ERR_UNEXPECTED_CONTINUATION', 1002);
        expect(before).to.have.length(2);
        const single = expectFailure(client(), hex('81 01 61  89 00  00 01 62'), 'WSP_ERR_UNEXPECTED_CONTINUATION', 1002);
        expect(single).to.have.length(2);
      });

      for (const [name, bytes] of [
        ['text inside text', '01 01 61  81 01 62'],
        ['binary inside binary', '02 01 61  82 01 62'],
        ['binary inside text', '01 01 61  02 01 62'],
        ['text inside binary, after a ping', '02 01 61  89 00  01 01 62'],
      ] as const) {
        it(`emits WSP_ERR_MESSAGE_NOT_FINISHED (1002) for a new message while one is open (${name})`, () => {
          const before = expectFailure(client(), hex(bytes), 'WSP_ERR_MESSAGE_NOT_FINISHED', 1002);
          expect(before[0]!.fin).to.equal(false);
        });
      }
    });

    describe('UTF-8', () => {
      for (const [name, payload] of [
        ['c3 28', 'c328'],
        ['overlong c0 80', 'c080'],
        ['overlong e0 80 80', 'e08080'],
        ['surrogate ed a0 80', 'eda080'],
        ['f4 90 80 80 (above U+10FFFF)', 'f4908080'],
        ['f5', 'f5'],
        ['lone continuation 80', '80'],
        ['truncated e2 82', 'e282'],
        ['ASCII then ff', '616263ff'],
      ] as const) {
        it(`emits WSP_ERR_INVALID_UTF8 (1007) for a text frame holding ${name}`, () => {
          const p = hex(payload);
          expectFailure(client(), concat([Buffer.from([0x81, p.length]), p]), 'WSP_ERR_INVALID_UTF8', 1007);
          expectFailure(server(), concat([Buffer.from([0x81, 0x80 | p.length]), KEY, xorKey(p)]), 'WSP_ERR_INVALID_UTF8', 1007);
        });
      }

      it('accepts a message whose fragments cut multi-byte characters', () => {
        // "€" = e2 82 ac cut after each byte; "😀" = f0 9f 98 80 cut 2+1+1; "é" = c3 a9 cut 1+1.
        const stream = hex('01 01 e2  00 01 82  00 03 ac f0 9f  00 01 98  00 02 80 c3  89 00  80 01 a9');
        const frames = decodeChunks(client(), [stream]);
        expect(frames.map((f) => f.type)).to.deep.equal([
          'text', 'continuation', 'continuation', 'continuation', 'continuation', 'ping', 'continuation',
        ]);
        expect(concat(frames.filter((f) => f.type !== 'ping').map((f) => f.payload)).toString('utf8')).to.equal('€😀é');
      });

      it('fails a fragmented message at the fragment where the invalid sequence is seen (2nd of 3)', () => {
        // e2 then 28: "e2 28" can never be valid; the 3rd fragment is never needed.
        const before = expectFailure(client(), hex('01 01 e2  00 01 28  80 01 61'), 'WSP_ERR_INVALID_UTF8', 1007);
        expect(before.map(view)).to.deep.equal([view(frame('text', hex('e2'), false))]);
        // And it fails when only the 2nd fragment has arrived.
        const early = expectFailure(client(), hex('01 01 e2  00 01 28'), 'WSP_ERR_INVALID_UTF8', 1007);
        expect(early).to.have.length(1);
      });

      it('fails a fragmented message at a fragment with an invalid byte after valid ones (surrogate)', () => {
        const before = expectFailure(client(), hex('01 02 6161  00 02 62ed  00 02 a080  80 00'), 'WSP_ERR_INVALID_UTF8', 1007);
        expect(before).to.have.length(2);
      });

      it('fails a fragmented message with an overlong lead in a fragment of its own', () => {
        const before = expectFailure(
          server(),
          concat([hex('01 81'), KEY, xorKey(hex('e0')), hex('00 81'), KEY, xorKey(hex('80')), hex('80 81'), KEY, xorKey(hex('80'))]),
          'WSP_ERR_INVALID_UTF8',
          1007,
        );
        expect(before).to.have.length(1);
      });

      it('fails a message ending mid-character at its last fragment', () => {
        const before = expectFailure(client(), hex('01 01 e2  00 01 82  80 00'), 'WSP_ERR_INVALID_UTF8', 1007);
        expect(before.map((f) => f.type)).to.deep.equal(['text', 'continuation']);
        const two = expectFailure(client(), hex('01 02 61f0  80 02 9f98'), 'WSP_ERR_INVALID_UTF8', 1007);
        expect(two).to.have.length(1);
      });

      it('starts each message with a fresh validator (a cut character does not carry over)', () => {
        // The first message is valid; the second starts with a continuation byte.
        const before = expectFailure(client(), hex('01 01 61  80 01 62  01 01 82  80 00'), 'WSP_ERR_INVALID_UTF8', 1007);
        expect(before).to.have.length(2);
      });

      describe('inside a frame, as the bytes arrive', () => {
        for (const { role, form } of ROLES) {
          const key = role === 'server' ? KEY : undefined;

          it(`fails a ${form} text frame at the chunk holding the invalid byte, before the frame completes`, () => {
            const payload = concat([ascii(1000), hex('ff'), ascii(1000)]);
            const wire = naiveEncode(frame('text', payload), key);
            const header = wire.length - payload.length;
            const parser = new FrameParser(parserOptions(role));
            // Valid bytes only: no frame yet, no failure.
            parser.push(Buffer.from(wire.subarray(0, header + 1000)));
            expect(parser.next()).to.equal(null);
            parser.push(Buffer.from(wire.subarray(header + 1000, header + 1001)));
            const err = thrown(() => parser.next()) as WebSocketProxyError;
            expect(err.code).to.equal('WSP_ERR_INVALID_UTF8');
            expect(err.closeCode).to.equal(1007);
            expect(parser.next()).to.equal(null);
          });

          it(`fails a ${form} continuation frame mid-payload (a cut character completed wrongly)`, () => {
            // "e2 82" ends the first fragment; the second fragment's first byte 28 can never complete it.
            const first = naiveEncode(frame('text', hex('61e282'), false), key);
            const second = naiveEncode(frame('continuation', concat([hex('28'), ascii(500)])), key);
            const header = second.length - 501;
            const parser = new FrameParser(parserOptions(role));
            parser.push(Buffer.from(first));
            expect(drain(parser)).to.have.length(1);
            parser.push(Buffer.from(second.subarray(0, header)));
            expect(parser.next()).to.equal(null);
            parser.push(Buffer.from(second.subarray(header, header + 1)));
            expect((thrown(() => parser.next()) as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_UTF8');
          });

          it(`decodes ${form} text frames split at every byte, characters cut between chunks`, () => {
            const payload = Buffer.from('a€😀é'.repeat(40));
            const wire = naiveEncode(frame('text', payload), key);
            for (let cut = 1; cut < wire.length; cut++) {
              const frames = decodeChunks(parserOptions(role), [wire.subarray(0, cut), wire.subarray(cut)]);
              expect(frames.map(view)).to.deep.equal([view(frame('text', payload))]);
            }
            const bytewise: Buffer[] = [];
            for (let i = 0; i < wire.length; i++) bytewise.push(wire.subarray(i, i + 1));
            expect(decodeChunks(parserOptions(role), bytewise).map(view)).to.deep.equal([view(frame('text', payload))]);
          });
        }

        it('checks a large text frame sent one byte per chunk, each byte once', () => {
          // A walk from the first chunk at every call would be quadratic here (10^10 steps).
          const payload = Buffer.from('€'.repeat(50_000));
          const wire = naiveEncode(frame('text', payload), KEY);
          const parser = new FrameParser(server());
          let decoded: Frame | null = null;
          for (let i = 0; i < wire.length; i++) {
            parser.push(wire.subarray(i, i + 1));
            decoded = parser.next();
            if (i < wire.length - 1) expect(decoded).to.equal(null);
          }
          expect(decoded!.payload.equals(payload)).to.equal(true);
        });

        it('does not check a binary frame, nor compressed text, as it arrives', () => {
          const parser = new FrameParser(client({ allowRsv1: true }));
          const binary = naiveEncode(frame('binary', concat([hex('ff'), ascii(300)])));
          parser.push(Buffer.from(binary.subarray(0, 10)));
          expect(parser.next()).to.equal(null);
          parser.push(Buffer.from(binary.subarray(10)));
          expect(parser.next()!.type).to.equal('binary');
          const compressed = naiveEncode(frame('text', concat([hex('ff'), ascii(300)]), true, true));
          parser.push(Buffer.from(compressed.subarray(0, 10)));
          expect(parser.next()).to.equal(null);
          parser.push(Buffer.from(compressed.subarray(10)));
          expect(parser.next()!.rsv1).to.equal(true);
        });

        /** Invalid sequences to put at a character boundary, with how many of their bytes make them invalid. */
        const POISONS: readonly { bytes: Buffer; failAt: number }[] = [
          { bytes: hex('ff'), failAt: 1 },
          { bytes: hex('80'), failAt: 1 },
          { bytes: hex('c328'), failAt: 2 },
          { bytes: hex('c080'), failAt: 1 },
          { bytes: hex('e08080'), failAt: 2 },
          { bytes: hex('eda080'), failAt: 2 },
          { bytes: hex('f4908080'), failAt: 2 },
          { bytes: hex('e28261'), failAt: 3 },
          { bytes: hex('f09f9828'), failAt: 4 },
        ];

        for (const seed of [11, 12, 13, 2718, 0xfeed]) {
          for (const { role, form } of ROLES) {
            it(`fails at the chunk that brings the first impossible byte (seed ${seed}, ${form})`, () => {
              const rng = new SeededRandom(seed);
              const key = role === 'server' ? KEY : undefined;
              for (let round = 0; round < 60; round++) {
                const before = Buffer.from(randomText(rng, rng.chance(0.3) ? 3000 : 40));
                const poison = rng.pick(POISONS);
                const after = Buffer.from(randomText(rng, 40) + 'z');
                const message = concat([before, poison.bytes, after]);
                // The message byte whose arrival makes the text impossible.
                const bad = before.length + poison.failAt - 1;
                // Fragments at random cuts, pings between some; `where` maps message bytes to wire offsets.
                const count = rng.int(1, 4);
                const cuts = [0];
                for (let i = 1; i < count; i++) cuts.push(rng.int(0, message.length));
                cuts.push(message.length);
                cuts.sort((a, b) => a - b);
                const parts: Buffer[] = [];
                let wireLength = 0;
                let badWire = -1;
                for (let i = 0; i < count; i++) {
                  if (i > 0 && rng.chance(0.3)) {
                    const ping = naiveEncode(frame('ping', rng.bytes(rng.int(0, 20))), key);
                    parts.push(ping);
                    wireLength += ping.length;
                  }
                  const body = message.subarray(cuts[i]!, cuts[i + 1]!);
                  const encoded = naiveEncode(frame(i === 0 ? 'text' : 'continuation', body, i === count - 1), key);
                  const header = encoded.length - body.length;
                  if (bad >= cuts[i]! && bad < cuts[i + 1]!) badWire = wireLength + header + (bad - cuts[i]!);
                  parts.push(encoded);
                  wireLength += encoded.length;
                }
                const chunks = randomChunks(rng, concat(parts));
                // Every other round, frames given in pieces (cut-through) must fail at the same chunk.
                const parser = new FrameParser(parserOptions(role, round % 2 === 0 ? {} : { partialFrom: rng.int(1, 50) }));
                let failedAt = -1;
                let end = 0;
                let expected = -1;
                for (const [index, chunk] of chunks.entries()) {
                  end += chunk.length;
                  if (expected === -1 && end > badWire) expected = index;
                  parser.push(Buffer.from(chunk));
                  try {
                    drain(parser);
                  } catch (err) {
                    expect((err as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_UTF8');
                    failedAt = index;
                    break;
                  }
                }
                expect(failedAt, `round ${round}`).to.equal(expected);
              }
            });
          }
        }
      });

      it('lets invalid text through with validateUtf8: false', () => {
        const frames = decodeChunks(client({ validateUtf8: false }), [hex('81 02 c328  01 01 e2  00 01 28  80 01 ff  81 01 80')]);
        expect(frames.map(view)).to.deep.equal([
          view(frame('text', hex('c328'))),
          view(frame('text', hex('e2'), false)),
          view(frame('continuation', hex('28'), false)),
          view(frame('continuation', hex('ff'))),
          view(frame('text', hex('80'))),
        ]);
      });

      it('never checks binary payloads', () => {
        const frames = decodeChunks(client(), [hex('82 02 c328  02 01 e2  00 01 28  80 01 ff')]);
        expect(frames.map(view)).to.deep.equal([
          view(frame('binary', hex('c328'))),
          view(frame('binary', hex('e2'), false)),
          view(frame('continuation', hex('28'), false)),
          view(frame('continuation', hex('ff'))),
        ]);
      });

      it('does not check compressed (RSV1) text, which is not UTF-8 until inflated', () => {
        const frames = decodeChunks(client({ allowRsv1: true }), [hex('c1 02 c328  41 01 ff  80 01 fe')]);
        expect(frames.map(view)).to.deep.equal([
          view(frame('text', hex('c328'), true, true)),
          view(frame('text', hex('ff'), false, true)),
          view(frame('continuation', hex('fe'))),
        ]);
      });
    });
  });

  describe('pieces (partialFrom, cut-through)', () => {
    /**
     * Checks the pieces' contract (in order, contiguous, nothing between the pieces of one frame,
     * type/fin/rsv1 the frame's) and joins them back into whole frames.
     */
    function joinPieces(frames: readonly Frame[], partialFrom: number): Frame[] {
      const out: Frame[] = [];
      let open: { frame: Frame; parts: Buffer[]; next: number; length: number } | undefined;
      for (const f of frames) {
        if (f.partial === undefined) {
          expect(open, 'a whole frame inside a frame given in pieces').to.equal(undefined);
          out.push(f);
          continue;
        }
        expect(f.type).to.be.oneOf(['text', 'binary', 'continuation']);
        expect(f.partial.length).to.be.at.least(partialFrom);
        if (open === undefined) {
          expect(f.partial.offset).to.equal(0);
          open = { frame: f, parts: [], next: 0, length: f.partial.length };
        }
        expect(f.partial.offset).to.equal(open.next);
        expect(f.partial.length).to.equal(open.length);
        expect([f.type, f.fin, f.rsv1]).to.deep.equal([open.frame.type, open.frame.fin, open.frame.rsv1]);
        open.parts.push(Buffer.from(f.payload));
        open.next += f.payload.length;
        if (open.next === open.length) {
          out.push({ type: f.type, fin: f.fin, rsv1: f.rsv1, payload: concat(open.parts) });
          open = undefined;
        }
      }
      expect(open, 'a frame left unfinished').to.equal(undefined);
      return out;
    }

    for (const seed of [5, 6, 77, 4242, 0xcafe]) {
      for (const { role, form } of ROLES) {
        it(`gives the same frames, some in pieces, for random streams in random chunks (seed ${seed}, ${form})`, () => {
          const rng = new SeededRandom(seed);
          const key = role === 'server' ? KEY : undefined;
          let pieces = 0;
          for (let round = 0; round < 30; round++) {
            const frames = randomFrames(rng, { big: round % 3 === 0, rsv1: true });
            const bytes = concat(frames.map((f) => naiveEncode(f, key)));
            const chunks = randomChunks(rng, bytes);
            const partialFrom = rng.pick([1, 2, 50, 1000, 65536]);
            const whole = decodeChunks(parserOptions(role, { allowRsv1: true }), chunks);
            const given = decodeChunks(parserOptions(role, { allowRsv1: true, partialFrom }), chunks);
            pieces += given.filter((f) => f.partial !== undefined).length;
            expect(joinPieces(given, partialFrom).map(view)).to.deep.equal(whole.map(view));
          }
          expect(pieces, 'pieces given').to.be.above(0);
        });
      }
    }

    it('gives a frame that arrived whole as one frame, and never a control frame in pieces', () => {
      const payload = pattern(300);
      const wire = concat([naiveEncode(frame('binary', payload)), naiveEncode(frame('ping', pattern(100)))]);
      expect(decodeChunks(client({ partialFrom: 1 }), [wire]).map(view)).to.deep.equal([view(frame('binary', payload)), view(frame('ping', pattern(100)))]);
      const split = decodeChunks(client({ partialFrom: 1 }), [wire.subarray(0, 250), wire.subarray(250, 400), wire.subarray(400)]);
      expect(split.map((f) => [f.type, f.partial ?? null])).to.deep.equal([
        ['binary', { offset: 0, length: 300 }], ['binary', { offset: 246, length: 300 }], ['ping', null],
      ]);
    });

    it('still refuses a frame over maxFrameSize at its header, before any piece', () => {
      const wire = naiveEncode(frame('binary', pattern(2000)));
      const parser = new FrameParser(client({ partialFrom: 1, maxFrameSize: 1000 }));
      parser.push(Buffer.from(wire.subarray(0, 4)));
      expect((thrown(() => parser.next()) as WebSocketProxyError).code).to.equal('WSP_ERR_FRAME_TOO_LARGE');
    });

    it('checks text piece by piece: the piece with the invalid byte fails, the ones before go out', () => {
      const payload = concat([ascii(100), hex('c328'), ascii(100)]);
      const wire = naiveEncode(frame('text', payload), KEY);
      const parser = new FrameParser(server({ partialFrom: 1 }));
      parser.push(Buffer.from(wire.subarray(0, 8 + 100)));
      const first = drain(parser);
      expect(first.map((f) => f.payload.toString())).to.deep.equal([ascii(100).toString()]);
      parser.push(Buffer.from(wire.subarray(8 + 100, 8 + 102)));
      expect((thrown(() => parser.next()) as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_UTF8');
    });

    it('keeps message state across pieces: a fragmented text cut inside a character, pings between fragments', () => {
      const text = Buffer.from('€'.repeat(30));
      const frames = [frame('text', text.subarray(0, 31), false), frame('ping', 'p'), frame('continuation', text.subarray(31))];
      const wire = concat(frames.map((f) => naiveEncode(f, KEY)));
      const bytewise = Array.from(wire, (_, i) => wire.subarray(i, i + 1));
      const given = decodeChunks(server({ partialFrom: 1 }), bytewise);
      expect(joinPieces(given, 1).map(view)).to.deep.equal(frames.map(view));
    });
  });

  describe('large frames assembled as they arrive (ASSEMBLE_MIN and up)', () => {
    /** Cuts `wire` at the given offsets. */
    function cut(wire: Buffer, at: readonly number[]): Buffer[] {
      const bounds = [0, ...at, wire.length];
      return bounds.slice(1).map((end, i) => wire.subarray(bounds[i], end));
    }

    for (const { role, form } of ROLES) {
      const key = role === 'server' ? KEY : undefined;

      it(`frames split across writes: the same payload, and the chunks let go once 1/16 arrived (${form})`, () => {
        const payload = pattern(ASSEMBLE_MIN * 5 + 3);
        const next = concat([naiveEncode(frame('ping', 'p'), key), naiveEncode(frame('binary', pattern(10)), key)]);
        const wire = concat([naiveEncode(frame('binary', payload), key), next]);
        const header = wire.length - next.length - payload.length;
        const parser = new FrameParser(parserOptions(role));
        // Below 1/16 of the payload: the chunks are held as they came (nothing allocated for it yet).
        const early = header + Math.floor(payload.length / 16) - 1;
        parser.push(Buffer.from(wire.subarray(0, early)));
        expect(parser.next()).to.equal(null);
        expect(parser.bufferedBytes).to.equal(early - header);
        // From 1/16 on, every byte pushed is moved into the frame's buffer at once.
        const rng = new SeededRandom(31);
        let at = early;
        const end = wire.length - next.length - 1;
        while (at < end) {
          const n = Math.min(end - at, rng.int(1, 70000));
          parser.push(Buffer.from(wire.subarray(at, at + n)));
          at += n;
          expect(parser.next()).to.equal(null);
          expect(parser.bufferedBytes).to.equal(0);
        }
        // The frame's last byte comes with the next frames.
        parser.push(Buffer.from(wire.subarray(at)));
        expect(drain(parser).map(view)).to.deep.equal([view(frame('binary', payload)), view(frame('ping', 'p')), view(frame('binary', pattern(10)))]);
      });

      it(`checks assembled text as it arrives: characters cut between writes pass, an invalid byte fails before the end (${form})`, () => {
        const text = Buffer.from('a€😀é'.repeat(30000));
        const good = naiveEncode(frame('text', text), key);
        const chunks = cut(good, [3, 5000, 5001, 20000, 77777, 77778, 200001]);
        expect(decodeChunks(parserOptions(role), chunks).map(view)).to.deep.equal([view(frame('text', text))]);

        const bad = Buffer.from(text);
        bad[150_000] = 0xff;
        const wire = naiveEncode(frame('text', bad), key);
        const header = wire.length - bad.length;
        const parser = new FrameParser(parserOptions(role));
        parser.push(Buffer.from(wire.subarray(0, header + 100_000)));
        expect(parser.next()).to.equal(null);
        parser.push(Buffer.from(wire.subarray(header + 100_000, header + 150_000)));
        expect(parser.next()).to.equal(null);
        parser.push(Buffer.from(wire.subarray(header + 150_000, header + 150_001)));
        expect((thrown(() => parser.next()) as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_UTF8');
        expect(parser.next()).to.equal(null);
      });

      it(`assembles text whose first bytes were checked in place before 1/16 arrived (${form})`, () => {
        const text = Buffer.from('€'.repeat(40000));
        const wire = naiveEncode(frame('text', text, false), key);
        const last = naiveEncode(frame('continuation', '😀'), key);
        const chunks = cut(concat([wire, last]), [12, 1000, 1001, 9000, 60000, wire.length + 2]);
        expect(decodeChunks(parserOptions(role), chunks).map(view)).to.deep.equal([
          view(frame('text', text, false)), view(frame('continuation', '😀')),
        ]);
      });
    }
  });

  describe('limits', () => {
    it('accepts a payload of exactly maxFrameSize', () => {
      expect(decodeChunks(client({ maxFrameSize: 100 }), [concat([hex('82 64'), pattern(100)])]).map(view)).to.deep.equal([
        view(frame('binary', pattern(100))),
      ]);
      expect(decodeChunks(client({ maxFrameSize: 1000 }), [concat([hex('82 7e 03e8'), pattern(1000)])]).map(view)).to.deep.equal([
        view(frame('binary', pattern(1000))),
      ]);
      expect(decodeChunks(server({ maxFrameSize: 70000 }), [concat([hex('82 ff 0000000000011170'), KEY, xorKey(pattern(70000))])]).map(view)).to.deep.equal([
        view(frame('binary', pattern(70000))),
      ]);
    });

    it('never counts control frames against maxFrameSize (a 125-byte ping passes a limit of 2)', () => {
      const ping = concat([hex('89 7d'), pattern(125)]);
      expect(decodeChunks(client({ maxFrameSize: 2, maxBufferedBytes: 139 }), [ping]).map(view)).to.deep.equal([
        view(frame('ping', pattern(125))),
      ]);
      expectFailure(client({ maxFrameSize: 2, maxBufferedBytes: 139 }), hex('82 03'), 'WSP_ERR_FRAME_TOO_LARGE', 1009);
    });

    it('emits WSP_ERR_FRAME_TOO_LARGE (1009) for one byte more, as soon as the header is pushed', () => {
      expectFailure(client({ maxFrameSize: 100 }), hex('82 65'), 'WSP_ERR_FRAME_TOO_LARGE', 1009);
      expectFailure(server({ maxFrameSize: 100 }), hex('82 e5 37fa213d'), 'WSP_ERR_FRAME_TOO_LARGE', 1009);
      expectFailure(client({ maxFrameSize: 1000 }), hex('82 7e 03e9'), 'WSP_ERR_FRAME_TOO_LARGE', 1009);
      expectFailure(server({ maxFrameSize: 70000 }), hex('82 ff 0000000000011171 37fa213d'), 'WSP_ERR_FRAME_TOO_LARGE', 1009);
      // Also in a continuation frame of an open message.
      const before = expectFailure(client({ maxFrameSize: 10 }), hex('01 01 61  80 0b'), 'WSP_ERR_FRAME_TOO_LARGE', 1009);
      expect(before).to.have.length(1);
    });

    it('emits WSP_ERR_FRAME_TOO_LARGE (1009) for header bytes pushed one at a time', () => {
      const parser = new FrameParser(server({ maxFrameSize: 1000 }));
      const header = hex('82 fe 03e9 37fa213d');
      for (let i = 0; i < header.length - 1; i++) {
        parser.push(header.subarray(i, i + 1));
        expect(parser.next()).to.equal(null);
      }
      parser.push(header.subarray(header.length - 1));
      const err = thrown(() => parser.next()) as WebSocketProxyError;
      expect(err).to.be.instanceOf(WebSocketProxyError);
      expect(err.code).to.equal('WSP_ERR_FRAME_TOO_LARGE');
      expect(err.closeCode).to.equal(1009);
    });

    for (const length of ['0020000000000000', '0020000000000001', '7fffffffffffffff', '0123456789abcdef']) {
      it(`emits WSP_ERR_FRAME_TOO_LARGE (1009) for the 64-bit length 0x${length} (2^53 and above)`, () => {
        expectFailure(client(), hex(`82 7f ${length}`), 'WSP_ERR_FRAME_TOO_LARGE', 1009);
        for (const max of [Number.MAX_SAFE_INTEGER, Infinity]) {
          expectFailure(
            client({ maxFrameSize: max, maxBufferedBytes: max }),
            hex(`82 7f ${length}`),
            'WSP_ERR_FRAME_TOO_LARGE',
            1009,
          );
        }
      });
    }

    it('waits for the payload of a large frame announced within 2^53 when the limits allow it', () => {
      const parser = new FrameParser(client({ maxFrameSize: Number.MAX_SAFE_INTEGER, maxBufferedBytes: Infinity }));
      parser.push(hex('82 7f 001fffffffffffff 00'));
      expect(parser.next()).to.equal(null);
      expect(parser.midFrame).to.equal(true);
    });

    it('accepts a frame of exactly maxBufferedBytes (header included)', () => {
      expect(decodeChunks(client({ maxBufferedBytes: 50 }), [concat([hex('82 30'), pattern(48)])]).map(view)).to.deep.equal([
        view(frame('binary', pattern(48))),
      ]);
      expect(decodeChunks(server({ maxBufferedBytes: 50 }), [concat([hex('82 ac'), KEY, xorKey(pattern(44))])]).map(view)).to.deep.equal([
        view(frame('binary', pattern(44))),
      ]);
    });

    it('emits WSP_ERR_BUFFER_LIMIT (1009) for a frame one byte over maxBufferedBytes, at its header', () => {
      expectFailure(client({ maxBufferedBytes: 50 }), hex('82 31'), 'WSP_ERR_BUFFER_LIMIT', 1009);
      expectFailure(server({ maxBufferedBytes: 50 }), hex('82 ad 37fa213d'), 'WSP_ERR_BUFFER_LIMIT', 1009);
      expectFailure(client({ maxBufferedBytes: 1000 }), hex('82 7e 03e5'), 'WSP_ERR_BUFFER_LIMIT', 1009);
    });

    it('checks maxFrameSize before maxBufferedBytes', () => {
      expectFailure(client({ maxFrameSize: 10, maxBufferedBytes: 5 }), hex('82 0b'), 'WSP_ERR_FRAME_TOO_LARGE', 1009);
      expectFailure(client({ maxFrameSize: 10, maxBufferedBytes: 5 }), hex('82 0a'), 'WSP_ERR_BUFFER_LIMIT', 1009);
    });
  });

  describe('message limits', () => {
    it('emits WSP_ERR_MESSAGE_TOO_LARGE (1009) at the fragment header that goes over maxMessageSize', () => {
      const before = expectFailure(client({ maxMessageSize: 5 }), hex('01 03 616263  89 00  00 02 6465  80 01'), 'WSP_ERR_MESSAGE_TOO_LARGE', 1009);
      expect(before.map((f) => f.type)).to.deep.equal(['text', 'ping', 'continuation']);
      expect(decodeChunks(client({ maxMessageSize: 5 }), [hex('01 03 616263  89 00  80 02 6465  82 05 0102030405')])).to.have.length(4);
    });

    it('applies maxMessageSize to an unfragmented message too', () => {
      expectFailure(client({ maxMessageSize: 5 }), hex('82 06'), 'WSP_ERR_MESSAGE_TOO_LARGE', 1009);
      expect(decodeChunks(client({ maxMessageSize: 5 }), [hex('82 05 0102030405')])).to.have.length(1);
    });

    it('emits WSP_ERR_TOO_MANY_FRAGMENTS (1009) for one data frame over maxFragments, control frames not counted', () => {
      const before = expectFailure(client({ maxFragments: 2 }), hex('01 00  89 00  00 00  8a 00  80 00'), 'WSP_ERR_TOO_MANY_FRAGMENTS', 1009);
      expect(before.map((f) => f.type)).to.deep.equal(['text', 'ping', 'continuation', 'pong']);
      expect(decodeChunks(client({ maxFragments: 2 }), [hex('01 00  89 00  80 00  02 00  80 00')])).to.have.length(5);
    });
  });

  describe('zero-copy', () => {
    it('gives payloads that are views of the pushed chunk when the frame is inside it', () => {
      const chunk = hex('82 03 010203  81 02 6869');
      const parser = new FrameParser(client());
      parser.push(chunk);
      const [a, b] = drain(parser);
      expect(a!.payload.buffer).to.equal(chunk.buffer);
      expect(a!.payload.byteOffset).to.equal(chunk.byteOffset + 2);
      expect(b!.payload.buffer).to.equal(chunk.buffer);
      expect(b!.payload.byteOffset).to.equal(chunk.byteOffset + 7);
      chunk[2] = 0xaa;
      expect(a!.payload[0]).to.equal(0xaa);
    });

    it('unmasks in place: a masked frame inside one chunk gives a view of the chunk', () => {
      const chunk = concat([hex('82 fe 0100'), KEY, xorKey(pattern(256))]);
      const parser = new FrameParser(server());
      parser.push(chunk);
      const f = parser.next()!;
      expect(f.payload.equals(pattern(256))).to.equal(true);
      expect(f.payload.buffer).to.equal(chunk.buffer);
      expect(f.payload.byteOffset).to.equal(chunk.byteOffset + 8);
    });

    it('gives a view when only the header spans chunks', () => {
      const one = hex('82');
      const two = hex('03 010203');
      const parser = new FrameParser(client());
      parser.push(one);
      parser.push(two);
      const f = parser.next()!;
      expect(f.payload.buffer).to.equal(two.buffer);
    });

    it('gives a copy when the payload spans chunks', () => {
      const one = hex('82 04 0102');
      const two = hex('0304 81 00');
      const parser = new FrameParser(client());
      parser.push(one);
      expect(parser.next()).to.equal(null);
      parser.push(two);
      const f = parser.next()!;
      expect(f.payload.toString('hex')).to.equal('01020304');
      expect(f.payload.buffer).to.not.equal(one.buffer);
      expect(f.payload.buffer).to.not.equal(two.buffer);
      one.fill(0);
      two.fill(0);
      expect(f.payload.toString('hex')).to.equal('01020304');
    });
  });

  describe('state', () => {
    it('reports midFrame and midMessage', () => {
      const parser = new FrameParser(client());
      expect([parser.midFrame, parser.midMessage]).to.deep.equal([false, false]);
      parser.push(hex('01'));
      expect(parser.next()).to.equal(null);
      expect([parser.midFrame, parser.midMessage]).to.deep.equal([true, false]);
      parser.push(hex('02 61'));
      expect(parser.next()).to.equal(null);
      expect(parser.midFrame).to.equal(true);
      expect(parser.bufferedBytes).to.equal(1);
      parser.push(hex('62'));
      expect(view(parser.next()!)).to.deep.equal(view(frame('text', 'ab', false)));
      expect([parser.midFrame, parser.midMessage]).to.deep.equal([false, true]);
      parser.push(hex('80 00'));
      expect(view(parser.next()!)).to.deep.equal(view(frame('continuation', '')));
      expect([parser.midFrame, parser.midMessage, parser.bufferedBytes]).to.deep.equal([false, false, 0]);
    });

    it('ignores empty pushes', () => {
      const parser = new FrameParser(client());
      parser.push(Buffer.alloc(0));
      expect(parser.next()).to.equal(null);
      parser.push(hex('81 01'));
      parser.push(Buffer.alloc(0));
      parser.push(hex('61'));
      expect(view(parser.next()!)).to.deep.equal(view(frame('text', 'a')));
    });

    it('drops buffered bytes and returns null for ever after an error', () => {
      const parser = new FrameParser(client());
      parser.push(hex('81 01 61  83 00  81 01 62'));
      expect(view(parser.next()!)).to.deep.equal(view(frame('text', 'a')));
      expect(() => parser.next()).to.throw(WebSocketProxyError);
      expect(parser.bufferedBytes).to.equal(0);
      for (let i = 0; i < 3; i++) {
        parser.push(hex('81 01 63'));
        expect(parser.next()).to.equal(null);
      }
      expect(parser.bufferedBytes).to.equal(0);
    });
  });
});
