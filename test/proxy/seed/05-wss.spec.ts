/**
 * Port of lua-resty-websocket-proxy t/05-wss.t (seed-behaviour.md section 3, case 23). Our
 * certificate verification is on by default (the seed's was off): the test passes the fixture
 * certificate as `ca`, or turns verification off explicitly.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { isWebSocketProxyError } from '../../../src/index.js';
import { Queue, SeedFixture, echoBehaviour, recordWs, tlsFixture, type WsPeer } from './helpers.js';

/** A TLS `ws` echo upstream on 127.0.0.1 with the fixture certificate. */
async function wssEcho(): Promise<{ url: string; connections: Queue<WsPeer>; close(): Promise<void> }> {
  const server = https.createServer({ cert: tlsFixture.cert, key: tlsFixture.key });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const connections = new Queue<WsPeer>();
  wss.on('connection', (ws) => {
    const peer = recordWs(ws);
    echoBehaviour(peer);
    connections.push(peer);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `wss://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('seed t/05-wss', () => {
  let fx: SeedFixture;
  let upstream: Awaited<ReturnType<typeof wssEcho>>;
  beforeEach(async () => {
    fx = new SeedFixture();
    upstream = await wssEcho();
  });
  afterEach(async () => {
    await upstream.close();
    await fx.dispose();
  });

  it('23: proxies to a wss:// upstream with a self-signed certificate (trusted through `ca`)', async () => {
    const proxy = await fx.proxy({ upstream: `${upstream.url}/upstream`, connectOptions: { ca: tlsFixture.cert } });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([{ type: 'text', payload: 'hello world!' }]);
    client.ws.close(1000, 'bye');
    expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.upstream.closeReceived).to.deep.equal({ code: 1000, reason: 'bye' });
  });

  it('23 (seed way): rejectUnauthorized: false proxies without verification', async () => {
    const proxy = await fx.proxy({ upstream: `${upstream.url}/upstream`, connectOptions: { rejectUnauthorized: false } });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
  });

  it('23 (fixed flaw): verification is on by default: an untrusted certificate fails with 502', async () => {
    const proxy = await fx.proxy({ upstream: `${upstream.url}/upstream` });
    const response = await fx.rejectedClient(`${proxy.url}/proxy`);
    expect(response.statusCode).to.equal(502);
    const { connectError } = await proxy.nextResult();
    expect(isWebSocketProxyError(connectError)).to.equal(true);
    expect((connectError as { code?: string }).code).to.equal('WSP_ERR_UPSTREAM_UNREACHABLE');
    expect(upstream.connections.all).to.have.length(0);
  });
});
