import { expect } from 'chai';
import { isUtf8 } from 'node:buffer';
import { Utf8Validator, isValidUtf8 } from '../../src/protocol/utf8.js';
import { hex } from '../fixtures/frames.js';
import { SeededRandom } from '../helpers/random.js';

/**
 * Naive oracle, straight from the table of well-formed byte sequences (Unicode 15, table 3-7): the
 * index of the first byte at which `bytes` stops being a prefix of valid UTF-8, or -1 if it never
 * does. `complete` tells whether it also ends on a character boundary.
 */
function oracle(bytes: Buffer): { firstBad: number; complete: boolean } {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    if (lead <= 0x7f) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) need = 1;
    else if (lead === 0xe0) [need, lo] = [2, 0xa0];
    else if ((lead >= 0xe1 && lead <= 0xec) || lead === 0xee || lead === 0xef) need = 2;
    else if (lead === 0xed) [need, hi] = [2, 0x9f];
    else if (lead === 0xf0) [need, lo] = [3, 0x90];
    else if (lead >= 0xf1 && lead <= 0xf3) need = 3;
    else if (lead === 0xf4) [need, hi] = [3, 0x8f];
    else return { firstBad: i, complete: false };
    for (let k = 1; k <= need; k++) {
      if (i + k >= bytes.length) return { firstBad: -1, complete: false };
      const b = bytes[i + k]!;
      const min = k === 1 ? lo : 0x80;
      const max = k === 1 ? hi : 0xbf;
      if (b < min || b > max) return { firstBad: i + k, complete: false };
    }
    i += need + 1;
  }
  return { firstBad: -1, complete: true };
}

/** Runs a validator over `chunks`: the index of the first write returning false, else the end() result. */
function run(chunks: readonly Buffer[]): { failedAt: number; ended: boolean | null } {
  const v = new Utf8Validator();
  for (let i = 0; i < chunks.length; i++) {
    if (!v.write(chunks[i]!)) return { failedAt: i, ended: null };
  }
  return { failedAt: -1, ended: v.end() };
}

/** What {@link run} must give for `chunks` according to the oracle. */
function expected(chunks: readonly Buffer[]): { failedAt: number; ended: boolean | null } {
  const whole = Buffer.concat(chunks);
  const { firstBad, complete } = oracle(whole);
  if (firstBad === -1) return { failedAt: -1, ended: complete };
  let end = 0;
  for (let i = 0; i < chunks.length; i++) {
    end += chunks[i]!.length;
    if (firstBad < end) return { failedAt: i, ended: null };
  }
  throw new Error('unreachable');
}

const TRICKY = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];

/** UTF-8-ish bytes: mostly valid characters of every length, with random and boundary bytes mixed in. */
function utf8ish(rng: SeededRandom, maxItems: number, badness: number): Buffer {
  const parts: Buffer[] = [];
  const items = rng.int(0, maxItems);
  for (let i = 0; i < items; i++) {
    if (rng.chance(badness)) {
      parts.push(rng.chance(0.5) ? Buffer.from([rng.pick(TRICKY)]) : rng.bytes(1));
      continue;
    }
    const kind = rng.int(0, 3);
    let cp: number;
    if (kind === 0) cp = rng.int(0, 0x7f);
    else if (kind === 1) cp = rng.int(0x80, 0x7ff);
    else if (kind === 2) {
      cp = rng.int(0x800, 0xffff - 0x800);
      if (cp >= 0xd800) cp += 0x800;
    } else cp = rng.int(0x10000, 0x10ffff);
    let bytes = Buffer.from(String.fromCodePoint(cp), 'utf8');
    // Now and then a character cut short, or the boundary code points.
    if (rng.chance(badness / 2) && bytes.length > 1) bytes = bytes.subarray(0, rng.int(1, bytes.length - 1));
    parts.push(bytes);
  }
  return Buffer.concat(parts);
}

/** Random split, empty chunks included now and then. */
function split(rng: SeededRandom, data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    const size = rng.chance(0.1) ? 0 : rng.chance(0.5) ? rng.int(1, 3) : rng.int(1, 40);
    chunks.push(data.subarray(offset, Math.min(data.length, offset + size)));
    offset += size;
  }
  if (chunks.length === 0 || rng.chance(0.1)) chunks.push(Buffer.alloc(0));
  return chunks;
}

