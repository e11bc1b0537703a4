/**
 * Adversarial: floods of tiny and empty fragments (issue 10 section 2, "Fragments"; ws#2331,
 * CVE-2026-48779: 131k one-byte fragments, 0.87 MB on the wire, pinned 13.5 MB in ws).
 *
 * Each case runs through a bare `WebSocketProxy` and through `createProxyServer`, aggregating and
 * per frame, against raw peers that count and keep nothing, and asserts the heap growth after full
 * collections, the process CPU time and the close code each side gets.
 *
 * By default each case runs in two variants (a bare proxy per frame, a server aggregating);
 * ADVERSARIAL_FULL=1 runs all four, ADVERSARIAL_VERBOSE=1 prints the figures measured.
 */
import { expect } from 'chai';
import { binaryFrame, closeFrame, continuationFrame } from '../../src/frame.js';
import type { ProxyOptions, WebSocketProxy } from '../../src/index.js';
import { type Attacked, VARIANTS, flood, mb, report, startFront, startMeter, until } from '../helpers/flood.js';
import { releaseAll } from '../proxy/rig.js';

type Options = Omit<ProxyOptions<WebSocketProxy>, 'transforms'>;

/** `n` continuation frames with `size`-byte payloads, FIN clear, as the client sends them. */
function continuations(attacked: Attacked, n: number, size: number): Buffer {
  const one = attacked.client.encode([continuationFrame(Buffer.alloc(size, 0x61), false)]);
  return Buffer.concat(Array.from({ length: n }, () => one));
}

/** Resolves once the proxy has read `bytes` more bytes from the client than when `mark` was taken. */
async function proxyRead(attacked: Attacked, mark: number, bytes: number): Promise<void> {
  await until(() => attacked.proxyClientSocket.bytesRead - mark >= bytes || attacked.proxyClientSocket.destroyed);
}

/** Expects a limit's ending: 1009 to the client, 1001 to the upstream, the summary's code. */
async function expectLimit(attacked: Attacked, code: string): Promise<void> {
  expect(await attacked.client.closeOrEnd(), 'close code the client got').to.equal(1009);
  expect(await attacked.upstream.closeOrEnd(), 'close code the upstream got').to.equal(1001);
  const summary = await attacked.summary;
  expect(summary?.error?.code).to.equal(code);
}

