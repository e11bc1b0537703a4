import { expect } from 'chai';
import type { Duplex } from 'node:stream';
import { binaryFrame, continuationFrame, pingFrame, textFrame } from '../../src/index.js';
import { Breakpoints, Holds } from '../../src/inspector/breakpoints.js';
import { EventChannel } from '../../src/inspector/events.js';
import { Hub } from '../../src/inspector/hub.js';
import { INSPECTOR_DEFAULTS } from '../../src/inspector/options.js';
import { InspectedConn, type ObserverHost } from '../../src/inspector/observer.js';
import { isHeld } from '../../src/proxy/dormant.js';
import { recordingUpstream, startUpstream } from '../helpers/proxy-harness.js';
import { wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { onCleanup, releaseAll, turns } from '../proxy/rig.js';
import { listening } from '../server/helpers.js';
import { call, started } from './helpers.js';

function host(): ObserverHost & { closed: boolean; dispose(): void } {
  const channel = new EventChannel(1024 * 1024);
  const hub = new Hub({ server: undefined, port: 0, host: '127.0.0.1', token: undefined, pageDir: '.', ...INSPECTOR_DEFAULTS }, channel);
  return { hub, breakpoints: new Breakpoints(channel), holds: new Holds(channel, 30_000, 1024), closed: false, dispose: () => hub.dispose() };
}

describe('inspector/observer', () => {
  afterEach(releaseAll);

  it('records a frame at once and lets it go on as it is (undefined), a continuation as its message\'s type', () => {
    const h = host();
    const conn = new InspectedConn(h, 'c', undefined);
    for (const frame of [binaryFrame(Buffer.from([1]), false), pingFrame('p'), continuationFrame(Buffer.from([2]))]) {
      expect(conn.observe(frame, 'client')).to.equal(undefined);
    }
    expect(conn.length).to.equal(3);
    expect(conn.entry(3)!.binary).to.equal(true);
    expect(conn.info().fromClient).to.deep.equal({ frames: 3, bytes: 3 });
    h.dispose();
  });

  it('observes both directions, each with its own fragmented message under way', () => {
    const h = host();
    const conn = new InspectedConn(h, 'c', undefined);
    conn.observe(binaryFrame(Buffer.from([1]), false), 'client');
    conn.observe(textFrame('a', false), 'upstream');
    conn.observe(continuationFrame(Buffer.from([2]), false), 'client');
    conn.observe(continuationFrame('b'), 'upstream');
    conn.observe(continuationFrame(Buffer.from([3])), 'client');
    const rows = [1, 2, 3, 4, 5].map((seq) => conn.entry(seq)!);
    expect(rows.map((row) => [row.from, row.type, row.binary])).to.deep.equal([
      ['client', 'binary', true], ['upstream', 'text', false], ['client', 'continuation', true], ['upstream', 'continuation', false], ['client', 'continuation', true],
    ]);
    expect(conn.info()).to.deep.include({ fromClient: { frames: 3, bytes: 3 }, fromUpstream: { frames: 2, bytes: 2 } });
    h.dispose();
  });

  it('answers a frame a breakpoint matches with a promise of what goes on, recorded once resolved', async () => {
    const h = host();
    const conn = new InspectedConn(h, 'c', undefined);
    h.breakpoints.add('upstream', '^x');
    expect(conn.observe(pingFrame('x'), 'upstream')).to.equal(undefined);
    expect(conn.observe(textFrame('x0'), 'client')).to.equal(undefined);
    const held = conn.observe(textFrame('x1'), 'upstream');
    expect(held).to.be.instanceOf(Promise);
    expect(conn.length).to.equal(2);
    h.holds.resolve(h.holds.all()[0]!.id, 'drop');
    expect(await held).to.equal(null);
    expect(conn.length).to.equal(2);
    h.closed = true;
    expect(conn.observe(textFrame('x2'), 'upstream')).to.equal(undefined);
    expect(conn.length).to.equal(2);
    h.dispose();
  });

  it('through a ProxyServer: closing the inspector mid-hold releases the held message as it is, and the connection goes on', async () => {
    const { upstream, received, sockets } = await recordingUpstream();
    onCleanup(() => upstream.close());
    const { server, url } = await listening({ target: upstream.url });
    const insp = await started({ server });
    const port = insp.address()!.port;
    const client = await wsClient(url);
    onCleanup(() => client.ws.terminate());
    await call(port, 'POST', '/api/breakpoints', { from: 'client', pattern: 'held' });
    client.ws.send('held one');
    client.ws.send('behind it');
    await waitFor(() => insp.hello().held.length === 1);
    await turns();
    expect(received).to.deep.equal([]);
    await insp.close();
    await waitFor(() => received.length === 2);
    expect(received).to.deep.equal(['held one', 'behind it']);
    // Unseen from now on, both ways.
    client.ws.send('held again');
    sockets[0]!.send('to the client');
    await waitFor(() => received.length === 3);
    await client.waitMessages(1);
    expect(client.messages).to.deep.equal(['to the client']);
    client.ws.close(1000);
    expect((await client.closed).code).to.equal(1000);
  });

  it('through a ProxyServer: a dormant connection is shown at once, and its frames once it wakes', async () => {
    const upstream = await startUpstream((ws) => ws.on('message', (data: Buffer) => ws.send(data)));
    onCleanup(() => upstream.close());
    const { server, url } = await listening({ target: upstream.url });
    const insp = await started({ server });
    let socket: Duplex | undefined;
    server.once('connection', (_proxy, req) => {
      socket = req.socket;
    });
    const client = await wsClient(url);
    onCleanup(() => client.ws.terminate());
    await waitFor(() => insp.hello().connections.length === 1 && socket !== undefined && isHeld(socket));
    expect(insp.hello().connections[0]!.fromClient).to.deep.equal({ frames: 0, bytes: 0 });
    client.ws.send('wake');
    await client.waitMessages(1);
    await waitFor(() => insp.hub.connections()[0]!.fromUpstream.frames === 1);
    expect(insp.hub.connections()[0]!.fromClient).to.deep.equal({ frames: 1, bytes: 4 });
  });
});
