/**
 * FrameWritable's direct writes (`writeNow`, `beginBatch`/`endBatch`), the proxy's direct path for a
 * direction no user code reads: the same bytes and checks as `write()`, past the stream's queue when
 * nothing waits in it, behind it otherwise, and a burst gathered into one socket write after its
 * first frame. Over real loopback sockets.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import { type Frame, binaryFrame, closeFrame, pingFrame, textFrame } from '../../src/frame.js';
import { FrameReadable } from '../../src/streams/frame-readable.js';
import { FrameWritable } from '../../src/streams/frame-writable.js';
import { randomFrames, view } from '../helpers/frames.js';
import { SeededRandom } from '../helpers/random.js';
import { type TcpPair, settle, sink, tcpPair, waitFor } from '../helpers/sockets.js';

const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const fixedKey = (key: Buffer): void => {
  KEY.copy(key);
};

/** Frames read at the far end of a pair. */
function readAll(pair: TcpPair, role: 'server' | 'client'): Frame[] {
  const frames: Frame[] = [];
  const reader = new FrameReadable(pair.server, { role, maxFrameSize: 64 * 1024 * 1024 });
  reader.on('data', (frame: Frame) => frames.push({ ...frame, payload: Buffer.from(frame.payload) }));
  reader.on('error', () => undefined);
  return frames;
}

describe('FrameWritable direct writes (writeNow, bursts)', () => {
  const pairs: TcpPair[] = [];
  // A sandbox of its own: the default one's restore() would also undo what other specs faked.
  const sandbox = sinon.createSandbox();
  afterEach(() => {
    sandbox.restore();
    for (const pair of pairs.splice(0)) pair.close();
  });

  for (const role of ['client', 'server'] as const) {
    it(`writes the same bytes as write() (${role} role, random frames)`, async () => {
      const frames = randomFrames(new SeededRandom(7), 40);
      const bytesOf = async (direct: boolean): Promise<Buffer> => {
        const pair = await tcpPair();
        pairs.push(pair);
        const received = sink(pair.server);
        // closeTimeout 0: a client-role writer would wait for the server's FIN after the close frame.
        const writable = new FrameWritable(pair.client, { role, generateMask: fixedKey, closeTimeout: 0 });
        for (const frame of frames) {
          if (direct) writable.writeNow(frame);
          else writable.write(frame);
        }
        writable.end();
        return received.done;
      };
      const [queued, direct] = await Promise.all([bytesOf(false), bytesOf(true)]);
      expect(direct.equals(queued)).to.equal(true);
    });
  }

  it('sends the first frame of a burst at once and gathers the rest into one write at endBatch()', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const frames = readAll(pair, 'client');
    const writable = new FrameWritable(pair.client, { role: 'server' });
    const cork = sandbox.spy(pair.client, 'cork');
    const uncork = sandbox.spy(pair.client, 'uncork');

    writable.beginBatch();
    writable.writeNow(textFrame('alone'));
    writable.endBatch();
    // One frame in flight: no cork at all.
    expect(cork.callCount).to.equal(0);

    writable.beginBatch();
    writable.writeNow(textFrame('first'));
    // Written at once (loopback takes it synchronously).
    expect(pair.client.writableLength).to.equal(0);
    writable.writeNow(textFrame('second'));
    writable.writeNow(binaryFrame(Buffer.alloc(300, 1)));
    expect(cork.callCount).to.equal(1);
    // Held by the cork until the burst ends: 2 + 6 bytes, then 4 + 300.
    expect(pair.client.writableLength).to.equal(312);
    writable.endBatch();
    expect(uncork.callCount).to.equal(1);
    expect(pair.client.writableCorked).to.equal(0);
    expect(pair.client.writableLength).to.equal(0);
    await waitFor(() => frames.length === 4);
    expect(frames.map((f) => f.payload.length)).to.deep.equal([5, 5, 6, 300]);
  });

  it('goes behind frames queued in the stream, in order, and answers false while the socket is full', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    pair.server.pause();
    const writable = new FrameWritable(pair.client, { role: 'server' });
    const big = Buffer.alloc(1024 * 1024, 7);
    // Fill the socket until it refuses more.
    let n = 0;
    while (writable.writeNow(binaryFrame(big))) n++;
    expect(n).to.be.lessThan(64);
    // Queued behind the socket: a write() waits in the stream, and writeNow() waits behind it.
    writable.write(textFrame('queued'));
    expect(writable.writeNow(textFrame('direct'))).to.equal(false);
    expect(writable.writableLength).to.equal(2);
    const drained = new Promise<void>((resolve) => writable.once('drain', resolve));
    const frames = readAll(pair, 'client');
    pair.server.resume();
    await drained;
    await waitFor(() => frames.length === n + 3);
    expect(frames.slice(-2).map((f) => f.payload.toString())).to.deep.equal(['queued', 'direct']);
  });

  it('destroys the stream with the coded error of a frame it would refuse, and writes nothing of it', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const received = sink(pair.server);
    const writable = new FrameWritable(pair.client, { role: 'server' });
    const errors: (Error & { code?: string; closeCode?: number })[] = [];
    writable.on('error', (err) => errors.push(err));
    writable.writeNow(closeFrame(1000));
    // "The application MUST NOT send any more data frames after sending a Close frame" (5.5.1).
    expect(writable.writeNow(textFrame('after close'))).to.equal(false);
    await settle();
    expect(errors.map((e) => [e.code, e.closeCode])).to.deep.equal([['WSP_ERR_WRITE_AFTER_CLOSE', 1011]]);
    expect(writable.destroyed).to.equal(true);
    pair.client.end();
    const bytes = await received.done;
    // Only the close frame: 2 bytes of header, 2 of code.
    expect(bytes.length).to.equal(4);
  });

  it('after end() falls back to write(), which fails as writing after end does', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const writable = new FrameWritable(pair.client, { role: 'server' });
    const errors: Error[] = [];
    writable.on('error', (err) => errors.push(err));
    writable.end();
    writable.writeNow(pingFrame());
    await settle();
    expect(errors).to.have.length(1);
    expect((errors[0] as Error & { code?: string }).code).to.equal('ERR_STREAM_WRITE_AFTER_END');
  });

  it('the frames of a burst keep their order with view() equality through a reader', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const frames = readAll(pair, 'server');
    const writable = new FrameWritable(pair.client, { role: 'client' });
    const sent = randomFrames(new SeededRandom(11), 30).filter((f) => f.type !== 'close');
    writable.beginBatch();
    for (const frame of sent) writable.writeNow(frame);
    writable.endBatch();
    await waitFor(() => frames.length === sent.length);
    expect(frames.map(view)).to.deep.equal(sent.map(view));
  });

  it('masks a large payload in place only when it is handed over (owned), and leaves it as it was otherwise', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const frames = readAll(pair, 'server');
    const writable = new FrameWritable(pair.client, { role: 'client', generateMask: fixedKey });
    const original = Buffer.alloc(32 * 1024, 0x41);
    const kept = Buffer.from(original);
    const owned = Buffer.from(original);
    writable.writeNow(binaryFrame(kept));
    writable.writeNow(binaryFrame(owned), true);
    await waitFor(() => frames.length === 2);
    expect(frames.every((f) => f.payload.equals(original))).to.equal(true);
    expect(kept.equals(original)).to.equal(true);
    // Masked where it lay: byte i XOR key[i % 4].
    expect(owned[0]).to.equal(0x41 ^ KEY[0]!);
    expect(owned[5]).to.equal(0x41 ^ KEY[1]!);
  });
});
