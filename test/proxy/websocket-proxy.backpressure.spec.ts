import { expect } from 'chai';
import type net from 'node:net';
import type { WebSocket } from 'ws';
import { encodeFrame } from '../../src/index.js';
import { FrameParser } from '../../src/protocol/parser.js';
import { startProxy } from '../helpers/proxy-harness.js';
import { portOf, until } from '../helpers/proxy-peers.js';
import { rawUpgradeClient, rawUpgradeServer } from '../helpers/sockets.js';
import { onCleanup, releaseAll, wsRig } from './rig.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Captured at load time: fake timers elsewhere must not stop the polls. */
const realSetTimeout = globalThis.setTimeout;
/**
 * A raw client through `proxy` and the raw upstream it reaches on `server`, both destroyed after the
 * test; with `pauseUpstream`, the upstream's socket reads nothing from the start.
 */
async function rawPair(
  proxy: Awaited<ReturnType<typeof startProxy>>,
  server: Awaited<ReturnType<typeof rawUpgradeServer>>,
  pauseUpstream: boolean,
) {
  const { socket: client } = await rawUpgradeClient(portOf(proxy.url));
  onCleanup(() => client.destroy());
  client.on('error', () => undefined);
  const { socket: upstream } = await server.accept();
  onCleanup(() => upstream.destroy());
  if (pauseUpstream) upstream.pause();
  const outcome = await proxy.nextOutcome();
  return { client, upstream, outcome };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** Bytes a socket's kernel buffer took (written minus still queued in Node). */
function accepted(socket: net.Socket): number {
  return socket.bytesWritten - socket.writableLength;
}

/** Polls `value` every `interval` ms until it stops changing for `still` polls; resolves with it. */
async function stalled(value: () => number, interval = 50, still = 4): Promise<number> {
  let last = value();
  let unchanged = 0;
  while (unchanged < still) {
    await sleep(interval);
    const now = value();
    unchanged = now === last ? unchanged + 1 : 0;
    last = now;
  }
  return last;
}

describe('WebSocketProxy backpressure', () => {
  afterEach(releaseAll);

  it('a client pushing up to 1 GB at an upstream that does not read is stalled, with the proxy\'s memory bounded', async function () {
    this.timeout(20000);
    const server = await rawUpgradeServer();
    onCleanup(() => server.close());
    const proxy = await startProxy({ upstream: `ws://127.0.0.1:${server.port}/`, proxyOptions: { lingeringTime: 1000, lingeringTimeout: 300 } });
    onCleanup(() => proxy.close());
    const { client, upstream, outcome } = await rawPair(proxy, server, true);

    // One masked 1 MiB binary frame (exactly clientMaxFrameSize), written again and again.
    const frame = Buffer.concat(encodeFrame({ type: 'binary', fin: true, rsv1: false, payload: Buffer.alloc(MiB, 0x5a) }, Buffer.from([9, 8, 7, 6])));
    let queued = 0;
    let stop = false;
    const push = (): void => {
      while (!stop && queued < GiB) {
        queued += frame.length;
        if (!client.write(frame)) return;
      }
    };
    client.on('drain', push);
    global.gc?.();
    const before = process.memoryUsage();
    push();

    // (a) The client's writes stall far below 1 GB while the upstream reads nothing.
    const atStall = await stalled(() => accepted(client));
    const during = process.memoryUsage();
    expect(atStall, 'bytes the proxy side accepted before stalling').to.be.below(256 * MiB);
    expect(queued).to.be.below(GiB);
    // The proxy stopped reading the client: its socket is paused.
    const side = outcome.proxy.client!;
    expect((side.readable.socket as net.Socket).isPaused()).to.equal(true);
    // (b) Memory stayed bounded during the stall.
    expect(during.rss - before.rss, 'rss growth').to.be.below(200 * MiB);
    expect(during.arrayBuffers - before.arrayBuffers, 'arrayBuffers growth').to.be.below(200 * MiB);

    // The upstream reads a bounded amount: the client's writes move again, then stall again.
    let read = 0;
    const reading = (chunk: Buffer): void => {
      read += chunk.length;
      if (read >= 64 * MiB) upstream.pause();
    };
    upstream.on('data', reading);
    upstream.resume();
    await until(() => read >= 64 * MiB);
    const atSecondStall = await stalled(() => accepted(client));
    expect(atSecondStall).to.be.above(atStall + 32 * MiB);
    expect(queued).to.be.below(GiB);
    const after = process.memoryUsage();
    expect(after.rss - before.rss, 'rss growth').to.be.below(200 * MiB);

    // Done: the client goes away; the upstream is sent 1001 (once it reads again) and both end.
    stop = true;
    client.destroy();
    upstream.off('data', reading);
    const tail: Buffer[] = [];
    let tailLength = 0;
    upstream.on('data', (chunk: Buffer) => {
      tail.push(chunk.subarray(-16));
      tailLength += chunk.length;
    });
    upstream.resume();
    const { summary } = await outcome.done;
    expect(summary?.client.aborted).to.equal(true);
    await until(() => upstream.destroyed || upstream.readableEnded);
    expect(tailLength).to.be.above(0);
    if (summary?.upstream.closeSent === undefined) {
      // Cut-through: the client vanished inside a 1 MiB frame the proxy had begun to relay. No frame,
      // not even a close, can follow those bytes: the upstream's connection is dropped instead
      // (docs/architecture.md, "Partial frames and cut-through"): it ended above without a close.
      expect(summary?.upstream.closeReceived).to.equal(undefined);
      return;
    }
    expect(summary.upstream.closeSent).to.deep.equal({ code: 1001, reason: '' });
    // The last bytes the upstream got end with the masked close frame 1001 (0x88 0x82 key code).
    const last = Buffer.concat(tail).subarray(-8);
    expect(last[0]).to.equal(0x88);
    expect(last[1]).to.equal(0x82);
  });

  it('the whole 1 GB reaches an upstream that reads in bursts, the proxy\'s memory bounded throughout', async function () {
    this.timeout(30000);
    const server = await rawUpgradeServer();
    onCleanup(() => server.close());
    const proxy = await startProxy({ upstream: `ws://127.0.0.1:${server.port}/`, proxyOptions: { lingeringTime: 1000, lingeringTimeout: 300 } });
    onCleanup(() => proxy.close());
    const { client, upstream, outcome } = await rawPair(proxy, server, false);
    const payload = Buffer.alloc(MiB, 0x5a);
    const frame = Buffer.concat(encodeFrame({ type: 'binary', fin: true, rsv1: false, payload }, Buffer.from([1, 2, 3, 4])));
    const frames = GiB / MiB;
    let written = 0;
    const push = (): void => {
      while (written < frames) {
        written++;
        if (!client.write(frame)) return;
      }
    };
    client.on('drain', push);
    global.gc?.();
    const before = process.memoryUsage();
    let maxGrowth = 0;
    let maxArrayBuffers = 0;
    const sample = (): void => {
      const now = process.memoryUsage();
      maxGrowth = Math.max(maxGrowth, now.rss - before.rss);
      maxArrayBuffers = Math.max(maxArrayBuffers, now.arrayBuffers - before.arrayBuffers);
    };
    // The upstream reads 64 MiB, then stops for 10 ms, and so on: slower than the client pushes.
    // Each frame to the upstream: a 14-byte header (64-bit length, masking key) and the payload.
    const wire = frames * (MiB + 14);
    let read = 0;
    let burst = 0;
    upstream.on('data', (chunk: Buffer) => {
      read += chunk.length;
      burst += chunk.length;
      if (burst >= 64 * MiB && read < wire) {
        burst = 0;
        upstream.pause();
        sample();
        realSetTimeout(() => upstream.resume(), 10);
      }
    });
    push();
    await until(() => read >= wire);
    sample();
    expect(written).to.equal(frames);
    expect(read).to.equal(wire);
    expect(maxGrowth, 'largest rss growth').to.be.below(200 * MiB);
    expect(maxArrayBuffers, 'largest arrayBuffers growth').to.be.below(200 * MiB);
    client.end(Buffer.concat(encodeFrame({ type: 'close', fin: true, rsv1: false, payload: Buffer.alloc(0), code: 1000 }, Buffer.from([1, 2, 3, 4]))));
    client.resume();
    const { summary } = await outcome.done;
    expect(summary?.client.frames).to.equal(frames + 1);
    expect(summary?.client.bytes).to.equal(GiB);
  });

  it('aggregateFragments and onFrame: 1 MiB frames masked toward an upstream that does not read wait in at most 4 pieces, then arrive intact, the kept payloads untouched', async function () {
    this.timeout(20000);
    const server = await rawUpgradeServer();
    onCleanup(() => server.close());
    const kept: Buffer[] = [];
    const proxy = await startProxy({
      upstream: `ws://127.0.0.1:${server.port}/`,
      proxyOptions: {
        aggregateFragments: true,
        lingeringTime: 1000,
        lingeringTimeout: 300,
        onFrame: (_proxy, role, type, payload) => {
          if (role === 'client' && type === 'binary' && kept.length < 4) kept.push(payload);
          return payload;
        },
      },
    });
    onCleanup(() => proxy.close());
    const { client, upstream, outcome } = await rawPair(proxy, server, true);

    // Distinct 1 MiB payloads (each starts with its index), masked as a client sends them.
    const payloadOf = (i: number): Buffer => {
      const payload = Buffer.alloc(MiB, i & 0xff);
      payload.writeUInt32BE(i, 0);
      return payload;
    };
    let sent = 0;
    const push = (): void => {
      while (sent < 256) {
        const frame = Buffer.concat(encodeFrame({ type: 'binary', fin: true, rsv1: false, payload: payloadOf(sent) }, Buffer.from([9, 8, 7, 6])));
        sent++;
        if (!client.write(frame)) return;
      }
    };
    client.on('drain', push);
    push();
    await stalled(() => accepted(client));
    expect(sent).to.be.below(256);
    // What waits for the upstream in the proxy is a few scratch pieces, not masked copies of frames.
    const toUpstream = outcome.proxy.upstream!.writable.socket as net.Socket;
    expect(toUpstream.writableLength).to.be.at.most(4 * 64 * 1024);

    // The upstream reads everything: every frame arrives whole and intact, in order.
    const parser = new FrameParser({ role: 'server', maxFrameSize: 2 * MiB, maxBufferedBytes: 3 * MiB, validateUtf8: false, allowRsv1: false });
    let received = 0;
    let bad = 0;
    upstream.on('data', (chunk: Buffer) => {
      parser.push(chunk);
      for (let frame = parser.next(); frame !== null; frame = parser.next()) {
        if (frame.type !== 'binary') continue;
        if (!frame.payload.equals(payloadOf(received))) bad++;
        received++;
      }
    });
    upstream.resume();
    await until(() => received === sent);
    expect(bad).to.equal(0);
    expect(kept).to.have.length(4);
    expect(kept.map((payload, i) => payload.equals(payloadOf(i)))).to.deep.equal([true, true, true, true]);
    client.destroy();
    await outcome.done;
  });

  it('a client that does not read slows the upstream down: the proxy pauses the upstream socket', async () => {
    const chunk = Buffer.alloc(MiB, 0x41);
    let upstreamWs: WebSocket | undefined;
    const rig = await wsRig((ws) => {
      upstreamWs = ws;
    }, { lingeringTime: 1000, lingeringTimeout: 300 });
    const { socket: client } = await rawUpgradeClient(portOf(rig.proxy.url));
    onCleanup(() => client.destroy());
    client.on('error', () => undefined);
    client.pause();
    const outcome = await rig.proxy.nextOutcome();
    await until(() => upstreamWs !== undefined);
    const ws = upstreamWs!;
    // The upstream sends 64 MiB; the client reads none of it.
    for (let i = 0; i < 64; i++) ws.send(chunk);
    await stalled(() => ws.bufferedAmount);
    expect(ws.bufferedAmount, 'bytes left in the upstream').to.be.above(16 * MiB);
    const side = outcome.proxy.upstream!;
    expect((side.readable.socket as net.Socket).isPaused()).to.equal(true);
    client.destroy();
    ws.terminate();
    await outcome.done;
  });
});
