import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { WebSocketProxy, inspector } from '../../src/index.js';
import { wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { echo, startUpstream } from '../helpers/proxy-harness.js';
import { onCleanup, releaseAll } from '../proxy/rig.js';
import { call, inspectRig, sse, started } from './helpers.js';

describe('inspector/inspector', () => {
  afterEach(releaseAll);

  it('shows a connection, its rows live and its stats, and lists them over the API', async () => {
    const { port, client } = await inspectRig();
    const page = await sse(port);
    const hello = await page.next('hello');
    expect(hello).to.deep.equal({ connections: [], breakpoints: [], held: [] });
    const peer = await client('/room?x=1');
    const opened = await page.next('open');
    expect(opened.route).to.equal('/');
    expect(opened.clientAddress).to.match(/^127\.0\.0\.1:\d+$/);
    expect(opened.upstreamUrl).to.match(/^ws:\/\/127\.0\.0\.1:\d+\/room$/);
    expect(opened.closed).to.equal(null);

    peer.ws.send('{"hello":"world"}');
    peer.ws.send(Buffer.from([1, 2, 255]));
    await peer.waitMessages(2);
    const fromClient = await page.next('message', (row) => row.from === 'client' && row.type === 'binary');
    expect(fromClient).to.include({ connection: opened.id, type: 'binary', fin: true, size: 3, preview: '0102ff' });
    const rows = page.events.filter((e) => e.event === 'message').map((e) => e.data);
    await waitFor(() => page.events.filter((e) => e.event === 'message').length === 4);
    expect(rows[0]).to.include({ seq: 1, from: 'client', type: 'text', preview: '{"hello":"world"}', size: 17 });
    const stats = await page.next('stats', (s) => s.client.frames === 2 && s.upstream.frames === 2);
    expect(stats).to.deep.equal({ id: opened.id, client: { frames: 2, bytes: 20 }, upstream: { frames: 2, bytes: 20 } });

    const list = await call(port, 'GET', '/api/connections');
    expect(list.status).to.equal(200);
    expect(list.json).to.have.length(1);
    expect(list.json[0]).to.include({ id: opened.id, closed: null });
    expect(list.json[0].fromClient).to.deep.equal({ frames: 2, bytes: 20 });

    const messages = await call(port, 'GET', `/api/connections/${opened.id}/messages?after=1&limit=2`);
    expect(messages.json.map((row: { seq: number }) => row.seq)).to.deep.equal([2, 3]);
    const detail = await call(port, 'GET', `/api/connections/${opened.id}/messages/1`);
    expect(detail.json).to.include({ seq: 1, payload: '{"hello":"world"}', encoding: 'utf8', truncated: false });
    const binary = await call(port, 'GET', `/api/connections/${opened.id}/messages/2`);
    expect(binary.json).to.include({ payload: Buffer.from([1, 2, 255]).toString('base64'), encoding: 'base64' });
  });

  it('records the close frames a client sends, with their codes', async () => {
    const { port, client } = await inspectRig();
    const page = await sse(port);
    const peer = await client();
    peer.ws.close(4321, 'bye');
    await peer.closed;
    const info = await page.next('close');
    expect(info.closeCodes).to.deep.equal({ client: 4321, upstream: 4321 });
    const rows = (await call(port, 'GET', `/api/connections/${info.id}/messages`)).json;
    expect(rows[0]).to.include({ from: 'client', type: 'close', code: 4321, preview: 'bye' });
    const detail = (await call(port, 'GET', `/api/connections/${info.id}/messages/1`)).json;
    expect(detail).to.include({ payload: 'bye', code: 4321 });
  });

  it('shows a bare WebSocketProxy given its stages and tracked', async () => {
    const upstream = await startUpstream((ws) => echo(ws));
    onCleanup(() => upstream.close());
    const insp = await started();
    const port = insp.address()!.port;
    const front = http.createServer();
    front.on('upgrade', async (req, socket, head) => {
      const proxy = new WebSocketProxy({ transforms: insp.transforms });
      await proxy.connect(upstream.url, req, socket, head);
      insp.track(proxy, { route: 'bare', upstreamUrl: upstream.url });
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    onCleanup(() => new Promise<void>((resolve) => {
      front.closeAllConnections();
      front.close(() => resolve());
    }));
    const peer = await wsClient(`ws://127.0.0.1:${(front.address() as AddressInfo).port}/`);
    peer.ws.send('bare');
    await peer.waitMessages(1);
    const [conn] = (await call(port, 'GET', '/api/connections')).json;
    expect(conn).to.include({ route: 'bare', upstreamUrl: upstream.url, clientAddress: null });
    expect(conn.fromClient).to.deep.equal({ frames: 1, bytes: 4 });
    peer.ws.close(1000);
    await peer.closed;
    await waitFor(() => insp.hello().connections[0]!.closed !== null);
    expect(() => insp.track(new WebSocketProxy())).to.throw(TypeError, /inspector.transforms/);
  });

  it('stops adding its stages and serving once closed, and lets frames pass unseen', async () => {
    const { insp, server, client, port } = await inspectRig();
    const peer = await client();
    await insp.close();
    expect(insp.address()).to.equal(null);
    peer.ws.send('after');
    await peer.waitMessages(1);
    const second = await client();
    second.ws.send('new');
    await second.waitMessages(1);
    expect(server.connections).to.have.length(2);
    const refused = await new Promise<string>((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/api/connections', agent: false }).on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''));
    });
    expect(refused).to.equal('ECONNREFUSED');
  });

  it('refuses a host that is not loopback without a token, and bad options, with a TypeError naming them', async () => {
    for (const [options, message] of [
      [{ host: '0.0.0.0' }, /options.token is required/],
      [{ maxBytes: -1 }, /options.maxBytes must be/],
      [{ holdTimeout: 0 }, /options.holdTimeout must be/],
      [{ port: 70000 }, /options.port must be/],
      [{ token: '' }, /options.token must be/],
      [{ colour: 'red' }, /options.colour is not an option/],
      [{ server: {} }, /options.server must be a ProxyServer/],
    ] as const) {
      let error: unknown;
      try {
        await inspector(options as never);
      } catch (err) {
        error = err;
      }
      expect(error, JSON.stringify(options)).to.be.instanceOf(TypeError);
      expect((error as Error).message).to.match(message);
    }
  });
});
