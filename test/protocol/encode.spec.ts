import { expect } from 'chai';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame } from '../../src/frame.js';
import {
  MAX_CLOSE_REASON,
  MAX_CONTROL_PAYLOAD,
  MASK_IN_PLACE_MIN,
  encodeFrame,
  headerLength,
  truncateCloseReason,
  wirePayload,
  writeHeader,
} from '../../src/protocol/encode.js';
import { FIXTURES, KEY, concat, frame, hex, naiveEncode, pattern, randomFrames, thrown, xorKey } from '../fixtures/frames.js';
import { SeededRandom } from '../helpers/random.js';

function encode(f: Frame, key?: Buffer): Buffer {
  return concat(encodeFrame(f, key));
}

function expectError(fn: () => unknown, code: string, closeCode: number): WebSocketProxyError {
  const err = thrown(fn);
  expect(err).to.be.instanceOf(WebSocketProxyError);
  const e = err as WebSocketProxyError;
  expect(e.code).to.equal(code);
  expect(e.closeCode).to.equal(closeCode);
  return e;
}

/** Payload sizes around every length form, with the length bytes written out by hand. */
const SIZES: readonly { size: number; unmaskedLength: string; maskedLength: string }[] = [
  { size: 0, unmaskedLength: '00', maskedLength: '80' },
  { size: 1, unmaskedLength: '01', maskedLength: '81' },
  { size: 125, unmaskedLength: '7d', maskedLength: 'fd' },
  { size: 126, unmaskedLength: '7e 007e', maskedLength: 'fe 007e' },
  { size: 1024, unmaskedLength: '7e 0400', maskedLength: 'fe 0400' },
  { size: 1025, unmaskedLength: '7e 0401', maskedLength: 'fe 0401' },
  { size: 65535, unmaskedLength: '7e ffff', maskedLength: 'fe ffff' },
  { size: 65536, unmaskedLength: '7f 0000000000010000', maskedLength: 'ff 0000000000010000' },
  { size: 70000, unmaskedLength: '7f 0000000000011170', maskedLength: 'ff 0000000000011170' },
  { size: 1048576, unmaskedLength: '7f 0000000000100000', maskedLength: 'ff 0000000000100000' },
];

