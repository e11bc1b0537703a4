/**
 * A connection idle from the start keeps its sockets held, without readers, writers or pipelines,
 * until something needs its sides: each way it can wake, over real sockets.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { type ProxyOptions, type ProxySummary, WebSocketProxy } from '../../src/index.js';
import { isHeld } from '../../src/proxy/dormant.js';
import { tap } from '../../src/transforms/index.js';
import { startUpstream } from '../helpers/proxy-harness.js';
import { type RecordingClient, until, wsClient } from '../helpers/proxy-peers.js';
import { fakeTimers, onCleanup, releaseAll } from './rig.js';

interface Connection {
  proxy: WebSocketProxy;
  client: RecordingClient;
  clientSocket: Duplex;
  upstreamSocket: Duplex;
  upstream: WebSocket;
  upstreamEvents: string[];
  summary: Promise<ProxySummary>;
}

/** A `ws` upstream, a bare `'upgrade'` handler running one WebSocketProxy, and a `ws` client. */
async function connection(options?: ProxyOptions<WebSocketProxy>): Promise<Connection> {
  const upstreams: WebSocket[] = [];
  const upstreamEvents: string[] = [];
  const upstream = await startUpstream((ws) => {
    upstreams.push(ws);
    ws.on('error', () => undefined);
    ws.on('message', (data, binary) => {
      upstreamEvents.push(`message:${data.toString()}`);
      ws.send(data, { binary });
    });
    ws.on('close', (code) => upstreamEvents.push(`close:${code}`));
  });
  onCleanup(() => upstream.close());
  let resolveProxy!: (value: { proxy: WebSocketProxy; socket: Duplex; summary: Promise<ProxySummary> }) => void;
  const started = new Promise<{ proxy: WebSocketProxy; socket: Duplex; summary: Promise<ProxySummary> }>((resolve) => {
    resolveProxy = resolve;
  });
  const server = http.createServer();
  server.on('upgrade', (req, socket, head) => {
    const proxy = new WebSocketProxy(options);
    proxy.connect(upstream.url, req, socket, head).then(() => resolveProxy({ proxy, socket, summary: proxy.execute() }), () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = await wsClient(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  onCleanup(() => client.ws.terminate());
  const { proxy, socket, summary } = await started;
  onCleanup(() => proxy.destroy());
  await until(() => upstreams.length === 1);
  // The proxy's socket to the upstream: the one whose 'close' ends the upstream side.
  const upstreamSocket = (upstreams[0] as unknown as { _socket: Duplex })._socket;
  return { proxy, client, clientSocket: socket, upstreamSocket, upstream: upstreams[0]!, upstreamEvents, summary };
}

/** The proxy's own socket to the upstream is not reachable from outside; its client socket is. */
function dormant(c: Connection): boolean {
  return isHeld(c.clientSocket);
}

describe('proxy/dormant: a connection idle from the start', () => {
  afterEach(releaseAll);

  it('holds its sockets until the first client byte, then relays it', async () => {
    const c = await connection();
    expect(dormant(c)).to.equal(true);
    c.client.ws.send('first');
    await c.client.waitMessages(1);
    expect(c.client.messages).to.deep.equal(['first']);
    expect(dormant(c)).to.equal(false);
    c.client.ws.close(1000, 'bye');
    const summary = await c.summary;
    expect(summary.error).to.equal(undefined);
    expect(summary.client.frames).to.equal(2);
    expect(summary.upstream.closeReceived).to.deep.equal({ code: 1000, reason: 'bye' });
  });

  it('wakes on the upstream\'s first byte', async () => {
    const c = await connection();
    expect(dormant(c)).to.equal(true);
    c.upstream.send('from upstream');
    await c.client.waitMessages(1);
    expect(c.client.messages).to.deep.equal(['from upstream']);
    expect(dormant(c)).to.equal(false);
  });

  it('a close handshake from a dormant start is clean', async () => {
    const c = await connection();
    c.client.ws.close(4001, 'done');
    const summary = await c.summary;
    expect(summary.error).to.equal(undefined);
    expect(summary.closedBy).to.equal('client');
    expect((await c.client.closed).code).to.equal(4001);
    expect(c.upstreamEvents).to.include('close:4001');
  });

  it('an upstream lost while dormant: the client is sent 1001, WSP_ERR_CONNECTION_LOST', async () => {
    const c = await connection();
    c.upstream.terminate();
    const summary = await c.summary;
    expect(summary.closedBy).to.equal('upstream');
    expect(summary.error).to.have.property('code', 'WSP_ERR_CONNECTION_LOST');
    expect(summary.upstream.aborted).to.equal(true);
    expect((await c.client.closed).code).to.equal(1001);
  });

  it('a client reset while dormant: the upstream is sent 1001', async () => {
    const c = await connection();
    (c.client.ws as unknown as { _socket: Duplex })._socket.destroy();
    const summary = await c.summary;
    expect(summary.closedBy).to.equal('client');
    expect(summary.error).to.have.property('code', 'WSP_ERR_CONNECTION_LOST');
    await until(() => c.upstreamEvents.includes('close:1001'));
  });

  it('close() wakes it: both sides get the close frame', async () => {
    const c = await connection();
    c.proxy.close(4000, 'maintenance');
    expect((await c.client.closed)).to.deep.equal({ code: 4000, reason: 'maintenance' });
    const summary = await c.summary;
    expect(summary.error).to.equal(undefined);
    expect(summary.closedBy).to.equal('proxy');
    await until(() => c.upstreamEvents.includes('close:4000'));
  });

  it('destroy() ends it at once', async () => {
    const c = await connection();
    c.proxy.destroy();
    const summary = await c.summary;
    expect(summary.error).to.have.property('code', 'WSP_ERR_DESTROYED');
    expect(summary.client.aborted).to.equal(true);
    expect((await c.client.closed).code).to.equal(1006);
  });

  it('send() and the side getters wake it', async () => {
    const c = await connection();
    expect(c.proxy.send('client', { type: 'text', fin: true, payload: Buffer.from('injected'), rsv1: false })).to.equal(true);
    expect(dormant(c)).to.equal(false);
    await c.client.waitMessages(1);
    expect(c.client.messages).to.deep.equal(['injected']);
    expect(c.proxy.client?.readable).to.not.equal(undefined);
  });

  it('idleTimeout still applies: both sides get 1001 at the deadline', async () => {
    const clock = fakeTimers();
    const c = await connection({ idleTimeout: 60_000 });
    expect(dormant(c)).to.equal(true);
    await clock.tickAsync(59_000);
    expect(dormant(c)).to.equal(true);
    await clock.tickAsync(1_000);
    expect(dormant(c)).to.equal(false);
    clock.restore();
    expect((await c.client.closed).code).to.equal(1001);
    const summary = await c.summary;
    expect(summary.error).to.have.property('code', 'WSP_ERR_IDLE_TIMEOUT');
  });

  it('keepalive: the first ping wakes it, and the pong keeps it open', async () => {
    const clock = fakeTimers();
    const c = await connection({ pingInterval: 30_000 });
    expect(dormant(c)).to.equal(true);
    await clock.tickAsync(30_000);
    clock.restore();
    await until(() => c.client.events.some((event) => event.startsWith('ping:')));
    c.client.ws.send('still here');
    await c.client.waitMessages(1);
    expect(c.client.messages).to.deep.equal(['still here']);
  });

  it('a connection with user stages is never dormant (a stage may push frames of its own)', async () => {
    const c = await connection({ transforms: { client: () => [tap(() => undefined)] } });
    expect(dormant(c)).to.equal(false);
    c.client.ws.send('x');
    await c.client.waitMessages(1);
  });
});
