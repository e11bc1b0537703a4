import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { type RefusalInfo } from '../../src/index.js';
import { wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { onCleanup, releaseAll } from '../proxy/rig.js';
import { echoUpstream, listening, upgradeTo } from './helpers.js';

describe('server/ProxyServer limits', () => {
  afterEach(releaseAll);

  it('maxConnections: one more is 503 with Retry-After, and a slot frees when a connection ends', async () => {
    const upstream = await echoUpstream();
    const { server, url, port } = await listening({ target: upstream.url, maxConnections: 2, retryAfter: 7 });
    const first = await wsClient(url);
    const second = await wsClient(url);
    const refused = await upgradeTo(port, '/');
    expect(refused.statusCode).to.equal(503);
    expect(refused.headers['retry-after']).to.equal('7');
    expect(refused.body).to.equal('Too many connections');
    expect(upstream.connections()).to.equal(2);
    first.ws.close();
    await first.closed;
    await waitFor(() => server.connections.length === 1);
    const third = await wsClient(url);
    third.ws.close();
    second.ws.close();
    await Promise.all([second.closed, third.closed]);
  });

  it('maxConnectionsPerIp counts handshakes under way and live connections per address', async () => {
    const upstream = await echoUpstream();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const refusals: RefusalInfo[] = [];
    const { server, url, port } = await listening({
      target: upstream.url,
      maxConnectionsPerIp: 1,
      authorize: async () => { await gate; return true; },
    });
    server.on('refuse', (info) => refusals.push(info));
    const pending = wsClient(url);
    await waitFor(() => (server as unknown as { slots: number }).slots === 1);
    const refused = await upgradeTo(port, '/');
    expect(refused.statusCode).to.equal(503);
    expect(refused.body).to.equal('Too many connections from this address');
    release();
    const client = await pending;
    expect((await upgradeTo(port, '/')).statusCode).to.equal(503);
    client.ws.close();
    await client.closed;
    await waitFor(() => server.connections.length === 0);
    const next = await wsClient(url);
    next.ws.close();
    await next.closed;
    expect(refusals.map((r) => r.outcome)).to.deep.equal([503, 503]);
  });

  it('handshakeTimeout drops a client that dribbles its request headers (slowloris)', async () => {
    const upstream = await echoUpstream();
    const { port } = await listening({ target: upstream.url, handshakeTimeout: 300 });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const dribble = setInterval(() => socket.write('X-Slow: 1\r\n'), 50);
    onCleanup(() => clearInterval(dribble));
    await once(socket, 'close');
    clearInterval(dribble);
    expect(received).to.match(/^HTTP\/1\.1 408 /);
    expect(upstream.connections()).to.equal(0);
  });

  it('maxHeaderSize bounds the request head: a larger one is 431', async () => {
    const upstream = await echoUpstream();
    const { port } = await listening({ target: upstream.url, maxHeaderSize: 4096 });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8192)}\r\n\r\n`);
    await once(socket, 'close');
    expect(received).to.match(/^HTTP\/1\.1 431 /);
    expect(upstream.connections()).to.equal(0);
  });

  it('refuses limits that are not positive integers', async () => {
    const { createProxyServer } = await import('../../src/index.js');
    expect(() => createProxyServer({ target: 'ws://127.0.0.1:1', maxConnections: 0 })).to.throw(TypeError, 'options.maxConnections must be an integer >= 1 or Infinity');
    expect(() => createProxyServer({ target: 'ws://127.0.0.1:1', maxConnectionsPerIp: 1.5 })).to.throw(TypeError, 'options.maxConnectionsPerIp');
    expect(() => createProxyServer({ target: 'ws://127.0.0.1:1', handshakeTimeout: -1 })).to.throw(TypeError, 'options.handshakeTimeout');
    expect(() => createProxyServer({ target: 'ws://127.0.0.1:1', routes: [] })).to.throw(TypeError, 'exclusive');
    expect(() => createProxyServer({} as never)).to.throw(TypeError, 'options.routes or options.target is required');
    // A misspelt option is an error, not a limit silently left off.
    expect(() => createProxyServer({ target: 'ws://127.0.0.1:1', maxConection: 5 } as never)).to.throw(TypeError, 'options.maxConection is not an option of createProxyServer');
  });
});