describe('encode', () => {
  describe('encodeFrame', () => {
    describe('payload sizes', () => {
      for (const { size, unmaskedLength, maskedLength } of SIZES) {
        it(`encodes a ${size}-byte binary frame unmasked byte for byte`, () => {
          const payload = pattern(size);
          const out = encode(frame('binary', payload));
          expect(out.equals(concat([hex(`82 ${unmaskedLength}`), payload]))).to.equal(true);
        });

        it(`encodes a ${size}-byte binary frame masked with 37fa213d byte for byte`, () => {
          const payload = pattern(size);
          const out = encode(frame('binary', payload), KEY);
          expect(out.equals(concat([hex(`82 ${maskedLength} 37fa213d`), xorKey(payload)]))).to.equal(true);
        });

        it(`encodes a ${size}-byte text fragment (FIN=0, RSV1) masked with another key`, () => {
          const payload = pattern(size);
          const key = hex('a1b2c3d4');
          const out = encode(frame('text', payload, false, true), key);
          expect(out.equals(concat([hex(`41 ${maskedLength} a1b2c3d4`), xorKey(payload, key)]))).to.equal(true);
        });
      }

      it('encodes a continuation frame with opcode 0x0', () => {
        expect(encode(frame('continuation', 'lo', false)).toString('hex')).to.equal('00026c6f');
        expect(encode(frame('continuation', 'lo', true)).toString('hex')).to.equal('80026c6f');
      });

      it('returns a small unmasked frame as one buffer', () => {
        const parts = encodeFrame(frame('binary', pattern(1024)));
        expect(parts).to.have.length(1);
        expect(parts[0].length).to.equal(4 + 1024);
      });

      it('returns a large unmasked frame as the header and the payload itself (no copy)', () => {
        const payload = pattern(1025);
        const parts = encodeFrame(frame('binary', payload));
        expect(parts).to.have.length(2);
        expect(parts[0].toString('hex')).to.equal('827e0401');
        expect(parts[1]).to.equal(payload);
      });

      it('returns a masked frame as one buffer', () => {
        const parts = encodeFrame(frame('binary', pattern(70000)), KEY);
        expect(parts).to.have.length(1);
        expect(parts[0].length).to.equal(14 + 70000);
      });
    });

    describe('fixtures', () => {
      for (const fixture of FIXTURES) {
        it(`encodes "${fixture.name}" to the fixture bytes, unmasked and masked`, () => {
          expect(concat(fixture.frames.map((f) => encode(f))).equals(fixture.unmasked)).to.equal(true);
          expect(concat(fixture.frames.map((f) => encode(f, KEY))).equals(fixture.masked)).to.equal(true);
        });
      }
    });

    describe('randomised', () => {
      for (const seed of [21, 22, 23, 0xfeed]) {
        it(`agrees with the naive encoder on random frame sequences (seed ${seed})`, () => {
          const rng = new SeededRandom(seed);
          for (let round = 0; round < 40; round++) {
            for (const f of randomFrames(rng, { big: round % 10 === 0, rsv1: true })) {
              const key = rng.bytes(4);
              const copy = Buffer.from(f.payload);
              expect(encode(f).equals(naiveEncode(f)), `round ${round} unmasked ${f.type}`).to.equal(true);
              expect(encode(f, key).equals(naiveEncode(f, key)), `round ${round} masked ${f.type}`).to.equal(true);
              expect(f.payload.equals(copy)).to.equal(true);
            }
          }
        });
      }
    });

    describe('input payload', () => {
      for (const size of [0, 3, 31, 32, 47, 48, 49, 1000, 1025, 70000]) {
        it(`never mutates a ${size}-byte payload or the key when masking`, () => {
          const payload = pattern(size);
          const copy = Buffer.from(payload);
          const key = hex('ff00ff00');
          encodeFrame(frame('binary', payload), key);
          encodeFrame(frame('text', payload, false), key);
          expect(payload.equals(copy)).to.equal(true);
          expect(key.toString('hex')).to.equal('ff00ff00');
        });
      }

      it('never mutates a masked view into a larger buffer, nor its neighbours', () => {
        const backing = pattern(200);
        const copy = Buffer.from(backing);
        const out = encode(frame('binary', backing.subarray(13, 113)), KEY);
        expect(backing.equals(copy)).to.equal(true);
        expect(out.equals(concat([hex('82 e4 37fa213d'), xorKey(copy.subarray(13, 113))]))).to.equal(true);
      });

      it('rejects a close reason that is not valid UTF-8 with WSP_ERR_INVALID_FRAME (1011)', () => {
        expectError(() => encodeFrame(frame('close', hex('ceba e1bd b9cf 83ce bcce b5ed a080'), true, false, 1000)), 'WSP_ERR_INVALID_FRAME', 1011);
        expectError(() => encodeFrame(frame('close', hex('c0 80'), true, false, 1000), KEY), 'WSP_ERR_INVALID_FRAME', 1011);
      });

      it(`masks a payload of MASK_IN_PLACE_MIN bytes or more in place when allowed, and returns it as the 2nd buffer`, () => {
        for (const size of [MASK_IN_PLACE_MIN, MASK_IN_PLACE_MIN + 3, 70000]) {
          const payload = pattern(size);
          const copy = Buffer.from(payload);
          const out = encodeFrame(frame('binary', payload), KEY, true);
          expect(out).to.have.length(2);
          expect(out[1]).to.equal(payload);
          expect(payload.equals(xorKey(copy))).to.equal(true);
          expect(concat(out).equals(naiveEncode(frame('binary', copy), KEY))).to.equal(true);
        }
      });

      it('copies a smaller payload, or an unmasked one, even when allowed to mask in place', () => {
        for (const [size, key] of [[MASK_IN_PLACE_MIN - 1, KEY], [100, KEY], [70000, undefined]] as const) {
          const payload = pattern(size);
          const copy = Buffer.from(payload);
          const out = concat(encodeFrame(frame('binary', payload), key, true));
          expect(payload.equals(copy)).to.equal(true);
          expect(out.equals(naiveEncode(frame('binary', copy), key))).to.equal(true);
        }
      });

      it('never mutates a close reason when masking or cutting it', () => {
        const reason = Buffer.from('é'.repeat(70), 'utf8');
        const copy = Buffer.from(reason);
        encodeFrame(frame('close', reason, true, false, 1000), KEY);
        expect(reason.equals(copy)).to.equal(true);
      });
    });

    describe('close bodies', () => {
      it('encodes an empty close (no code) as 88 00', () => {
        expect(encode(frame('close', '')).toString('hex')).to.equal('8800');
        expect(encode(frame('close', ''), KEY).toString('hex')).to.equal('888037fa213d');
      });

      it('encodes a code only as the 2-byte code', () => {
        expect(encode(frame('close', '', true, false, 1000)).toString('hex')).to.equal('880203e8');
        expect(encode(frame('close', '', true, false, 4999)).toString('hex')).to.equal('88021387');
        expect(encode(frame('close', '', true, false, 1000), KEY).toString('hex')).to.equal('888237fa213d3412');
      });

      it('encodes a code and a reason as code then reason', () => {
        expect(encode(frame('close', 'bye', true, false, 1001)).toString('hex')).to.equal('880503e9627965');
        expect(encode(frame('close', 'bye', true, false, 1001), KEY).toString('hex')).to.equal(
          '888537fa213d3413434452',
        );
      });

      it('keeps a reason of exactly 123 bytes whole', () => {
        const reason = Buffer.from('€'.repeat(41), 'utf8');
        expect(reason.length).to.equal(123);
        const out = encode(frame('close', reason, true, false, 1000));
        expect(out.equals(concat([hex('88 7d 03e8'), reason]))).to.equal(true);
      });

      it('cuts a 124-byte ASCII reason to 123 bytes', () => {
        const reason = Buffer.from('x'.repeat(124));
        const out = encode(frame('close', reason, true, false, 1000));
        expect(out.equals(concat([hex('88 7d 03e8'), Buffer.from('x'.repeat(123))]))).to.equal(true);
      });

      it('cuts a reason of 2-byte characters before the character that crosses byte 123', () => {
        // 62 x "é" = 124 bytes; byte 123 is the 2nd byte of the 62nd character: keep 61 characters.
        const out = encode(frame('close', 'é'.repeat(62), true, false, 1000));
        expect(out.equals(concat([hex('88 7c 03e8'), Buffer.from('é'.repeat(61))]))).to.equal(true);
      });

      it('cuts a reason of 3-byte characters stepping back over two continuation bytes', () => {
        // "a" + 41 x "€" = 124 bytes; the 41st "€" covers bytes 121-123: keep "a" + 40 x "€" (121 bytes).
        const out = encode(frame('close', 'a' + '€'.repeat(41), true, false, 1000));
        expect(out.equals(concat([hex('88 7b 03e8'), Buffer.from('a' + '€'.repeat(40))]))).to.equal(true);
      });

      it('cuts a reason of 4-byte characters stepping back over three continuation bytes', () => {
        // 31 x "😀" = 124 bytes; the 31st covers bytes 120-123: keep 30 (120 bytes).
        const out = encode(frame('close', '😀'.repeat(31), true, false, 1000), KEY);
        const body = concat([hex('03e8'), Buffer.from('😀'.repeat(30))]);
        expect(out.equals(concat([hex('88 fa 37fa213d'), xorKey(body)]))).to.equal(true);
      });

      it('cuts a long reason to a valid UTF-8 prefix of at most 123 bytes', () => {
        const out = encode(frame('close', 'ü€😀'.repeat(40), true, false, 3000));
        const reason = out.subarray(4);
        expect(out[1]).to.equal(2 + reason.length);
        expect(reason.length).to.be.at.most(123);
        expect(reason.length).to.be.at.least(120);
        expect(Buffer.from(reason.toString('utf8')).equals(reason)).to.equal(true);
      });

      for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 65536, -1, 1000.5, NaN]) {
        it(`rejects close code ${code} with WSP_ERR_INVALID_FRAME (1011): sending it is our misuse`, () => {
          expectError(() => encodeFrame(frame('close', '', true, false, code)), 'WSP_ERR_INVALID_FRAME', 1011);
          expectError(
            () => encodeFrame(frame('close', 'why', true, false, code), KEY),
            'WSP_ERR_INVALID_FRAME',
            1011,
          );
        });
      }

      for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
        it(`accepts close code ${code}`, () => {
          const expected = Buffer.alloc(4);
          expected[0] = 0x88;
          expected[1] = 0x02;
          expected[2] = code >> 8;
          expected[3] = code & 0xff;
          expect(encode(frame('close', '', true, false, code)).equals(expected)).to.equal(true);
        });
      }

      it('rejects a reason without a code with WSP_ERR_INVALID_FRAME (1011)', () => {
        expectError(() => encodeFrame(frame('close', 'bye')), 'WSP_ERR_INVALID_FRAME', 1011);
        expectError(() => encodeFrame(frame('close', 'bye'), KEY), 'WSP_ERR_INVALID_FRAME', 1011);
      });
    });

    describe('control frames', () => {
      for (const type of ['ping', 'pong'] as const) {
        it(`accepts a ${type} payload of 125 bytes`, () => {
          const opcode = type === 'ping' ? '89' : '8a';
          expect(encode(frame(type, pattern(125))).equals(concat([hex(`${opcode} 7d`), pattern(125)]))).to.equal(true);
        });

        it(`rejects a ${type} payload of 126 bytes with WSP_ERR_INVALID_FRAME (1011)`, () => {
          expectError(() => encodeFrame(frame(type, pattern(126))), 'WSP_ERR_INVALID_FRAME', 1011);
          expectError(() => encodeFrame(frame(type, pattern(70000)), KEY), 'WSP_ERR_INVALID_FRAME', 1011);
        });
      }

      for (const type of ['ping', 'pong', 'close'] as const) {
        it(`rejects a ${type} frame with fin=false with WSP_ERR_INVALID_FRAME (1011)`, () => {
          expectError(() => encodeFrame(frame(type, '', false)), 'WSP_ERR_INVALID_FRAME', 1011);
          expectError(() => encodeFrame(frame(type, '', false), KEY), 'WSP_ERR_INVALID_FRAME', 1011);
        });
      }
    });

    describe('invalid frame objects', () => {
      for (const type of ['unknown', 'toString', 'constructor', '__proto__', 'hasOwnProperty']) {
        it(`rejects the type "${type}" with WSP_ERR_INVALID_FRAME (1011)`, () => {
          const bad = { type, fin: true, payload: Buffer.alloc(0), rsv1: false } as unknown as Frame;
          expectError(() => encodeFrame(bad), 'WSP_ERR_INVALID_FRAME', 1011);
        });
      }

      it('rejects a payload that is not a Buffer with WSP_ERR_INVALID_FRAME (1011)', () => {
        const bad = { type: 'text', fin: true, payload: 'hello', rsv1: false } as unknown as Frame;
        expectError(() => encodeFrame(bad), 'WSP_ERR_INVALID_FRAME', 1011);
      });
    });
  });

  describe('headerLength', () => {
    it('gives 2, 4 or 10 bytes, plus 4 when masked', () => {
      expect([0, 125, 126, 65535, 65536, 2 ** 40].map((n) => headerLength(n, false))).to.deep.equal([
        2, 2, 4, 4, 10, 10,
      ]);
      expect([0, 125, 126, 65535, 65536, 2 ** 40].map((n) => headerLength(n, true))).to.deep.equal([
        6, 6, 8, 8, 14, 14,
      ]);
    });
  });

  describe('writeHeader', () => {
    it('writes the high 32 bits of a length of 2^32 or more', () => {
      const target = Buffer.alloc(14);
      expect(writeHeader(target, 0x2, true, false, 2 ** 32 + 5, undefined)).to.equal(10);
      expect(target.subarray(0, 10).toString('hex')).to.equal('827f0000000100000005');
      expect(writeHeader(target, 0x1, false, true, 0x12345678abcd, hex('01020304'))).to.equal(14);
      expect(target.toString('hex')).to.equal('41ff000012345678abcd01020304');
    });
  });

  describe('truncateCloseReason', () => {
    it('returns a reason that fits as the same buffer', () => {
      const reason = Buffer.from('x'.repeat(MAX_CLOSE_REASON));
      expect(truncateCloseReason(reason)).to.equal(reason);
      expect(MAX_CLOSE_REASON).to.equal(123);
      expect(MAX_CONTROL_PAYLOAD).to.equal(125);
    });
  });

  describe('wirePayload', () => {
    it('gives the close body, and the payload itself for other types', () => {
      expect(wirePayload(frame('close', 'ok', true, false, 1000)).toString('hex')).to.equal('03e86f6b');
      const payload = pattern(10);
      expect(wirePayload(frame('binary', payload))).to.equal(payload);
    });
  });
});
