import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import { type ProxySummary, createProxyServer } from '../../src/index.js';
import { type RecordingClient, rawClient, wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { onCleanup, releaseAll } from '../proxy/rig.js';
import { echoUpstream, get, listening, upgradeTo } from './helpers.js';

describe('server/ProxyServer close() (graceful drain)', () => {
  afterEach(releaseAll);

  it('drains 200 live connections: every client is sent 1001, every upstream too, within the timeout', async function () {
    this.timeout(30000);
    const upstream = await echoUpstream();
    const upstreamCodes: number[] = [];
    const { server, url } = await listening({ target: upstream.url });
    const clients: RecordingClient[] = [];
    for (let i = 0; i < 200; i += 20) {
      clients.push(...await Promise.all(Array.from({ length: 20 }, () => wsClient(url))));
    }
    await waitFor(() => server.connections.length === 200);
    const summaries: ProxySummary[] = [];
    server.on('close', (summary) => summaries.push(summary));
    const result = await server.close({ timeout: 20000 });
    expect(result).to.deep.equal({ connections: 200, closed: 200, failed: 0, destroyed: 0, handshakesAborted: 0 });
    const codes = await Promise.all(clients.map((c) => c.closed));
    expect(new Set(codes.map((c) => c.code))).to.deep.equal(new Set([1001]));
    for (const summary of summaries) upstreamCodes.push(summary.upstream.closeSent!.code!);
    expect(new Set(upstreamCodes)).to.deep.equal(new Set([1001]));
    expect(server.connections).to.deep.equal([]);
    expect(server.address()).to.equal(null);
    expect(server.accepting).to.equal(false);
  });

  it('sends 1012 and a reason when asked, and returns the same promise when called again', async () => {
    const upstream = await echoUpstream();
    const { server, url } = await listening({ target: upstream.url });
    const client = await wsClient(url);
    await waitFor(() => server.connections.length === 1);
    const summaries: ProxySummary[] = [];
    server.on('close', (summary) => summaries.push(summary));
    const drained = server.close({ code: 1012, reason: 'restarting', timeout: 5000 });
    expect(server.close()).to.equal(drained);
    expect(await client.closed).to.deep.equal({ code: 1012, reason: 'restarting' });
    expect((await drained).closed).to.equal(1);
    expect(summaries[0]!.upstream.closeSent).to.deep.equal({ code: 1012, reason: 'restarting' });
  });

  it('timeout: Infinity waits for the close handshakes, however long', async () => {
    const upstream = await echoUpstream();
    const { server, url } = await listening({ target: upstream.url });
    const client = await wsClient(url);
    // The client answers the close frame only after a while.
    client.ws.pause();
    setTimeout(() => client.ws.resume(), 50);
    await waitFor(() => server.connections.length === 1);
    expect(await server.close({ timeout: Infinity })).to.deep.equal({ connections: 1, closed: 1, failed: 0, destroyed: 0, handshakesAborted: 0 });
    expect((await client.closed).code).to.equal(1001);
  });

  it('answers new upgrades and the health check 503 while draining (on an attached server)', async () => {
    const upstream = await echoUpstream();
    const proxy = createProxyServer({ target: upstream.url });
    const server = http.createServer((req, res) => {
      if (!proxy.handleRequest(req, res)) res.end('app');
    });
    server.on('upgrade', proxy.handleUpgrade);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as net.AddressInfo).port;
    // A client that never answers the close frame keeps the drain open until its timeout.
    const stubborn = await rawClient(port);
    onCleanup(() => stubborn.destroy());
    await waitFor(() => proxy.connections.length === 1);
    const drained = proxy.close({ timeout: 300 });
    const refused = await upgradeTo(port, '/');
    expect(refused.statusCode).to.equal(503);
    expect(refused.headers['retry-after']).to.equal('5');
    expect((await get(port, '/healthz')).statusCode).to.equal(503);
    const close = await stubborn.waitClose();
    expect(close.code).to.equal(1001);
    expect(await drained).to.deep.equal({ connections: 1, closed: 0, failed: 0, destroyed: 1, handshakesAborted: 0 });
    await stubborn.closed;
  });

  it('closes a handshake that completes during the drain, and aborts one still under way at the timeout', async () => {
    const upstream = await echoUpstream();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { server, url } = await listening({ target: upstream.url, authorize: async (req) => { if (req.url === '/slow') await gate; return true; } });
    const late = wsClient(`${url}/slow`);
    await waitFor(() => (server as unknown as { slots: number }).slots === 1);
    const drained = server.close({ timeout: 5000 });
    release();
    // Its hooks finished during the drain: it is refused, not upgraded.
    let error: Error | undefined;
    await late.catch((err: Error) => (error = err));
    expect(error?.message).to.equal('Unexpected server response: 503');
    expect(await drained).to.deep.equal({ connections: 0, closed: 0, failed: 0, destroyed: 0, handshakesAborted: 0 });
  });

  it('aborts an upstream handshake still under way at the timeout; its client gets no 101', async () => {
    const upstreamSockets: net.Socket[] = [];
    const silent = net.createServer((socket) => {
      upstreamSockets.push(socket);
      socket.on('error', () => undefined);
      socket.resume();
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    onCleanup(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const { server, url } = await listening({ target: `ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}` });
    const client = wsClient(url);
    let error: Error | undefined;
    const failed = client.catch((err: Error) => (error = err));
    await waitFor(() => (server as unknown as { pending: Set<unknown> }).pending.size === 1);
    expect(await server.close({ timeout: 100 })).to.deep.equal({ connections: 0, closed: 0, failed: 0, destroyed: 0, handshakesAborted: 1 });
    await failed;
    expect(error).to.be.instanceOf(Error);
    // The proxy let go of its upstream connection too.
    await waitFor(() => upstreamSockets.length === 1 && upstreamSockets[0]!.readableEnded);
  });

  it('refuses invalid drain options', async () => {
    const upstream = await echoUpstream();
    const { server } = await listening({ target: upstream.url });
    let error: Error | undefined;
    await server.close({ code: 1000 as never }).catch((err: Error) => (error = err));
    expect(error?.message).to.equal('options.code must be 1001 or 1012');
    await server.close({ timeout: -1 }).catch((err: Error) => (error = err));
    expect(error?.message).to.equal('options.timeout must be a number >= 0');
    expect(server.accepting).to.equal(true);
  });
});
