/**
 * The direct path (src/proxy/link.ts): a direction with no aggregation, no onFrame and no stage goes
 * from the source's reader to the destination's outbox without stream stages. Through a real proxy
 * on loopback: order and bytes with frames split across writes, backpressure and its release, the
 * source ending or the destination failing while a frame waits, and the choice of the path.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { type Frame, binaryFrame, closeFrame, textFrame } from '../../src/frame.js';
import { encodeFrame } from '../../src/protocol/encode.js';
import { type FrameObserver, kObserver } from '../../src/proxy/options.js';
import type { WebSocketProxy } from '../../src/proxy/websocket-proxy.js';
import { randomFrames, view } from '../helpers/frames.js';
import { until } from '../helpers/proxy-peers.js';
import { SeededRandom } from '../helpers/random.js';
import { rawRig, releaseAll } from './rig.js';

/** A peer's frames as one wire buffer, masked per frame for a client. */
function wireOf(frames: readonly Frame[], masked: boolean): Buffer {
  return Buffer.concat(frames.flatMap((frame) => encodeFrame(frame, masked ? randomBytes(4) : undefined)));
}

/** Writes `bytes` in random pieces, one per turn of the event loop. */
async function writeInPieces(socket: { write(b: Buffer): boolean }, bytes: Buffer, random: SeededRandom): Promise<void> {
  for (const piece of random.split(bytes, 40)) {
    socket.write(piece);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Whether the proxy relays `role`'s frames on the direct path: nothing reads its reader's queue. */
function direct(proxy: WebSocketProxy, role: 'client' | 'upstream'): boolean {
  const side = role === 'client' ? proxy.client : proxy.upstream;
  return side!.readable.listenerCount('data') === 0;
}

/** Resolves once the proxy stopped reading the client because the upstream was full. */
function clientStalled(proxy: WebSocketProxy): Promise<void> {
  return until(() => proxy.client!.readable.stalls > 0);
}

/** A raw client and upstream through a proxy, the upstream's socket paused (it reads nothing). */
async function stalledUpstreamRig() {
  const rig = await rawRig();
  const client = await rig.rawClient();
  const upstream = await rig.upstream();
  const outcome = await rig.proxy.nextOutcome();
  upstream.socket.pause();
  return { client, upstream, outcome };
}

describe('WebSocketProxy direct path (no user code on a direction)', () => {
  afterEach(releaseAll);

  for (const seed of [21, 22]) {
    it(`relays both ways in order, byte for byte, frames split across writes (seed ${seed})`, async function () {
      this.timeout(20_000);
      const random = new SeededRandom(seed);
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const up = randomFrames(random, 80).filter((f) => f.type !== 'close');
      const down = randomFrames(random, 80).filter((f) => f.type !== 'close');
      await Promise.all([
        writeInPieces(client.socket, wireOf(up, true), random),
        writeInPieces(upstream.socket, wireOf(down, false), random),
      ]);
      await upstream.waitFrames(up.length);
      await client.waitFrames(down.length);
      expect(upstream.frames.map(view)).to.deep.equal(up.map(view));
      expect(client.frames.map(view)).to.deep.equal(down.map(view));
      expect(direct(outcome.proxy, 'client')).to.equal(true);
      expect(direct(outcome.proxy, 'upstream')).to.equal(true);
      client.send(closeFrame(1000));
      await upstream.waitClose();
      upstream.send(closeFrame(1000));
      // The server closes TCP first (section 7.1.1).
      upstream.socket.end();
      const { summary } = await outcome.done;
      expect(summary!.client.frames).to.equal(up.length + 1);
      expect(summary!.upstream.frames).to.equal(down.length + 1);
    });
  }

  it('is used only where no user code reads: aggregation or onFrame keep the stream stages', async () => {
    for (const options of [{ aggregateFragments: true }, { onFrame: () => undefined }]) {
      const rig = await rawRig(options);
      const client = await rig.rawClient();
      await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.send(textFrame('x'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(direct(outcome.proxy, 'client')).to.equal(false);
      expect(direct(outcome.proxy, 'upstream')).to.equal(false);
      await releaseAll();
    }
  });

  it('stops reading the source while the destination is full, then relays everything in order', async function () {
    this.timeout(20_000);
    const { client, upstream, outcome } = await stalledUpstreamRig();
    const frames = Array.from({ length: 40 }, (_, i) => binaryFrame(Buffer.alloc(256 * 1024, i)));
    client.socket.write(wireOf(frames, true));
    // The reader stalled: the direct path answered false, and the client's socket is not read.
    await clientStalled(outcome.proxy);
    upstream.socket.resume();
    await upstream.waitFrames(frames.length);
    expect(upstream.frames.map((f) => [f.payload.length, f.payload[0]])).to.deep.equal(frames.map((f) => [f.payload.length, f.payload[0]]));
  });

  it('a source that closes while its last frames wait for the destination: they go first, then its close', async function () {
    this.timeout(20_000);
    const { client, upstream, outcome } = await stalledUpstreamRig();
    const frames = Array.from({ length: 24 }, (_, i) => binaryFrame(Buffer.alloc(512 * 1024, i)));
    client.socket.write(wireOf([...frames, closeFrame(4000, 'done')], true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    upstream.socket.resume();
    const close = await upstream.waitClose();
    expect(close.code).to.equal(4000);
    expect(upstream.frames.filter((f) => f.type === 'binary')).to.have.length(frames.length);
    expect(upstream.frames.at(-1)!.type).to.equal('close');
    upstream.send(closeFrame(4000, 'done'));
    upstream.socket.end();
    const { summary } = await outcome.done;
    expect(summary!.client.closeReceived?.code).to.equal(4000);
    expect(summary!.client.aborted).to.equal(false);
  });

  it('a destination lost while a frame waits for it: the source gets 1001 and execute() settles', async function () {
    this.timeout(20_000);
    const rig = await rawRig({ lingeringTimeout: 200 });
    const client = await rig.rawClient();
    const upstream = await rig.upstream();
    const outcome = await rig.proxy.nextOutcome();
    upstream.socket.pause();
    client.socket.write(wireOf(Array.from({ length: 40 }, () => binaryFrame(Buffer.alloc(256 * 1024, 1))), true));
    await clientStalled(outcome.proxy);
    upstream.destroy();
    const close = await client.waitClose();
    expect(close.code).to.equal(1001);
    const { summary } = await outcome.done;
    expect(summary!.upstream.aborted).to.equal(true);
    expect(summary!.error?.code).to.equal('WSP_ERR_CONNECTION_LOST');
  });

  describe('with an observer (the inspector\'s hook)', () => {
    /** Proxy options with an observer on the client's direction. */
    function observed(observe: FrameObserver['observe']): Record<symbol, unknown> {
      return { [kObserver]: (context: { role: string }) => (context.role === 'client' ? { observe } : undefined) };
    }

    it('stays on the direct path and sees large frames whole (no cut-through pieces)', async () => {
      const seen: { length: number; partial: boolean }[] = [];
      const rig = await rawRig(observed((frame) => {
        seen.push({ length: frame.payload.length, partial: frame.partial !== undefined });
        return undefined;
      }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const payload = randomBytes(200 * 1024);
      const bytes = wireOf([binaryFrame(payload)], true);
      // In two writes, apart: unobserved, the first part would be relayed as a piece.
      client.socket.write(bytes.subarray(0, 100 * 1024));
      await new Promise((resolve) => setTimeout(resolve, 30));
      client.socket.write(bytes.subarray(100 * 1024));
      const [frame] = await upstream.waitFrames(1);
      expect(frame!.payload.equals(payload)).to.equal(true);
      expect(seen).to.deep.equal([{ length: payload.length, partial: false }]);
      expect(direct(outcome.proxy, 'client')).to.equal(true);
    });

    it('a held frame goes on when released, edited, before the frames and the close that came after it', async () => {
      let release: (() => void) | undefined;
      const rig = await rawRig(observed((frame) => {
        if (frame.type !== 'text' || frame.payload.toString() !== 'held') return undefined;
        return new Promise<Frame | null>((resolve) => {
          release = () => resolve(textFrame('edited'));
        });
      }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.send(textFrame('before'), textFrame('held'), textFrame('after'), closeFrame(1000));
      await upstream.waitFrames(1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(upstream.frames.map((f) => f.payload.toString())).to.deep.equal(['before']);
      release!();
      await upstream.waitClose();
      expect(upstream.frames.map((f) => (f.type === 'close' ? f.code : f.payload.toString()))).to.deep.equal(['before', 'edited', 'after', 1000]);
      upstream.send(closeFrame(1000));
      upstream.socket.end();
      const { summary } = await outcome.done;
      expect(summary!.client.closeReceived?.code).to.equal(1000);
    });

    it('a dropped frame goes nowhere; an observer that throws is detached and the frames go on', async () => {
      let calls = 0;
      const rig = await rawRig(observed((frame) => {
        calls++;
        if (frame.payload.toString() === 'drop') return Promise.resolve(null);
        if (frame.payload.toString() === 'throw') throw new Error('observer bug');
        return undefined;
      }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      client.send(textFrame('one'), textFrame('drop'), textFrame('throw'), textFrame('two'));
      await upstream.waitFrames(3);
      expect(upstream.frames.map((f) => f.payload.toString())).to.deep.equal(['one', 'throw', 'two']);
      // Detached at the throw: it saw 'one', 'drop' and 'throw', not 'two'.
      expect(calls).to.equal(3);
    });
  });
});
