/**
 * Adversarial: control frames (issue 10 section 2, "Control frames"): a ping flood (pongs are relayed,
 * never amplified; what waits for a peer that does not read is bounded, and `sendTimeout` ends it),
 * control frames over 125 bytes, RSV bits without an extension, and the bound on control frames held
 * behind a frame written in pieces.
 *
 * Through a bare `WebSocketProxy` and `createProxyServer`, aggregating and per frame, against raw
 * peers that count and keep nothing.
 *
 * By default each case runs in two variants (a bare proxy per frame, a server aggregating);
 * ADVERSARIAL_FULL=1 runs all four, ADVERSARIAL_VERBOSE=1 prints the figures measured.
 */
import { expect } from 'chai';
import { WebSocketProxyError } from '../../src/errors.js';
import { closeFrame, pingFrame } from '../../src/frame.js';
import type { ProxyOptions, WebSocketProxy } from '../../src/index.js';
import { MAX_HELD_CONTROLS } from '../../src/proxy/forwarder.js';
import { type Attacked, VARIANTS, flood, mb, report, startFront, startMeter, until } from '../helpers/flood.js';
import { settle } from '../helpers/sockets.js';
import { fakeTimers, releaseAll } from '../proxy/rig.js';

type Options = Omit<ProxyOptions<WebSocketProxy>, 'transforms'>;

/** One frame with exactly the first byte `b0` and `payload`, masked with a zero key when `masked`. */
function rawFrame(b0: number, payload: Buffer, masked: boolean): Buffer {
  const n = payload.length;
  const mask = masked ? 0x80 : 0;
  const head = n < 126 ? Buffer.from([b0, mask | n]) : Buffer.from([b0, mask | 126, n >> 8, n & 0xff]);
  // A zero masking key leaves the payload as it is.
  return Buffer.concat([head, masked ? Buffer.alloc(4) : Buffer.alloc(0), payload]);
}

/** Waits until the proxy stops reading the client: its socket read nothing new over a few settles. */
async function readingStopped(attacked: Attacked): Promise<void> {
  let before = -1;
  while (attacked.proxyClientSocket.bytesRead !== before) {
    before = attacked.proxyClientSocket.bytesRead;
    await settle(50);
  }
}

