import { expect } from 'chai';
import { textFrame } from '../../src/frame.js';
import { type RecordedFrame, parseRecording, recordFrame, toJsonLine } from '../../src/record/format.js';
import { RecordingRing } from '../../src/record/ring.js';

/** Records of equal JSON length for i < 10000. */
function rec(i: number, connection = 'c'): RecordedFrame {
  return recordFrame(textFrame(String(i).padStart(4, '0')), { time: 10000 + i, connection, from: 'client' });
}

const times = (records: Iterable<RecordedFrame>) => [...records].map((r) => r.time - 10000);

const SIZE = Buffer.byteLength(toJsonLine(rec(0)));

describe('RecordingRing', () => {
  it('validates its options', () => {
    expect(() => new RecordingRing({ maxBytes: 0 })).to.throw(TypeError, 'options.maxBytes must be a number >= 1');
    expect(() => new RecordingRing({ maxFrames: 1.5 })).to.throw(TypeError, 'options.maxFrames must be an integer >= 1');
    expect(() => new RecordingRing('x' as never)).to.throw(TypeError, 'options must be an object');
  });

  it('keeps the newest records within maxFrames, oldest first, counting evictions', () => {
    const ring = new RecordingRing({ maxFrames: 3 });
    for (let i = 0; i < 10; i++) ring.push(rec(i));
    expect(times(ring)).to.deep.equal([7, 8, 9]);
    expect(ring.length).to.equal(3);
    expect(ring.evicted).to.equal(7);
  });

  it('keeps the bytes (as JSON lines) within maxBytes under a flood', () => {
    const ring = new RecordingRing({ maxBytes: SIZE * 5 });
    for (let i = 0; i < 5000; i++) {
      ring.push(rec(i));
      expect(ring.bytes).to.be.at.most(SIZE * 5);
    }
    expect(times(ring.toArray())).to.deep.equal([4995, 4996, 4997, 4998, 4999]);
    expect(ring.bytes).to.equal(SIZE * 5);
    expect(ring.evicted).to.equal(4995);
  });

  it('refuses a record larger than the ring, keeping the others', () => {
    const ring = new RecordingRing({ maxBytes: SIZE });
    ring.push(rec(1));
    expect(ring.push(recordFrame(textFrame('x'.repeat(500)), { time: 2, connection: 'c', from: 'client' }))).to.equal(false);
    expect(times(ring.toArray())).to.deep.equal([1]);
  });

  it('exports JSON Lines with its header, all connections or one', () => {
    const ring = new RecordingRing();
    ring.push(rec(1, 'a'));
    ring.push(rec(2, 'b'));
    const all = parseRecording(ring.toJsonl());
    expect(all.header).to.deep.equal(ring.header);
    expect(all.frames.map((r) => r.connection)).to.deep.equal(['a', 'b']);
    const one = parseRecording(ring.toJsonl('b'));
    expect(one.header.connection).to.equal('b');
    expect(times(one.frames)).to.deep.equal([2]);
  });

  it('iterates a snapshot and empties with clear()', () => {
    const ring = new RecordingRing();
    ring.push(rec(1));
    const seen: number[] = [];
    for (const r of ring) {
      seen.push(r.time - 10000);
      if (r.time === 10001) ring.push(rec(2));
    }
    expect(seen).to.deep.equal([1]);
    ring.clear();
    expect(ring.length).to.equal(0);
    expect(ring.bytes).to.equal(0);
  });
});
