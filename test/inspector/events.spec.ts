import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { FLUSH_INTERVAL } from '../../src/inspector/events.js';
import { waitFor } from '../helpers/sockets.js';
import { fakeTimers, onCleanup, releaseAll, turns } from '../proxy/rig.js';
import { call, inspectRig, sse, started } from './helpers.js';

/** A client that asks for the event stream and never reads it. */
async function stalledPage(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.pause();
  socket.write('GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  onCleanup(() => socket.destroy());
  return socket;
}

describe('inspector/events', () => {
  afterEach(releaseAll);

  it('starts with hello, then sends live events in the event-stream format', async () => {
    const insp = await started();
    const port = insp.address()!.port;
    const page = await sse(port);
    expect(page.res.headers['content-type']).to.equal('text/event-stream; charset=utf-8');
    expect(page.res.headers['cache-control']).to.equal('no-store');
    await page.next('hello');
    const added = (await call(port, 'POST', '/api/breakpoints', { from: 'both', pattern: 'a' })).json;
    expect(await page.next('breakpoints')).to.deep.equal([added]);
    // A page that comes later starts from the state so far.
    const late = await sse(port);
    expect((await late.next('hello')).breakpoints).to.deep.equal([added]);
    expect(page.events.map((e) => e.event)).to.deep.equal(['hello', 'breakpoints']);
  });

  it('sends stats at most every 500 ms per connection, only when they changed', async () => {
    const clock = fakeTimers();
    const { port, client } = await inspectRig();
    const page = await sse(port);
    const peer = await client();
    const stats = () => page.events.filter((e) => e.event === 'stats').map((e) => e.data);
    for (let i = 0; i < 20; i++) peer.ws.send(`m${i}`);
    await peer.waitMessages(20);
    await turns();
    expect(stats()).to.deep.equal([]);
    clock.tick(500 + FLUSH_INTERVAL);
    await waitFor(() => stats().length === 1);
    expect(stats()[0]).to.deep.include({ client: { frames: 20, bytes: 50 }, upstream: { frames: 20, bytes: 50 } });
    clock.tick(500 + FLUSH_INTERVAL);
    await turns();
    expect(stats()).to.have.length(1);
    peer.ws.send('again');
    await peer.waitMessages(21);
    clock.tick(500 + FLUSH_INTERVAL);
    await waitFor(() => stats().length === 2);
    expect(stats()[1].client).to.deep.equal({ frames: 21, bytes: 55 });
  });

  it('sends the events of a burst together, in order, to every page', async () => {
    const clock = fakeTimers();
    const { port, client } = await inspectRig();
    const pages = [await sse(port), await sse(port)];
    const peer = await client();
    for (let i = 0; i < 100; i++) peer.ws.send(`burst ${i}`);
    await peer.waitMessages(100);
    await turns();
    // Nothing went out yet: the events wait for the flush interval (200 rows are under FLUSH_BYTES).
    for (const page of pages) expect(page.events.map((e) => e.event)).to.deep.equal(['hello']);
    clock.tick(FLUSH_INTERVAL);
    for (const page of pages) {
      await waitFor(() => page.events.filter((e) => e.event === 'message').length === 200);
      expect(page.events[1]!.event).to.equal('open');
      const fromClient = page.events.filter((e) => e.event === 'message' && e.data.from === 'client').map((e) => e.data.preview);
      expect(fromClient).to.deep.equal(Array.from({ length: 100 }, (_, i) => `burst ${i}`));
    }
  });

  it('drops a page that does not read once it buffered maxPageBuffer bytes, and keeps the others', async () => {
    const insp = await started({ maxPageBuffer: 64 * 1024 });
    const port = insp.address()!.port;
    const reader = await sse(port);
    await reader.next('hello');
    const stalled = await stalledPage(port);
    await waitFor(() => insp.channel.size === 2);
    // Each change of the breakpoints sends the whole list: 100 patterns of 1000 characters make
    // events of up to 100 kB. Rounds go on until the kernel's buffers are full and the page is dropped.
    const pattern = 'p'.repeat(1000);
    let events = 0;
    for (let round = 0; round < 40 && insp.channel.dropped === 0; round++) {
      const ids: string[] = [];
      for (let i = 0; i < 100; i++) ids.push((await call(port, 'POST', '/api/breakpoints', { from: 'both', pattern })).json.id);
      for (const id of ids) await call(port, 'DELETE', `/api/breakpoints/${id}`);
      events += 200;
    }
    expect(insp.channel.dropped).to.equal(1);
    expect(insp.channel.size).to.equal(1);
    // The reader kept up with every event; the stalled page's socket was cut.
    await waitFor(() => reader.events.filter((e) => e.event === 'breakpoints').length === events);
    const closed = once(stalled, 'close');
    stalled.resume();
    await closed;
    expect(reader.ended()).to.equal(false);
  });

  it('ends every page when the inspector closes', async () => {
    const insp = await started();
    const page = await sse(insp.address()!.port);
    await page.next('hello');
    await insp.close();
    await waitFor(() => page.ended());
    expect(insp.channel.size).to.equal(0);
  });
});
