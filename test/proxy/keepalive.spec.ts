import { expect } from 'chai';
import { KEEPALIVE_PREFIX, Keepalive } from '../../src/proxy/keepalive.js';
import type { FrameReadable } from '../../src/streams/frame-readable.js';

/** The counters of a reader that Keepalive reads, set by hand. */
interface ReaderState {
  bytesReceived: number;
  reading: boolean;
  stalls: number;
}

function keepalive(interval = 1000, timeout = 500): { ka: Keepalive; reader: ReaderState } {
  const reader: ReaderState = { bytesReceived: 0, reading: true, stalls: 0 };
  const ka = new Keepalive(interval, timeout, reader as unknown as FrameReadable);
  ka.start(0);
  return { ka, reader };
}

function payload(n: number | string): Buffer {
  return Buffer.concat([KEEPALIVE_PREFIX, Buffer.from(String(n))]);
}

describe('Keepalive', () => {
  it('is due to ping interval after start or the last frame, whichever is later', () => {
    const { ka } = keepalive();
    expect(ka.deadline(0)).to.equal(1000);
    expect(ka.check(999, 0)).to.equal(undefined);
    expect(ka.deadline(600)).to.equal(1600);
    expect(ka.check(1000, 600)).to.equal(undefined);
    expect(ka.check(1600, 600)).to.equal('ping');
  });

  it('ping() numbers its payloads 1, 2, ... after the prefix; no deadline until the ping is written', () => {
    const { ka } = keepalive();
    const first = ka.ping();
    expect(first.type).to.equal('ping');
    expect(first.payload.equals(payload(1))).to.equal(true);
    expect(first.payload.length).to.be.at.most(125);
    expect(ka.deadline(0)).to.equal(Infinity);
    expect(ka.check(10_000, 0)).to.equal(undefined);
    ka.written(1000);
    expect(ka.deadline(0)).to.equal(1500);
    expect(ka.answers(payload(1), 1200)).to.equal(true);
    expect(ka.ping().payload.equals(payload(2))).to.equal(true);
  });

  it('waiting: lost at timeout when nothing came while the side was read', () => {
    const { ka } = keepalive();
    ka.ping();
    ka.written(1000);
    expect(ka.check(1499, 0)).to.equal(undefined);
    expect(ka.check(1500, 0)).to.equal('lost');
  });

  it('waiting: any byte after the ping ends the wait; the next ping counts from when the ping went', () => {
    const { ka, reader } = keepalive();
    reader.bytesReceived = 10;
    ka.ping();
    ka.written(1000);
    reader.bytesReceived = 11;
    expect(ka.check(1500, 0)).to.equal(undefined);
    expect(ka.deadline(0)).to.equal(2000);
    expect(ka.deadline(1800)).to.equal(2800);
  });

  it('waiting: a reader stalled now, or since the ping, starts the wait over instead of losing the side', () => {
    const { ka, reader } = keepalive();
    ka.ping();
    ka.written(1000);
    reader.reading = false;
    expect(ka.check(1500, 0)).to.equal(undefined);
    expect(ka.deadline(0)).to.equal(2000);
    // Reading again, but it stalled in between: once more.
    reader.reading = true;
    reader.stalls = 1;
    expect(ka.check(2000, 0)).to.equal(undefined);
    expect(ka.deadline(0)).to.equal(2500);
    // Read for the whole wait, nothing came.
    expect(ka.check(2500, 0)).to.equal('lost');
  });

  it('answers() takes the proxy\'s own pongs only: the prefix and the number of a ping sent', () => {
    const { ka } = keepalive();
    expect(ka.answers(payload(1), 0)).to.equal(false);
    ka.ping();
    ka.ping();
    expect(ka.answers(payload(1), 0)).to.equal(true);
    expect(ka.answers(payload(2), 0)).to.equal(true);
    for (const other of [payload(3), payload(0), payload('1a'), payload(''), payload('-1'), payload('9'.repeat(16)),
      Buffer.from('1'), Buffer.from(''), Buffer.concat([Buffer.from('x'), payload(1)]), KEEPALIVE_PREFIX.subarray(1)]) {
      expect(ka.answers(other, 0), other.toString()).to.equal(false);
    }
  });

  it('an answer to the last ping ends the wait even before its write was reported; an older one does not', () => {
    const { ka } = keepalive();
    ka.ping();
    ka.written(1000);
    expect(ka.answers(payload(1), 1100)).to.equal(true);
    ka.ping();
    // An older pong, while ping 2 is queued: consumed, the wait for ping 2 still to come.
    expect(ka.answers(payload(1), 2200)).to.equal(true);
    expect(ka.deadline(0)).to.equal(Infinity);
    expect(ka.answers(payload(2), 2300)).to.equal(true);
    expect(ka.deadline(0)).to.equal(3300);
    // The late write report changes nothing.
    ka.written(2400);
    expect(ka.deadline(0)).to.equal(3300);
  });

  it('clamp(): timestamps in the future (a wall clock set back) are taken as now', () => {
    const { ka } = keepalive();
    ka.start(50_000);
    ka.clamp(1000);
    expect(ka.deadline(0)).to.equal(2000);
  });

  it('KEEPALIVE_PREFIX: a fixed tag and 12 hex digits drawn once per process', () => {
    expect(KEEPALIVE_PREFIX.toString('latin1')).to.match(/^wsp-keepalive:[0-9a-f]{12}:$/);
  });
});
