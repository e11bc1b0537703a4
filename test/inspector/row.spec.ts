import { expect } from 'chai';
import { binaryFrame, closeFrame, continuationFrame, pingFrame, textFrame } from '../../src/index.js';
import type { Frame } from '../../src/frame.js';
import type { ProxyRole } from '../../src/proxy/options.js';
import { RowRing } from '../../src/inspector/ring.js';
import { EDITED, ENTRY_OVERHEAD, type Entry, INJECTED, detailOf, keepPayload, preview, rowJson, rowOf } from '../../src/inspector/row.js';

/** The entry of a frame kept alone in a ring, read back. */
function makeEntry(frame: Frame, seq: number, from: ProxyRole, binary: boolean, flags: number, maxPayload: number): Entry {
  const ring = new RowRing();
  ring.record(frame, seq, from, binary, flags, maxPayload, 1);
  return ring.at(0)!;
}

describe('inspector/row', () => {
  it('previews text as its first 120 characters, never half a surrogate pair', () => {
    expect(preview(Buffer.from('é'.repeat(200)), false)).to.equal('é'.repeat(120));
    expect(preview(Buffer.from(`${'a'.repeat(119)}😀b`), false)).to.equal('a'.repeat(119));
    expect(preview(Buffer.from('short'), false)).to.equal('short');
  });

  it('previews binary as the hex of its first 40 bytes', () => {
    expect(preview(Buffer.alloc(100, 0xab), true)).to.equal('ab'.repeat(40));
  });

  it('keeps a copy of the first bytes, text cut at a character boundary', () => {
    const source = Buffer.from('aé€');
    const kept = keepPayload(source, 4, true);
    expect(kept.toString()).to.equal('aé');
    expect(keepPayload(source, 4, false)).to.have.length(4);
    source.fill(0);
    expect(kept.toString()).to.equal('aé');
  });

  it('makes rows: size of the whole payload, code of a close, flags only when set', () => {
    const row = rowOf('c', makeEntry(closeFrame(1001, 'away'), 1, 'client', false, 0, 100));
    expect(row).to.deep.equal({ connection: 'c', seq: 1, time: row.time, from: 'client', type: 'close', fin: true, size: 4, code: 1001, preview: 'away' });
    expect(rowOf('c', makeEntry(textFrame('x'), 1, 'client', false, EDITED, 100))).to.include({ edited: true });
    expect(rowOf('c', makeEntry(textFrame('x'), 1, 'client', false, INJECTED, 100))).to.include({ injected: true });
    expect(rowOf('c', makeEntry(pingFrame(Buffer.from([0, 1])), 1, 'client', false, 0, 100)).preview).to.equal('0001');
    expect(rowOf('c', makeEntry(pingFrame('hi'), 1, 'client', false, 0, 100)).preview).to.equal('hi');
    expect(rowOf('c', makeEntry(continuationFrame(Buffer.from([1])), 1, 'client', true, 0, 100)).preview).to.equal('01');
  });

  it('writes the JSON of a row as JSON.stringify would', () => {
    for (const entry of [
      makeEntry(closeFrame(1001, 'a "quoted"\nreason'), 7, 'upstream', false, INJECTED | EDITED, 100),
      makeEntry(binaryFrame(Buffer.from([1, 2])), 8, 'client', true, 0, 100),
      makeEntry(textFrame('\u2028 é \\'), 9, 'client', false, EDITED, 100),
    ]) {
      expect(JSON.parse(rowJson(JSON.stringify('id "1"'), entry))).to.deep.equal(rowOf('id "1"', entry));
    }
  });

  it('details a payload as UTF-8 when it is valid text, else base64, and tells when it was cut', () => {
    expect(detailOf('c', makeEntry(textFrame('héllo'), 1, 'client', false, 0, 2))).to.include({ payload: 'h', encoding: 'utf8', truncated: true });
    expect(detailOf('c', makeEntry(binaryFrame(Buffer.from('ab')), 1, 'client', true, 0, 100))).to.include({ payload: 'YWI=', encoding: 'base64', truncated: false });
    // A text fragment that splits a character is not valid text on its own.
    expect(detailOf('c', makeEntry(continuationFrame(Buffer.from([0xa9])), 1, 'client', false, 0, 100))).to.include({ payload: 'qQ==', encoding: 'base64' });
  });
  it('keeps each entry\'s bytes apart, across slabs and for large payloads, whatever the source buffer becomes', () => {
    const sources = Array.from({ length: 300 }, (_, i) => Buffer.alloc(i % 7 === 0 ? 3000 : 50, i % 256));
    const ring = new RowRing();
    sources.forEach((source, i) => ring.record(binaryFrame(source), i + 1, 'client', true, 0, 65536, sources.length));
    for (const source of sources) source.fill(0xee);
    const entries = sources.map((_, i) => ring.entry(i + 1)!);
    entries.forEach((entry, i) => {
      expect(entry.kept).to.equal(i % 7 === 0 ? 3000 : 50);
      expect(entry.cost).to.equal(entry.kept + ENTRY_OVERHEAD);
      expect(entry.payload.equals(Buffer.alloc(entry.kept, i % 256))).to.equal(true);
    });
    const empty = makeEntry(textFrame(''), 1, 'client', false, 0, 100);
    expect(empty.payload).to.have.length(0);
  });
});
