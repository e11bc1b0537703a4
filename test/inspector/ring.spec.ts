import { expect } from 'chai';
import { binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/index.js';
import { RowRing } from '../../src/inspector/ring.js';
import { EDITED, ENTRY_OVERHEAD, INJECTED } from '../../src/inspector/row.js';
import { slabCounts } from '../../src/inspector/slab.js';

describe('inspector/ring', () => {
  it('is first in, first out across growth and wrap-around, with access by position and by sequence number', () => {
    const ring = new RowRing();
    const model: number[] = [];
    let next = 1;
    for (let step = 0; step < 500; step++) {
      if (step % 3 === 2) {
        const payload = model.shift()!;
        expect(ring.shift()).to.equal(String(payload).length + ENTRY_OVERHEAD);
      } else {
        expect(ring.record(textFrame(String(next)), next, 'client', false, 0, 100, 1000)).to.equal(String(next).length + ENTRY_OVERHEAD);
        model.push(next++);
      }
      expect(ring.length).to.equal(model.length);
      expect(ring.at(0)?.seq).to.equal(model[0]);
      expect(ring.at(0)?.payload.toString()).to.equal(model[0] === undefined ? undefined : String(model[0]));
      const last = model[model.length - 1];
      expect(ring.entry(last ?? 0)?.payload.toString()).to.equal(last === undefined ? undefined : String(last));
    }
    expect(ring.at(-1)).to.equal(undefined);
    expect(ring.at(model.length)).to.equal(undefined);
    expect(ring.entry(model[0]! - 1)).to.equal(undefined);
    ring.clear();
    expect(ring.length).to.equal(0);
    expect(ring.shift()).to.equal(0);
  });

  it('reads back every field a row packs', () => {
    const ring = new RowRing();
    const before = Date.now();
    ring.record(closeFrame(4999, 'bye'), 7, 'upstream', false, EDITED | INJECTED, 100, 10);
    ring.record(binaryFrame(Buffer.from([1, 2, 3]), false), 8, 'client', true, 0, 2, 10);
    const close = ring.at(0)!;
    expect(close).to.include({ seq: 7, from: 'upstream', type: 'close', fin: true, size: 3, code: 4999, flags: EDITED | INJECTED, binary: false, kept: 3 });
    expect(close.time).to.be.within(before, Date.now());
    expect(close.payload.toString()).to.equal('bye');
    const binary = ring.entry(8)!;
    expect(binary).to.include({ from: 'client', type: 'binary', fin: false, size: 3, code: undefined, flags: 0, binary: true, kept: 2 });
    expect([...binary.payload]).to.deep.equal([1, 2]);
    ring.clear();
  });

  it('reads back every frame type', () => {
    const ring = new RowRing();
    const frames = [textFrame('t', false), continuationFrame('c'), binaryFrame('b'), closeFrame(1000), pingFrame('p'), pongFrame('q')];
    frames.forEach((frame, i) => ring.record(frame, i + 1, 'client', false, 0, 100, 10));
    expect(frames.map((_, i) => ring.at(i)!.type)).to.deep.equal(['text', 'continuation', 'binary', 'close', 'ping', 'pong']);
    ring.clear();
  });

  it('lets the slabs of its rows go when it is dropped without being cleared, and not those of the rows it shed', async function () {
    this.timeout(10_000);
    const gc = (globalThis as { gc?: () => void }).gc!;
    const baseline = slabCounts().live;
    // Binary payloads above a quarter of a slab get a buffer of their own: one slab id per row.
    const frame = binaryFrame(Buffer.alloc(4096, 7));
    const other = new RowRing();
    (() => {
      const dropped = new RowRing();
      for (let seq = 1; seq <= 20; seq++) dropped.record(frame, seq, 'client', true, 0, 8192, 100);
      // The ids of the 5 rows shed are free, and taken again by another ring's rows.
      for (let i = 0; i < 5; i++) dropped.shift();
      for (let seq = 1; seq <= 5; seq++) other.record(binaryFrame(Buffer.alloc(4096, seq)), seq, 'client', true, 0, 8192, 100);
      expect(slabCounts().live).to.equal(baseline + 20);
    })();
    for (let tries = 0; tries < 100 && slabCounts().live > baseline + 5; tries++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The dropped ring's 15 rows let go; the other ring's 5 kept, with their bytes.
    expect(slabCounts().live).to.equal(baseline + 5);
    for (let seq = 1; seq <= 5; seq++) expect(other.entry(seq)!.payload.equals(Buffer.alloc(4096, seq))).to.equal(true);
    other.clear();
    expect(slabCounts().live).to.equal(baseline);
  });

  it('recycles its slabs once their rows are gone: a flood allocates no new one', () => {
    const ring = new RowRing();
    const frame = binaryFrame(Buffer.alloc(64, 1));
    const keep = 100;
    let seq = 0;
    for (; seq < 5000; seq++) {
      if (ring.length === keep) ring.shift();
      ring.record(frame, seq + 1, 'client', true, 0, 1000, keep);
    }
    const live = slabCounts().live;
    for (; seq < 50_000; seq++) {
      ring.shift();
      ring.record(frame, seq + 1, 'client', true, 0, 1000, keep);
    }
    // 100 rows of 64 bytes span two 8 KiB slabs at most, the one being filled included.
    expect(slabCounts().live).to.be.at.most(live);
    // Its storage grew to the most rows it holds, not to the next power of two.
    expect(ring.capacity).to.equal(keep);
    expect(ring.at(keep - 1)!.payload.equals(frame.payload)).to.equal(true);
    ring.clear();
  });
});
