/**
 * FrameReadable's sink mode (`setSink`), the proxy's direct path for a direction no user code
 * reads: frames go to the sink as they are parsed, never into the stream's queue, the sink's answer
 * is the backpressure, and the stream still ends and fails as a stream. Over real loopback sockets,
 * frames split across writes.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { finished } from 'readable-stream';
import { type Frame, binaryFrame, closeFrame, textFrame } from '../../src/frame.js';
import { FrameReadable, type FrameSink } from '../../src/streams/frame-readable.js';
import { randomFrames, view } from '../helpers/frames.js';
import { SeededRandom } from '../helpers/random.js';
import { type TcpPair, relayedPair, settle, tcpPair, waitFor, wire } from '../helpers/sockets.js';

const KEY = Buffer.from([1, 2, 3, 4]);

/** A sink that records frames and bursts; `accept` decides its answer to each frame. */
class RecordingSink implements FrameSink {
  readonly frames: Frame[] = [];
  /** Frames per burst (one entry per flush() after at least one frame). */
  readonly bursts: number[] = [];
  private inBurst = 0;
  constructor(private readonly accept: (frame: Frame, index: number) => boolean = () => true) {}

  write(frame: Frame): boolean {
    this.frames.push({ ...frame, payload: Buffer.from(frame.payload) });
    this.inBurst++;
    return this.accept(frame, this.frames.length - 1);
  }

  flush(): void {
    if (this.inBurst > 0) this.bursts.push(this.inBurst);
    this.inBurst = 0;
  }
}

/** The stream's end as a promise of its error (undefined when it ended normally). */
function ended(reader: FrameReadable): Promise<Error | undefined> {
  return new Promise((resolve) => finished(reader as unknown as NodeJS.ReadableStream, (err) => resolve(err ?? undefined)));
}

describe('FrameReadable sink mode (setSink)', () => {
  const pairs: TcpPair[] = [];
  afterEach(() => {
    for (const pair of pairs.splice(0)) pair.close();
  });

  for (const seed of [1, 2, 3]) {
    it(`hands every frame to the sink in order, none to the queue, whatever the chunking (seed ${seed})`, async () => {
      const random = new SeededRandom(seed);
      const pair = await relayedPair(random);
      pairs.push(pair);
      const frames = randomFrames(random, 60);
      const reader = new FrameReadable(pair.server, { role: 'server' });
      const sink = new RecordingSink();
      reader.setSink(sink);
      const end = ended(reader);
      reader.resume();
      let queued = 0;
      reader.on('data', () => queued++);
      pair.client.write(wire(frames, KEY));
      expect(await end).to.equal(undefined);
      expect(sink.frames.map(view)).to.deep.equal(frames.map(view));
      expect(queued).to.equal(0);
      expect(reader.readableLength).to.equal(0);
      expect(reader.closeReceived).to.equal(true);
      // Every frame was in a burst closed by flush().
      expect(sink.bursts.reduce((a, b) => a + b, 0)).to.equal(frames.length);
    });
  }

  it('gives the frames of one chunk as one burst, flushed once', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const reader = new FrameReadable(pair.server, { role: 'server' });
    const sink = new RecordingSink();
    reader.setSink(sink);
    reader.resume();
    pair.client.write(wire([textFrame('a'), textFrame('b'), binaryFrame(Buffer.from([1, 2])), textFrame('c')], KEY));
    await waitFor(() => sink.frames.length === 4);
    await settle();
    expect(sink.bursts).to.deep.equal([4]);
  });

  it('stops at a false answer (the socket is paused, nothing more parsed) and goes on at resumeSink()', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const reader = new FrameReadable(pair.server, { role: 'server' });
    // Refuses at the third frame.
    const sink = new RecordingSink((_frame, index) => index !== 2);
    reader.setSink(sink);
    reader.resume();
    const frames = Array.from({ length: 10 }, (_, i) => textFrame(`frame ${i}`));
    pair.client.write(wire(frames, KEY));
    await waitFor(() => sink.frames.length === 3);
    await settle();
    expect(sink.frames).to.have.length(3);
    expect(reader.reading).to.equal(false);
    expect(reader.stalls).to.equal(1);
    expect(pair.server.isPaused()).to.equal(true);
    // More bytes meanwhile are not parsed either.
    pair.client.write(wire([textFrame('later')], KEY));
    await settle();
    expect(sink.frames).to.have.length(3);
    reader.resumeSink();
    await waitFor(() => sink.frames.length === 11);
    expect(sink.frames.map((f) => f.payload.toString())).to.deep.equal([...frames.map((f) => f.payload.toString()), 'later']);
    expect(reader.reading).to.equal(true);
  });

  it('ends as a stream after a close frame (finished() reports it), and hands nothing after it', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const reader = new FrameReadable(pair.server, { role: 'server' });
    const sink = new RecordingSink();
    reader.setSink(sink);
    const end = ended(reader);
    reader.resume();
    pair.client.write(wire([textFrame('last'), closeFrame(1000, 'bye'), textFrame('after the close')], KEY));
    expect(await end).to.equal(undefined);
    expect(sink.frames.map((f) => f.type)).to.deep.equal(['text', 'close']);
    expect(reader.readableEnded).to.equal(true);
  });

  it('with endOnViolation, hands the frames before a violation, then ends and keeps the violation', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const reader = new FrameReadable(pair.server, { role: 'server', endOnViolation: true });
    const sink = new RecordingSink();
    reader.setSink(sink);
    const end = ended(reader);
    const violation = once(reader, 'violation');
    reader.resume();
    // A valid frame, then an unmasked one: a client's frames MUST be masked (section 5.1).
    pair.client.write(Buffer.concat([wire([textFrame('valid')], KEY), wire([textFrame('unmasked')])]));
    const [err] = await violation as [Error & { code: string; closeCode: number }];
    expect(err.code).to.equal('WSP_ERR_MASK_REQUIRED');
    expect(err.closeCode).to.equal(1002);
    expect(await end).to.equal(undefined);
    expect(sink.frames.map((f) => f.payload.toString())).to.deep.equal(['valid']);
    expect(reader.violation).to.equal(err);
  });

  it('fails as a stream when its socket fails', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const reader = new FrameReadable(pair.server, { role: 'server' });
    reader.on('error', () => undefined);
    reader.setSink(new RecordingSink());
    const end = ended(reader);
    reader.resume();
    pair.server.destroy(new Error('boom'));
    expect((await end)?.message).to.equal('boom');
  });
});
