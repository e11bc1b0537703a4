/**
 * Adversarial: inspector pages that never read their event channel (issue 10 section 2, "Load and
 * the inspector"). Several raw HTTP clients open `GET /api/events` and never read while traffic
 * flows through the proxy: the inspector drops each once its response buffered `maxPageBuffer`
 * bytes, and memory stays bounded meanwhile (without the drop, every event would stay buffered for
 * them, however many there are).
 *
 * A ProxyServer in front of an echoing `ws` upstream, with an inspector on it (test/inspector/helpers.ts).
 */
import net from 'node:net';
import { once } from 'node:events';
import { expect } from 'chai';
import { inspectRig } from '../inspector/helpers.js';
import { mb, report, startMeter } from '../helpers/flood.js';
import { waitFor } from '../helpers/sockets.js';
import { onCleanup, releaseAll } from '../proxy/rig.js';

const PAGES = 5;
const MAX_PAGE_BUFFER = 64 * 1024;

/** A page that asks for the event channel and never reads a byte of it. */
async function stalledPage(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.pause();
  socket.on('error', () => undefined);
  socket.write('GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  onCleanup(() => socket.destroy());
  return socket;
}

describe('adversarial: inspector pages that never read', function () {
  afterEach(releaseAll);

  it(`${PAGES} pages that never read /api/events while 1 KiB messages flow: each is dropped at maxPageBuffer, memory stays bounded`, async () => {
    // Every row live (no liveRowsPerSecond cap): the most a page can be sent.
    const rig = await inspectRig({ maxPageBuffer: MAX_PAGE_BUFFER, liveRowsPerSecond: 1_000_000 });
    const client = await rig.client();
    for (let i = 0; i < PAGES; i++) await stalledPage(rig.port);
    await waitFor(() => rig.insp.channel.size === PAGES);
    const meter = startMeter();
    const message = Buffer.alloc(1024, 0x6d).toString();
    let rounds = 0;
    // Rounds of 200 echoed messages (400 rows, about 0.1 MB of events once the kernel's buffers are
    // full) go on until every page was dropped: 150 rounds at most. Without the drop, the events of
    // every round past the kernel's buffers stay held for the pages (measured: 10 MB at 100 rounds).
    for (; rounds < 150 && rig.insp.channel.dropped < PAGES; rounds++) {
      for (let i = 0; i < 200; i++) client.ws.send(message);
      await client.waitMessages(200);
      // The recording client keeps nothing across rounds: its own records are not what is measured.
      client.messages.length = 0;
      client.events.length = 0;
    }
    const held = meter.heapGrowth();
    const cpu = meter.cpuMs();
    report(`rounds of 200 messages until ${PAGES} pages were dropped`, String(rounds));
    report('heap and buffers growth', mb(held));
    report('CPU time', `${cpu.toFixed(0)} ms`);
    expect(rig.insp.channel.dropped, 'pages dropped').to.equal(PAGES);
    expect(rig.insp.channel.size, 'pages still open').to.equal(0);
    expect(held, `growth: ${mb(held)}`).to.be.below(6 * 1024 * 1024);
    expect(cpu).to.be.below(10_000);
    client.ws.close(1000);
    expect((await client.closed).code).to.equal(1000);
  });
});