describe('adversarial: fragment floods', function () {
  afterEach(releaseAll);

  for (const variant of VARIANTS) {
    const aggregating = variant.aggregateFragments;
    const options = (extra: Options = {}): Options => ({ aggregateFragments: aggregating, ...extra });

    describe(variant.name, () => {
      it(`40k one-byte fragments (280 KB on the wire) hold ${aggregating ? 'about their bytes, not 100 B of heap each' : 'nothing: each is forwarded'}; ${aggregating ? 'the message size limit then gives the client 1009' : 'the message ends normally'}`, async () => {
        // maxFragments out of the way: what is held must be bounded by the bytes counted.
        const front = await startFront(variant.front, options({ clientMaxFragments: 1_000_000, clientMaxFrameSize: 64 * 1024 }));
        const attacked = await front.connect();
        const meter = startMeter();
        const mark = attacked.proxyClientSocket.bytesRead;
        const first = attacked.client.encode([binaryFrame('a', false)]);
        const flood1 = Buffer.concat([first, continuations(attacked, 40_000, 1)]);
        await flood(attacked.client.socket, flood1, flood1.length);
        await proxyRead(attacked, mark, flood1.length);
        if (!aggregating) await until(() => attacked.upstream.dataFrames === 40_001);
        const held = meter.heapGrowth();
        // Unbounded (a view per fragment, each pinning its socket chunk): 40k x ~106 B = 4.2 MB.
        report('heap growth, 40k one-byte fragments held', mb(held));
        expect(held, `heap growth with the message open: ${mb(held)}`).to.be.below(2.5 * 1024 * 1024);
        if (aggregating) {
          // 40001 bytes so far; 64 KiB is passed at the 65537th fragment.
          const rest = continuations(attacked, 30_000, 1);
          await flood(attacked.client.socket, rest, rest.length);
          await expectLimit(attacked, 'WSP_ERR_MESSAGE_TOO_LARGE');
          expect(attacked.upstream.dataFrames, 'nothing of the message reached the upstream').to.equal(0);
        } else {
          attacked.client.send(continuationFrame('z', true));
          attacked.client.send(closeFrame(1000));
          expect(await attacked.upstream.closeOrEnd()).to.equal(1000);
          expect(await attacked.client.closeOrEnd()).to.equal(1000);
          expect(attacked.upstream.dataFrames).to.equal(40_002);
        }
        const cpu = meter.cpuMs();
        report('CPU time', `${cpu.toFixed(0)} ms`);
        expect(cpu, `CPU time over the attack: ${cpu.toFixed(0)} ms`).to.be.below(8000);
      });

      it('maxFragments holds: fragment 1001 of a message gets the client 1009 with clientMaxFragments 1000, whatever follows', async () => {
        const front = await startFront(variant.front, options({ clientMaxFragments: 1000 }));
        const attacked = await front.connect();
        const meter = startMeter();
        const bytes = Buffer.concat([attacked.client.encode([binaryFrame('a', false)]), continuations(attacked, 20_000, 1)]);
        await flood(attacked.client.socket, bytes, bytes.length);
        await expectLimit(attacked, 'WSP_ERR_TOO_MANY_FRAGMENTS');
        // Per frame, the 1000 fragments before the limit went on (as the upstream would have seen them).
        expect(attacked.upstream.dataFrames).to.equal(aggregating ? 0 : 1000);
        const held = meter.heapGrowth();
        report('heap growth', mb(held));
        expect(held, `heap growth: ${mb(held)}`).to.be.below(4 * 1024 * 1024);
        const cpu = meter.cpuMs();
        report('CPU time', `${cpu.toFixed(0)} ms`);
        expect(cpu).to.be.below(5000);
      });

      it('empty continuations: the default maxFragments (16384) ends a flood of 20k of them with 1009', async () => {
        const front = await startFront(variant.front, options());
        const attacked = await front.connect();
        const meter = startMeter();
        const bytes = Buffer.concat([attacked.client.encode([binaryFrame('', false)]), continuations(attacked, 20_000, 0)]);
        await flood(attacked.client.socket, bytes, bytes.length);
        await expectLimit(attacked, 'WSP_ERR_TOO_MANY_FRAGMENTS');
        expect(attacked.upstream.dataFrames).to.equal(aggregating ? 0 : 16384);
        const held = meter.heapGrowth();
        report('heap growth', mb(held));
        expect(held, `heap growth: ${mb(held)}`).to.be.below(4 * 1024 * 1024);
        const cpu = meter.cpuMs();
        report('CPU time', `${cpu.toFixed(0)} ms`);
        expect(cpu, `CPU time: ${cpu.toFixed(0)} ms`).to.be.below(5000);
      });

      it('empty continuations without a fragment limit: 100k of them cost no memory held, constant work each', async () => {
        const front = await startFront(variant.front, options({ clientMaxFragments: 1_000_000 }));
        const attacked = await front.connect();
        const meter = startMeter();
        const mark = attacked.proxyClientSocket.bytesRead;
        const bytes = Buffer.concat([attacked.client.encode([binaryFrame('', false)]), continuations(attacked, 100_000, 0)]);
        await flood(attacked.client.socket, bytes, bytes.length);
        await proxyRead(attacked, mark, bytes.length);
        if (!aggregating) await until(() => attacked.upstream.dataFrames === 100_001);
        const held = meter.heapGrowth();
        report('heap growth, 100k empty fragments', mb(held));
        expect(held, `heap growth with the message open: ${mb(held)}`).to.be.below(2.5 * 1024 * 1024);
        attacked.client.send(continuationFrame('', true));
        attacked.client.send(closeFrame(1000));
        expect(await attacked.upstream.closeOrEnd()).to.equal(1000);
        expect(await attacked.client.closeOrEnd()).to.equal(1000);
        // Aggregated: one empty message; per frame: every fragment.
        expect(attacked.upstream.dataFrames).to.equal(aggregating ? 1 : 100_002);
        const cpu = meter.cpuMs();
        report('CPU time', `${cpu.toFixed(0)} ms`);
        expect(cpu, `CPU time: ${cpu.toFixed(0)} ms`).to.be.below(8000);
      });
    });
  }
});
