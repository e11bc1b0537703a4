import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { FLUSH_INTERVAL } from '../../src/inspector/events.js';
import type { InspectorOptions } from '../../src/inspector/options.js';
import { STATS_PERIOD } from '../../src/inspector/hub.js';
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

/**
 * An inspector with one page on its event stream (past its hello) and a client that sent `count`
 * texts (`${prefix}0`, ...) and got their echoes; then the flush interval passes, and its
 * `messages` event has arrived.
 */
async function flushedRows(clock: ReturnType<typeof fakeTimers>, options: InspectorOptions, count: number, prefix: string) {
  const { insp, port, client } = await inspectRig(options);
  const page = await sse(port);
  await page.next('hello');
  const peer = await client();
  for (let i = 0; i < count; i++) peer.ws.send(`${prefix}${i}`);
  await peer.waitMessages(count);
  await turns();
  clock.tick(FLUSH_INTERVAL);
  await waitFor(() => page.raw.some((e) => e.event === 'messages'));
  return { insp, port, page, peer };
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

  it('sends stats at most every STATS_PERIOD ms per connection, only when they changed', async () => {
    const clock = fakeTimers();
    const { port, client } = await inspectRig();
    const page = await sse(port);
    const peer = await client();
    const stats = () => page.events.filter((e) => e.event === 'stats').map((e) => e.data);
    for (let i = 0; i < 20; i++) peer.ws.send(`m${i}`);
    await peer.waitMessages(20);
    await turns();
    expect(stats()).to.deep.equal([]);
    clock.tick(STATS_PERIOD + FLUSH_INTERVAL);
    await waitFor(() => stats().length === 1);
    expect(stats()[0]).to.deep.include({ client: { frames: 20, bytes: 50 }, upstream: { frames: 20, bytes: 50 } });
    clock.tick(STATS_PERIOD + FLUSH_INTERVAL);
    await turns();
    expect(stats()).to.have.length(1);
    peer.ws.send('again');
    await peer.waitMessages(21);
    clock.tick(STATS_PERIOD + FLUSH_INTERVAL);
    await waitFor(() => stats().length === 2);
    expect(stats()[1].client).to.deep.equal({ frames: 21, bytes: 55 });
  });

  it('sends the events of a burst together, in order, to every page', async () => {
    const clock = fakeTimers();
    const { port, client } = await inspectRig({ liveRowsPerSecond: 10_000 });
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

  it('sends the rows of a flush as one messages event per page, in order', async () => {
    const { page } = await flushedRows(fakeTimers(), { liveRowsPerSecond: 10_000 }, 30, 'row ');
    // open, then the 60 rows (30 each way) in ONE event, in the order they passed (with the
    // connection's stats, which share the period).
    const seen = page.raw.filter((e) => e.event !== 'stats');
    expect(seen.map((e) => e.event)).to.deep.equal(['hello', 'open', 'messages']);
    const rows = seen[2]!.data as { seq: number; from: string; preview: string }[];
    expect(rows.map((r) => r.seq)).to.deep.equal(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(rows.filter((r) => r.from === 'client').map((r) => r.preview)).to.deep.equal(Array.from({ length: 30 }, (_, i) => `row ${i}`));
  });

  it('sends a connection\'s newest rows of a flush up to liveRowsPerSecond, after a skipped count of the others', async () => {
    const clock = fakeTimers();
    // 10 rows a flush.
    const { insp, port, page, peer } = await flushedRows(clock, { liveRowsPerSecond: 10_000 / FLUSH_INTERVAL }, 30, 'r');
    const id = insp.hub.connections()[0]!.id;
    const seen = page.raw.filter((e) => e.event !== 'stats');
    expect(seen.map((e) => e.event)).to.deep.equal(['hello', 'open', 'skipped', 'messages']);
    expect(seen[2]!.data).to.deep.equal({ connection: id, count: 50 });
    expect((seen[3]!.data as { seq: number }[]).map((r) => r.seq)).to.deep.equal(Array.from({ length: 10 }, (_, i) => 51 + i));
    // Under the cap: every row, no skipped event.
    peer.ws.send('last');
    await peer.waitMessages(31);
    await turns();
    clock.tick(FLUSH_INTERVAL);
    await waitFor(() => page.raw.filter((e) => e.event === 'messages').length === 2);
    const later = page.raw.filter((e) => e.event !== 'stats').slice(4);
    expect(later.map((e) => e.event)).to.deep.equal(['messages']);
    expect((later[0]!.data as { seq: number }[]).map((r) => r.seq)).to.deep.equal([61, 62]);
    // The skipped rows are still kept for the API.
    const rows = (await call(port, 'GET', `/api/connections/${id}/messages?limit=1000`)).json;
    expect(rows).to.have.length(62);
  });

  it('sends a page subscribed to a connection only its rows, and every connection\'s other events', async () => {
    const clock = fakeTimers();
    const { insp, port, client } = await inspectRig();
    const first = await client();
    const second = await client();
    await waitFor(() => insp.hub.connections().length === 2);
    const [a, b] = insp.hub.connections().map((c) => c.id) as [string, string];
    const onlyB = await sse(port, `?connection=${encodeURIComponent(b)}`);
    const none = await sse(port, '?connection=');
    const all = await sse(port);
    await Promise.all([onlyB.next('hello'), none.next('hello'), all.next('hello')]);
    expect(insp.channel.subscriptions().map(String).sort()).to.deep.equal(['', b, 'null'].sort());
    first.ws.send('one');
    second.ws.send('two');
    await Promise.all([first.waitMessages(1), second.waitMessages(1)]);
    await turns();
    clock.tick(STATS_PERIOD + FLUSH_INTERVAL);
    await waitFor(() => all.events.filter((e) => e.event === 'message').length === 4);
    await waitFor(() => onlyB.events.filter((e) => e.event === 'stats').length === 2);
    const rowsOf = (page: typeof all, id?: string): string[] => page.events
      .filter((e) => e.event === 'message' && (id === undefined || e.data.connection === id))
      .map((e) => `${e.data.connection}:${e.data.from}:${e.data.preview}`);
    expect(rowsOf(all, a)).to.have.length(2);
    expect(rowsOf(all, b)).to.have.length(2);
    expect(rowsOf(onlyB)).to.deep.equal(rowsOf(all, b));
    // Stats of both connections, whatever the subscription, in one event.
    expect(onlyB.events.filter((e) => e.event === 'stats').map((e) => e.data.id).sort()).to.deep.equal([a, b].sort());
    expect(onlyB.raw.filter((e) => e.event === 'stats').map((e) => (e.data as { id: string }[]).map((s) => s.id).sort()))
      .to.deep.equal([[a, b].sort()]);
    // A close and the breakpoints reach every page.
    first.ws.close(1000);
    await call(port, 'POST', '/api/breakpoints', { from: 'both', pattern: 'zz' });
    await waitFor(() => insp.hub.get(a)!.closed !== null);
    clock.tick(FLUSH_INTERVAL);
    for (const page of [onlyB, none]) {
      expect((await page.next('close')).id).to.equal(a);
      await page.next('breakpoints');
    }
    expect(none.raw.filter((e) => e.event === 'messages')).to.deep.equal([]);
    expect(onlyB.raw.filter((e) => e.event === 'messages').flatMap((e) => e.data.map((r: { connection: string }) => r.connection))).to.not.include(a);
  });

  it('counts as skipped the rows its ring no longer keeps at the flush, and sends those it keeps', async () => {
    const { insp, page } = await flushedRows(fakeTimers(), { liveRowsPerSecond: 10_000, maxMessagesPerConnection: 5 }, 20, 'f');
    const id = insp.hub.connections()[0]!.id;
    const seen = page.raw.filter((e) => e.event === 'skipped' || e.event === 'messages');
    // 40 rows passed (20 each way); the ring keeps the last 5 of them.
    expect(seen[0]).to.deep.include({ event: 'skipped', data: { connection: id, count: 35 } });
    expect((seen[1]!.data as { seq: number }[]).map((r) => r.seq)).to.deep.equal([36, 37, 38, 39, 40]);
  });

  it('queues no row when no page takes its connection', async () => {
    const clock = fakeTimers();
    const { insp, port, client } = await inspectRig();
    const page = await sse(port, '?connection=nobody');
    await page.next('hello');
    const peer = await client();
    peer.ws.send('unseen');
    await peer.waitMessages(1);
    expect(insp.channel.wants(insp.hub.connections()[0]!.id)).to.equal(false);
    clock.tick(STATS_PERIOD + FLUSH_INTERVAL);
    await page.next('stats');
    expect(page.raw.map((e) => e.event)).to.deep.equal(['hello', 'open', 'stats']);
    // The rows are still kept for the API.
    const rows = (await call(port, 'GET', `/api/connections/${insp.hub.connections()[0]!.id}/messages`)).json;
    expect(rows.map((r: { preview: string }) => r.preview)).to.deep.equal(['unseen', 'unseen']);
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
