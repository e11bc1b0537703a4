/**
 * Adversarial: peers that do not read, and peers that keep sending after they were failed (issue 10
 * section 2, "Readers and upstreams" and "After a rejection").
 *
 * - A slow reader on either side: while it lasts, memory stays within the high-water marks (the
 *   backpressure reaches the sender's socket); `sendTimeout` then ends it (1001 to its peer,
 *   `WSP_ERR_SEND_TIMEOUT`).
 * - A client failed with 1002 or 1009 that floods on: what the proxy reads after the failure is
 *   bounded in bytes (`MAX_DISCARDED_BYTES`, src/proxy/side.ts) and the connection is cut then, with
 *   the clock stopped (not by the kill timer at 2 x lingeringTimeout).
 *
 * Fake timers (setTimeout, Date) for the deadlines; real I/O on 127.0.0.1. See flood.ts for the
 * variants run (ADVERSARIAL_FULL=1: all four).
 */
import { expect } from 'chai';
import { binaryFrame } from '../../src/frame.js';
import type { ProxyOptions, WebSocketProxy } from '../../src/index.js';
import { MAX_DISCARDED_BYTES } from '../../src/proxy/side.js';
import { type CountingPeer, VARIANTS, flood, mb, report, startFront, startMeter, until } from '../helpers/flood.js';
import { settle } from '../helpers/sockets.js';
import { fakeTimers, releaseAll } from '../proxy/rig.js';

type Options = Omit<ProxyOptions<WebSocketProxy>, 'transforms'>;

/** Waits until `bytesRead()` stops growing over a few settles (the reader stopped reading). */
async function stalled(bytesRead: () => number): Promise<number> {
  let before = -1;
  while (bytesRead() !== before) {
    before = bytesRead();
    await settle(50);
  }
  return before;
}

describe('adversarial: slow readers and floods after a failure', function () {
  afterEach(releaseAll);

  for (const variant of VARIANTS) {
    const options = (extra: Options = {}): Options => ({ aggregateFragments: variant.aggregateFragments, ...extra });

    describe(variant.name, () => {
      for (const slow of ['upstream', 'client'] as const) {
        const sender = slow === 'client' ? 'upstream' : 'client';
        it(`the ${slow} never reads while the ${sender} sends 64 KiB messages as fast as it can: memory within the high-water marks, then sendTimeout: 1001 to the ${sender}`, async () => {
          const front = await startFront(variant.front, options({ sendTimeout: 1000 }));
          const attacked = await front.connect({ [slow]: { neverRead: true } });
          const clock = fakeTimers();
          const meter = startMeter();
          const from: CountingPeer = attacked[sender];
          const message = from.encode(Array.from({ length: 16 }, () => binaryFrame(Buffer.alloc(64 * 1024, 0x62))));
          const sending = flood(from.socket, message, 256 * 1024 * 1024);
          const readSocket = (sender === 'client' ? attacked.proxy.client : attacked.proxy.upstream)!.readable.socket as import('node:net').Socket;
          const read = await stalled(() => readSocket.bytesRead);
          const held = meter.heapGrowth();
          report(`bytes the proxy read from the ${sender} before backpressure stopped it`, mb(read));
          report('heap and buffers growth while stalled', mb(held));
          // Unbounded (no backpressure): all 256 MB read and held.
          expect(read, 'bytes read from the sender').to.be.below(64 * 1024 * 1024);
          expect(held, `growth while stalled: ${mb(held)}`).to.be.below(24 * 1024 * 1024);
          clock.tick(1000);
          expect(await from.closeOrEnd(), `close code the ${sender} got`).to.equal(1001);
          // Its close reply waits behind what it still floods with, which nobody reads any more: the
          // linger deadline (lingeringTimeout) ends the connection.
          clock.tick(5000);
          const summary = await attacked.summary;
          expect(summary?.error?.code).to.equal('WSP_ERR_SEND_TIMEOUT');
          expect(summary?.closedBy).to.equal(slow);
          expect(summary?.[slow].aborted).to.equal(true);
          // The proxy dropped the slow side's connection (which, reading nothing, may never notice).
          const slowSocket = (slow === 'client' ? attacked.proxy.client : attacked.proxy.upstream)!.readable.socket;
          expect(slowSocket.destroyed, `the proxy's socket to the ${slow} is destroyed`).to.equal(true);
          expect(await sending).to.be.below(256 * 1024 * 1024);
          expect(meter.cpuMs()).to.be.below(5000);
        });
      }

      it('a client failed (1002, and 1009) that floods on at full speed: the proxy reads at most MAX_DISCARDED_BYTES (256 KiB) more, then cuts it, with the clock stopped', async () => {
        const front = await startFront(variant.front, options({ clientMaxFrameSize: 64 * 1024 }));
        fakeTimers();
        const meter = startMeter();
        const failures = [
          { code: 1002, bytes: Buffer.from([0xa2, 0x80, 0, 0, 0, 0]) /* RSV2 */ },
          { code: 1009, bytes: Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0]) /* a 2 MiB frame announced */ },
        ];
        await Promise.all(failures.map(async ({ code, bytes }) => {
          // It never answers the proxy's close, and floods on.
          const attacked = await front.connect({ client: { answerClose: false, endAfterClose: false } });
          const mark = attacked.proxyClientSocket.bytesRead;
          // The failing frame, then 64 MB of anything, as fast as the proxy takes it.
          attacked.client.socket.write(bytes);
          const sent = await flood(attacked.client.socket, Buffer.alloc(64 * 1024), 64 * 1024 * 1024);
          expect(await attacked.client.closeOrEnd(), 'close code the client got').to.equal(code);
          expect(await attacked.upstream.closeOrEnd(), 'close code the upstream got').to.equal(1001);
          await until(() => attacked.proxyClientSocket.destroyed);
          const read = attacked.proxyClientSocket.bytesRead - mark;
          report(`bytes read from the client after its ${code} (it sent ${mb(sent)})`, mb(read));
          // Unbounded: read at full speed until the kill timer (2 x lingeringTimeout), which a stopped
          // clock never fires: all 64 MB.
          expect(read, `bytes read after the failure: ${mb(read)}`).to.be.below(MAX_DISCARDED_BYTES + 1024 * 1024);
        }));
        const cpu = meter.cpuMs();
        report('CPU time', `${cpu.toFixed(0)} ms`);
        expect(cpu).to.be.below(3000);
        expect(meter.heapGrowth()).to.be.below(8 * 1024 * 1024);
      });
    });
  }
});
