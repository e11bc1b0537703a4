/**
 * Adversarial: a deflate bomb (issue 10 section 2, "Compression"): one compressed message of 64 KiB
 * on the wire that inflates to 64 MiB, from the client and from the upstream. The side's
 * `*MaxFrameSize` must stop the inflation with 1009 long before the message is in memory: the peak
 * of heap and Buffer memory during the attack is asserted (sampled on every turn of the event loop).
 *
 * The proxy inflates only when the bytes must be read: `onFrame` (identity) is set so that a
 * direction whose two hops both compress is not passed through compressed. Raw peers negotiate
 * permessage-deflate by hand (see test/proxy/websocket-proxy.deflate.spec.ts for `ws` peers). See
 * flood.ts for the variants run (ADVERSARIAL_FULL=1: all four).
 */
import zlib from 'node:zlib';
import { expect } from 'chai';
import type { Frame } from '../../src/frame.js';
import type { ProxyOptions, WebSocketProxy } from '../../src/index.js';
import { VARIANTS, mb, report, startFront, startMeter } from '../helpers/flood.js';
import { tick } from '../helpers/sockets.js';
import { releaseAll } from '../proxy/rig.js';

type Options = Omit<ProxyOptions<WebSocketProxy>, 'transforms'>;

const BOMB_SIZE = 64 * 1024 * 1024;
const LIMIT = 1024 * 1024;

/** The largest `heapUsed + arrayBuffers` seen on any turn of the event loop until `stop` is called. */
function peakSampler(): { stop(): number } {
  let peak = 0;
  let running = true;
  const sample = (): void => {
    const usage = process.memoryUsage();
    peak = Math.max(peak, usage.heapUsed + usage.arrayBuffers);
    if (running) setImmediate(sample);
  };
  sample();
  return {
    stop() {
      running = false;
      return peak;
    },
  };
}

describe('adversarial: deflate bombs', function () {
  /** 64 MiB of zeros compressed as one permessage-deflate message (the 00 00 ff ff tail removed). */
  let bomb: Buffer;
  before(() => {
    const flushed = zlib.deflateRawSync(Buffer.alloc(BOMB_SIZE), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    bomb = flushed.subarray(0, flushed.length - 4);
  });
  afterEach(releaseAll);

  for (const variant of VARIANTS) {
    const options: Options = {
      aggregateFragments: variant.aggregateFragments,
      clientMaxFrameSize: LIMIT,
      upstreamMaxFrameSize: LIMIT,
      onFrame: (_proxy, _role, _type, payload) => payload,
    };

    describe(variant.name, () => {
      for (const bomber of ['client', 'upstream'] as const) {
        it(`from the ${bomber}: 1009 to it, 1001 to its peer, and the memory peak stays far below the 64 MiB it inflates to`, async () => {
          // The client always offers permessage-deflate; the upstream accepts it only when it bombs.
          const front = await startFront(variant.front, options, () => (bomber === 'upstream' ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : ''));
          const attacked = await front.connect({ clientHeaders: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
          if (bomber === 'client') expect(String(attacked.response.headers['sec-websocket-extensions'])).to.match(/^permessage-deflate/);
          const [offender, peer] = bomber === 'client' ? [attacked.client, attacked.upstream] : [attacked.upstream, attacked.client];
          const frame: Frame = { type: 'binary', fin: true, payload: bomb, rsv1: true };
          const meter = startMeter();
          const before = process.memoryUsage();
          const sampler = peakSampler();
          offender.send(frame);
          const code = await offender.closeOrEnd();
          const peerCode = await peer.closeOrEnd();
          await tick();
          const peak = sampler.stop() - (before.heapUsed + before.arrayBuffers);
          report(`memory peak over the attack (${mb(bomb.length)} inflating to ${mb(BOMB_SIZE)})`, mb(peak));
          expect(code, `close code the ${bomber} got`).to.equal(1009);
          expect(peerCode, 'close code its peer got').to.equal(1001);
          expect(peer.dataFrames, 'nothing of the message went on').to.equal(0);
          const summary = await attacked.summary;
          expect(summary?.error?.code).to.equal('WSP_ERR_MESSAGE_TOO_LARGE');
          // Unbounded: the whole 64 MiB inflated before the size is checked.
          expect(peak, `memory peak: ${mb(peak)}`).to.be.below(16 * 1024 * 1024);
          const cpu = meter.cpuMs();
          report('CPU time', `${cpu.toFixed(0)} ms`);
          expect(cpu).to.be.below(3000);
          expect(meter.heapGrowth()).to.be.below(4 * 1024 * 1024);
        });
      }
    });
  }
});