describe('utf8', () => {
  describe('oracle (self-check)', () => {
    it('agrees with buffer.isUtf8 on the boundary code points', () => {
      for (const cp of [0, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff]) {
        const b = Buffer.from(String.fromCodePoint(cp), 'utf8');
        expect(oracle(b), cp.toString(16)).to.deep.equal({ firstBad: -1, complete: true });
      }
      expect(oracle(hex('eda080'))).to.deep.equal({ firstBad: 1, complete: false });
    });
  });

  describe('isValidUtf8', () => {
    it('accepts empty and valid text, rejects invalid bytes', () => {
      expect(isValidUtf8(Buffer.alloc(0))).to.equal(true);
      expect(isValidUtf8(Buffer.from('héllo €😀'))).to.equal(true);
      for (const bad of ['c080', 'e08080', 'eda080', 'f4908080', 'f5', '80', 'e282', 'ff']) {
        expect(isValidUtf8(hex(bad)), bad).to.equal(false);
      }
    });
  });

  describe('Utf8Validator', () => {
    const cases: readonly [string, string, number][] = [
      // name, bytes, index of the first byte that makes the text invalid (-1: valid prefix)
      ['overlong C0 80', 'c080', 0],
      ['overlong C1 BF', 'c1bf', 0],
      ['overlong E0 80 80', 'e08080', 1],
      ['overlong F0 80 80 80', 'f0808080', 1],
      ['surrogate ED A0 80', 'eda080', 1],
      ['surrogate ED BF BF', 'edbfbf', 1],
      ['above U+10FFFF: F4 90 80 80', 'f4908080', 1],
      ['F5', 'f5', 0],
      ['FF', 'ff', 0],
      ['lone continuation 80', '80', 0],
      ['continuation after ASCII', '41 bf', 1],
      ['too many continuations', 'c3a9 a9', 2],
      ['lead followed by ASCII', 'e2 41', 1],
      ['3-byte lead, continuation, ASCII', 'e282 41', 2],
      ['4-byte lead cut by a lead', 'f09f c3a9', 2],
      ['valid then F8', '616263 f8', 3],
    ];

    for (const [name, bytes, firstBad] of cases) {
      it(`rejects ${name} at byte ${firstBad}, whole and one byte per write`, () => {
        const b = hex(bytes);
        expect(oracle(b).firstBad).to.equal(firstBad);
        expect(run([b])).to.deep.equal({ failedAt: 0, ended: null });
        const bytewise = [...b].map((x) => Buffer.from([x]));
        expect(run(bytewise)).to.deep.equal({ failedAt: firstBad, ended: null });
      });
    }

    for (const [name, bytes] of [
      ['truncated 3-byte character E2 82', 'e282'],
      ['truncated 2-byte character', '41 c3'],
      ['truncated 4-byte character', 'f09f98'],
      ['lone valid lead F4', 'f4'],
    ] as const) {
      it(`accepts the writes of a ${name} but fails end()`, () => {
        const b = hex(bytes);
        expect(run([b])).to.deep.equal({ failedAt: -1, ended: false });
        expect(run([...b].map((x) => Buffer.from([x])))).to.deep.equal({ failedAt: -1, ended: false });
      });
    }

    it('accepts characters cut at every point across writes', () => {
      const text = Buffer.from('a€😀éz\u{10ffff}\u{800}\u{7ff}');
      for (let i = 0; i <= text.length; i++) {
        for (let j = i; j <= text.length; j++) {
          const chunks = [text.subarray(0, i), text.subarray(i, j), text.subarray(j)];
          expect(run(chunks), `cut at ${i} and ${j}`).to.deep.equal({ failedAt: -1, ended: true });
        }
      }
    });

    it('fails a character cut across writes at the write that breaks it', () => {
      expect(run([hex('e2'), hex('82'), hex('41')])).to.deep.equal({ failedAt: 2, ended: null });
      expect(run([hex('f0'), hex('9f98'), hex('80 ed'), hex('a0')])).to.deep.equal({ failedAt: 3, ended: null });
      expect(run([hex('e0'), hex('9f')])).to.deep.equal({ failedAt: 1, ended: null });
      expect(run([hex('f4'), hex('90')])).to.deep.equal({ failedAt: 1, ended: null });
      expect(run([hex('c3'), hex(''), hex('c3')])).to.deep.equal({ failedAt: 2, ended: null });
    });

    it('is ready for a new text after end() and after reset()', () => {
      const v = new Utf8Validator();
      expect(v.write(hex('e282'))).to.equal(true);
      expect(v.end()).to.equal(false);
      expect(v.write(hex('41'))).to.equal(true);
      expect(v.end()).to.equal(true);
      expect(v.write(hex('f09f'))).to.equal(true);
      v.reset();
      expect(v.write(hex('41'))).to.equal(true);
      expect(v.end()).to.equal(true);
    });

    it('does not modify what it is given', () => {
      const b = hex('61 e282 ac f09f');
      const copy = Buffer.from(b);
      new Utf8Validator().write(b);
      expect(b.equals(copy)).to.equal(true);
    });

    for (const seed of [11, 12, 13, 2024, 0xc0ffee, 777777]) {
      it(`agrees with buffer.isUtf8 and fails at the first bad byte for random splits (seed ${seed})`, () => {
        const rng = new SeededRandom(seed);
        let invalid = 0;
        let truncated = 0;
        let valid = 0;
        for (let round = 0; round < 1500; round++) {
          const badness = rng.pick([0, 0.01, 0.05, 0.2]);
          const whole = utf8ish(rng, rng.pick([3, 10, 60]), badness);
          const chunks = split(rng, whole);
          const want = expected(chunks);
          const got = run(chunks);
          expect(got, `round ${round}: ${chunks.map((c) => c.toString('hex')).join(' | ')}`).to.deep.equal(want);
          if (got.failedAt === -1) expect(got.ended).to.equal(isUtf8(whole));
          else expect(isUtf8(whole)).to.equal(false);
          if (got.failedAt !== -1) invalid++;
          else if (got.ended === true) valid++;
          else truncated++;
        }
        // The generator must exercise all three outcomes.
        expect(invalid).to.be.above(100);
        expect(valid).to.be.above(100);
        expect(truncated).to.be.above(10);
      });
    }
  });
});
