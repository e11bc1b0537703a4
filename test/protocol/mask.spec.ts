import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { hasNativeMask, mask, maskJs, randomMask, rotateKey, unmask, unmaskJs } from '../../src/protocol/mask.js';
import { SeededRandom } from '../helpers/random.js';

/** The naive oracle: byte i XOR key[i % 4]. */
function naive(source: Buffer, key: Buffer): Buffer {
  const out = Buffer.alloc(source.length);
  for (let i = 0; i < source.length; i++) out[i] = source[i]! ^ key[i % 4]!;
  return out;
}

/** Whether the optional addon can be loaded at all (then hasNativeMask must say so, unless disabled). */
function bufferutilInstalled(): boolean {
  try {
    createRequire(import.meta.url)('bufferutil');
    return true;
  } catch {
    return false;
  }
}

const SENTINEL = 0xee;

describe('mask', () => {
  describe('maskJs', () => {
    it('masks every length 0..100 at output offsets 0..7 like the naive loop, touching nothing else', () => {
      const rng = new SeededRandom(5);
      for (let length = 0; length <= 100; length++) {
        const source = rng.bytes(length);
        const copy = Buffer.from(source);
        const key = rng.bytes(4);
        for (let offset = 0; offset < 8; offset++) {
          const output = Buffer.alloc(offset + length + 5, SENTINEL);
          maskJs(source, key, output, offset);
          expect(output.subarray(offset, offset + length).equals(naive(source, key)), `length ${length} offset ${offset}`)
            .to.equal(true);
          expect([...output.subarray(0, offset)].every((b) => b === SENTINEL)).to.equal(true);
          expect([...output.subarray(offset + length)].every((b) => b === SENTINEL)).to.equal(true);
        }
        expect(source.equals(copy)).to.equal(true);
      }
    });

    it('masks RFC 6455 "Hello" with 37 fa 21 3d to 7f 9f 4d 51 58', () => {
      const out = Buffer.alloc(5);
      maskJs(Buffer.from('Hello'), Buffer.from([0x37, 0xfa, 0x21, 0x3d]), out, 0);
      expect(out.toString('hex')).to.equal('7f9f4d5158');
    });
  });

  describe('unmaskJs', () => {
    it('unmasks every length 0..100 in place like the naive loop, also in unaligned views', () => {
      const rng = new SeededRandom(6);
      for (let length = 0; length <= 100; length++) {
        const key = rng.bytes(4);
        const plain = rng.bytes(length);
        for (const start of [0, 1, 3]) {
          const backing = Buffer.alloc(start + length + 2, SENTINEL);
          naive(plain, key).copy(backing, start);
          unmaskJs(backing.subarray(start, start + length), key);
          expect(backing.subarray(start, start + length).equals(plain), `length ${length} start ${start}`).to.equal(true);
          expect(backing[backing.length - 1]).to.equal(SENTINEL);
          if (start > 0) expect(backing[start - 1]).to.equal(SENTINEL);
        }
      }
    });
  });

  describe('mask and unmask (native when available)', () => {
    it('uses the native addon exactly when bufferutil is installed and not disabled', () => {
      expect(hasNativeMask).to.equal(bufferutilInstalled() && !process.env.WSP_NO_BUFFER_UTIL);
    });

    const lengths = [0, 1, 4, 31, 32, 33, 47, 48, 49, 63, 64, 1000, 1001, 65537];
    for (const length of lengths) {
      it(`agrees with the JS loop and the naive loop for ${length} bytes`, () => {
        const rng = new SeededRandom(1000 + length);
        const key = rng.bytes(4);
        const source = rng.bytes(length);
        const copy = Buffer.from(source);
        const expected = naive(source, key);
        for (const offset of [0, 1, 6, 14]) {
          const viaJs = Buffer.alloc(offset + length + 3, SENTINEL);
          const viaMask = Buffer.alloc(offset + length + 3, SENTINEL);
          maskJs(source, key, viaJs, offset);
          mask(source, key, viaMask, offset);
          expect(viaMask.equals(viaJs), `offset ${offset}`).to.equal(true);
          expect(viaMask.subarray(offset, offset + length).equals(expected)).to.equal(true);
        }
        expect(source.equals(copy)).to.equal(true);
        for (const start of [0, 1, 2, 3]) {
          const backing = Buffer.alloc(start + length + 1, SENTINEL);
          expected.copy(backing, start);
          unmask(backing.subarray(start, start + length), key);
          expect(backing.subarray(start, start + length).equals(source), `unmask at ${start}`).to.equal(true);
          expect(backing[start + length]).to.equal(SENTINEL);
          if (start > 0) expect(backing[start - 1]).to.equal(SENTINEL);
        }
      });
    }
  });

  describe('randomMask', () => {
    it('fills exactly 4 bytes', () => {
      const target = Buffer.alloc(8, SENTINEL);
      randomMask(target);
      expect([...target.subarray(4)]).to.deep.equal([SENTINEL, SENTINEL, SENTINEL, SENTINEL]);
    });

    it('gives keys that change, across pool refills (5000 draws)', () => {
      const keys: string[] = [];
      const key = Buffer.alloc(4);
      for (let i = 0; i < 5000; i++) {
        randomMask(key);
        keys.push(key.toString('hex'));
      }
      // 5000 random 32-bit keys: a few collisions at most.
      expect(new Set(keys).size).to.be.at.least(4990);
      // 2048 keys per 8 KiB pool: the draws after a refill are new bytes, not the pool again.
      expect(keys.slice(2048, 4096)).to.not.deep.equal(keys.slice(0, 2048));
      expect(new Set(keys.slice(0, 2048)).size + new Set(keys.slice(2048, 4096)).size).to.be.at.least(4090);
      const first = new Set(keys.slice(0, 2048));
      expect(keys.slice(2048, 4096).filter((k) => first.has(k)).length).to.be.below(5);
    });

    it('draws all byte values (no stuck bits)', () => {
      const key = Buffer.alloc(4);
      let or = 0;
      let and = 0xff;
      for (let i = 0; i < 200; i++) {
        randomMask(key);
        for (const b of key) {
          or |= b;
          and &= b;
        }
      }
      expect(or).to.equal(0xff);
      expect(and).to.equal(0);
    });
  });

  describe('32-bit JS path (from 128 bytes)', () => {
    it('agrees with the naive loop for every alignment of source and output (seed 128)', () => {
      const rng = new SeededRandom(128);
      for (let round = 0; round < 400; round++) {
        const n = rng.int(120, 700);
        const key = rng.bytes(4);
        // Views at random byte offsets of larger buffers: every alignment of the 32-bit words.
        const backing = rng.bytes(n + 8);
        const sourceStart = rng.int(0, 7);
        const source = backing.subarray(sourceStart, sourceStart + n);
        const expected = naive(source, key);
        const outBacking = Buffer.alloc(n + 16, 0xee);
        const outStart = rng.int(0, 7);
        const offset = rng.int(0, 7);
        const output = outBacking.subarray(outStart);
        maskJs(source, key, output, offset);
        expect(output.subarray(offset, offset + n).equals(expected), `round ${round}`).to.equal(true);
        expect(output.subarray(0, offset).every((b) => b === 0xee)).to.equal(true);
        expect(output.subarray(offset + n).every((b) => b === 0xee)).to.equal(true);
        const inPlace = Buffer.from(source);
        unmaskJs(inPlace, key);
        expect(inPlace.equals(expected)).to.equal(true);
      }
    });
  });

  describe('WSP_NO_BUFFER_UTIL', () => {
    it('switches the whole codec to the JS fallback, which still round-trips masked frames (child process)', () => {
      // The switch is read when the module loads, so it is checked in a fresh process.
      const script = `
        const { hasNativeMask } = await import(${JSON.stringify(new URL('../../src/protocol/mask.js', import.meta.url).href)});
        const { encodeFrame } = await import(${JSON.stringify(new URL('../../src/protocol/encode.js', import.meta.url).href)});
        const { FrameParser } = await import(${JSON.stringify(new URL('../../src/protocol/parser.js', import.meta.url).href)});
        const parser = new FrameParser({ role: 'server', maxFrameSize: 1 << 20, maxBufferedBytes: 1 << 21, validateUtf8: true, allowRsv1: false });
        const sizes = [0, 1, 47, 48, 49, 125, 126, 1000, 70000];
        const out = [];
        for (const size of sizes) {
          const payload = Buffer.alloc(size, 'abé');
          for (const part of encodeFrame({ type: 'binary', fin: true, payload, rsv1: false }, Buffer.from([1, 2, 3, 250]))) parser.push(Buffer.from(part));
          const frame = parser.next();
          out.push(frame.payload.equals(payload));
        }
        console.log(JSON.stringify({ hasNativeMask, out }));
      `;
      const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, WSP_NO_BUFFER_UTIL: '1' },
        encoding: 'utf8',
      });
      const result = JSON.parse(output) as { hasNativeMask: boolean; out: boolean[] };
      expect(result.hasNativeMask).to.equal(false);
      expect(result.out).to.deep.equal([true, true, true, true, true, true, true, true, true]);
    });
  });

  it('rotateKey: pieces masked from their offsets with the rotated key equal the payload masked whole', () => {
    const random = new SeededRandom(0x5eed);
    const key = Buffer.from([0x11, 0x22, 0x33, 0x44]);
    const rotated = Buffer.alloc(4);
    rotateKey(key, 6, rotated);
    expect([...rotated]).to.deep.equal([0x33, 0x44, 0x11, 0x22]);
    for (let run = 0; run < 50; run++) {
      const payload = Buffer.from(Array.from({ length: random.int(0, 200) }, () => random.int(0, 255)));
      const whole = Buffer.alloc(payload.length);
      mask(payload, key, whole, 0);
      const pieces = Buffer.alloc(payload.length);
      for (let offset = 0; offset < payload.length;) {
        const n = Math.min(random.int(1, 9), payload.length - offset);
        rotateKey(key, offset, rotated);
        mask(payload.subarray(offset, offset + n), rotated, pieces, offset);
        offset += n;
      }
      expect(pieces.equals(whole), `run ${run}`).to.equal(true);
    }
  });
});