describe('adversarial: control frames', function () {
  afterEach(releaseAll);

  for (const variant of VARIANTS) {
    const options = (extra: Options = {}): Options => ({ aggregateFragments: variant.aggregateFragments, ...extra });

    describe(variant.name, () => {
      for (const answering of [true, false]) {
        it(`a flood of 5k pings is relayed to the upstream, never answered by the proxy: the client gets ${answering ? 'one pong per ping the upstream answered' : 'no pong from an upstream that answers none'}`, async () => {
          const front = await startFront(variant.front, options());
          const attacked = await front.connect({ upstream: { answerPings: answering } });
          const meter = startMeter();
          const pings = attacked.client.encode(Array.from({ length: 5000 }, () => pingFrame('ping')));
          await flood(attacked.client.socket, pings, pings.length);
          attacked.client.send(closeFrame(1000));
          // The close comes after every pong the upstream sent before it.
          expect(await attacked.client.closeOrEnd()).to.equal(1000);
          expect(attacked.upstream.counts.ping).to.equal(5000);
          expect(attacked.client.counts.pong, 'pongs the client got').to.equal(answering ? 5000 : 0);
          expect(attacked.upstream.counts.pong, 'the proxy sends the upstream no pong of its own').to.equal(0);
          const held = meter.heapGrowth();
          const cpu = meter.cpuMs();
          report('heap growth', mb(held));
          report('CPU time', `${cpu.toFixed(0)} ms`);
          expect(held).to.be.below(4 * 1024 * 1024);
          expect(cpu).to.be.below(5000);
        });
      }

      it('a ping flood from a client that never reads its pongs: memory stays within the high-water marks (backpressure reaches the flooder), then sendTimeout cuts it off; the upstream is sent 1001', async () => {
        const front = await startFront(variant.front, options({ sendTimeout: 1000 }));
        const attacked = await front.connect({ client: { neverRead: true }, upstream: { answerPings: true } });
        const clock = fakeTimers();
        const meter = startMeter();
        // 125-byte pings, as fast as the client's socket takes them, up to 64 MB (never reached).
        const pings = attacked.client.encode(Array.from({ length: 1000 }, () => pingFrame(Buffer.alloc(125, 0x70))));
        const sending = flood(attacked.client.socket, pings, 64 * 1024 * 1024);
        await readingStopped(attacked);
        const held = meter.heapGrowth();
        const read = attacked.proxyClientSocket.bytesRead;
        report('heap growth while stalled', mb(held));
        report('bytes the proxy read from the flooder before backpressure stopped it', mb(read));
        // Unbounded (pongs queued for a client that never reads): 131 B per ping, as many as it sends.
        expect(held, `heap growth while stalled: ${mb(held)}`).to.be.below(16 * 1024 * 1024);
        expect(read).to.be.below(32 * 1024 * 1024);
        clock.tick(1000);
        await settle(50);
        // The client is given up on (it reads nothing: no close frame can reach it) and the upstream
        // is sent 1001. That upstream stopped reading while its pongs wait (the proxy no longer reads
        // them), so it reads its 1001 only if it reads on: the linger deadline cuts both then.
        clock.tick(5000);
        const summary = await attacked.summary;
        expect(summary?.error?.code).to.equal('WSP_ERR_SEND_TIMEOUT');
        expect(summary?.closedBy).to.equal('client');
        expect(summary?.client.aborted).to.equal(true);
        expect(summary?.upstream.closeSent?.code, 'close code sent to the upstream').to.equal(1001);
        await until(() => attacked.client.isClosed && attacked.upstream.isClosed);
        expect(await sending).to.be.below(64 * 1024 * 1024);
        // The proxy answered none of the pings itself.
        expect(attacked.upstream.counts.pong).to.equal(0);
        expect(meter.cpuMs()).to.be.below(5000);
      });

      const violations = [
        { name: 'a 126-byte ping from the client', from: 'client', bytes: rawFrame(0x89, Buffer.alloc(126), true), code: 'WSP_ERR_CONTROL_TOO_LONG' },
        { name: 'a 126-byte pong from the upstream', from: 'upstream', bytes: rawFrame(0x8a, Buffer.alloc(126), false), code: 'WSP_ERR_CONTROL_TOO_LONG' },
        { name: 'RSV1 on a text frame from the client (no extension)', from: 'client', bytes: rawFrame(0xc1, Buffer.from('hi'), true), code: 'WSP_ERR_UNEXPECTED_RSV' },
        { name: 'RSV2 on a binary frame from the upstream', from: 'upstream', bytes: rawFrame(0xa2, Buffer.from('hi'), false), code: 'WSP_ERR_UNEXPECTED_RSV' },
        { name: 'RSV3 on a ping from the client', from: 'client', bytes: rawFrame(0x99, Buffer.alloc(0), true), code: 'WSP_ERR_UNEXPECTED_RSV' },
      ] as const;
      it('control frames over 125 bytes and RSV bits without an extension, from either side: 1002 to the offender, 1001 to its peer, nothing of the frame forwarded', async () => {
        const front = await startFront(variant.front, options());
        const meter = startMeter();
        await Promise.all(violations.map(async (violation) => {
          const attacked = await front.connect();
          const [offender, peer] = violation.from === 'client' ? [attacked.client, attacked.upstream] : [attacked.upstream, attacked.client];
          offender.socket.write(violation.bytes);
          expect(await offender.closeOrEnd(), `${violation.name}: close code the ${violation.from} got`).to.equal(1002);
          expect(await peer.closeOrEnd(), `${violation.name}: close code its peer got`).to.equal(1001);
          expect(peer.dataFrames + peer.counts.ping! + peer.counts.pong!).to.equal(0);
          const summary = await attacked.summary;
          expect(summary?.error?.code, violation.name).to.equal(violation.code);
        }));
        expect(meter.heapGrowth()).to.be.below(4 * 1024 * 1024);
        expect(meter.cpuMs()).to.be.below(2000);
      });
    });
  }

  for (const front of ['bare', 'server'] as const) {
    it(`${front}: control frames injected behind a frame written in pieces are bounded (MAX_HELD_CONTROLS, then WSP_ERR_SEND_QUEUE_FULL), and all go after its last piece`, async () => {
      const proxyFront = await startFront(front, {});
      const attacked = await proxyFront.connect();
      // A 1 MiB frame from the upstream, cut through to the client: its header and 64 KiB, then a stall.
      const header = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 0]);
      attacked.upstream.socket.write(Buffer.concat([header, Buffer.alloc(64 * 1024, 1)]));
      await until(() => attacked.proxyClientSocket.bytesWritten > 64 * 1024);
      await settle(50);
      const results: (boolean | string)[] = [];
      for (let i = 0; i <= MAX_HELD_CONTROLS; i++) {
        try {
          results.push(attacked.proxy.send('client', pingFrame(String(i))));
        } catch (err) {
          results.push((err as WebSocketProxyError).code);
        }
      }
      expect(results.slice(0, MAX_HELD_CONTROLS).every((r) => r === false), String(results)).to.equal(true);
      expect(results[MAX_HELD_CONTROLS]).to.equal('WSP_ERR_SEND_QUEUE_FULL');
      expect(attacked.client.counts.ping).to.equal(0);
      attacked.upstream.socket.write(Buffer.alloc(1024 * 1024 - 64 * 1024, 1));
      await until(() => attacked.client.counts.ping === MAX_HELD_CONTROLS);
      expect(attacked.client.counts.binary).to.equal(1);
      expect(attacked.client.bytes).to.equal(1024 * 1024 + [...Array(MAX_HELD_CONTROLS).keys()].join('').length);
      expect(new WebSocketProxyError('WSP_ERR_SEND_QUEUE_FULL').closeCode).to.equal(1011);
    });
  }
});
