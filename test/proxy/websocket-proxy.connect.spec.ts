import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { WebSocket, WebSocketServer } from 'ws';
import { PassThrough } from 'node:stream';
import { type HandshakeError, WebSocketProxy } from '../../src/index.js';
import { echo, startProxy } from '../helpers/proxy-harness.js';
import { portOf, upgradeHeaders, upgradeRequest, until } from '../helpers/proxy-peers.js';
import { onCleanup, releaseAll, wsRig } from './rig.js';

/** A TCP server that counts connections and never answers; closed at the end of the test. */
async function silentServer(): Promise<{ port: number; connections(): number }> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, connections: () => count };
}

describe('WebSocketProxy connect()', () => {
  afterEach(releaseAll);

  it('forwards the client\'s end-to-end headers and offered protocols upstream, minus hop-by-hop ones, plus X-Forwarded-*', async () => {
    // Without permessage-deflate: the client's extension offer must not reach the upstream, and
    // the proxy makes none of its own (with it, the proxy's own offer is checked in the deflate spec).
    const rig = await wsRig(echo, { perMessageDeflate: false }, { handleProtocols: (protocols) => (protocols.has('p2') ? 'p2' : false) });
    const client = await rig.client(['p1', 'p2'], {
      origin: 'https://app.example',
      headers: {
        Cookie: 'session=abc; theme=dark',
        Authorization: 'Bearer token-1',
        'User-Agent': 'test-agent/1.0',
        'X-Custom': 'custom value',
        'Keep-Alive': 'timeout=5',
        'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0',
        'Sec-WebSocket-Extensions': 'permessage-deflate',
      },
    });
    expect(client.ws.protocol).to.equal('p2');
    const req = rig.upstreamRequests[0]!;
    const headers = req.headers;
    expect(headers).to.deep.include({
      cookie: 'session=abc; theme=dark',
      authorization: 'Bearer token-1',
      'user-agent': 'test-agent/1.0',
      'x-custom': 'custom value',
      origin: 'https://app.example',
      'sec-websocket-protocol': 'p1, p2',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'ws',
      'x-forwarded-host': `127.0.0.1:${portOf(rig.proxy.url)}`,
      host: `127.0.0.1:${portOf(rig.upstreamUrl)}`,
      'sec-websocket-version': '13',
      upgrade: 'websocket',
      connection: 'Upgrade',
    });
    expect(headers).not.to.have.any.keys('keep-alive', 'proxy-authorization', 'sec-websocket-extensions');
    expect(headers['sec-websocket-key']).to.match(/^[A-Za-z0-9+/]{22}==$/);
    client.ws.send('works');
    await client.waitMessages(1);
    expect(client.messages).to.deep.equal(['works']);
  });

  it('connect options override the forwarded headers, protocols and origin', async () => {
    const rig = await wsRig(echo, undefined, {
      connectOptions: {
        headers: { 'User-Agent': 'proxy-agent/2', 'x-custom': 'overridden', 'X-Added': 'yes' },
        origin: 'https://proxy.example',
        protocols: ['internal'],
      },
      handleProtocols: (protocols) => (protocols.has('internal') ? 'internal' : false),
    });
    const client = await rig.client(undefined, { origin: 'https://app.example', headers: { 'User-Agent': 'test-agent/1.0', 'X-Custom': 'original' } });
    const headers = rig.upstreamRequests[0]!.headers;
    expect(headers).to.deep.include({
      'user-agent': 'proxy-agent/2',
      'x-custom': 'overridden',
      'x-added': 'yes',
      origin: 'https://proxy.example',
      'sec-websocket-protocol': 'internal',
    });
    // The client did not offer the upstream's protocol: none is answered to it.
    expect(client.ws.protocol).to.equal('');
    const { proxy } = await rig.proxy.nextOutcome();
    expect(proxy.protocol).to.equal('internal');
  });

  it('the client\'s 101 carries the upstream-selected subprotocol (not the whole list) and relayable upstream headers', async () => {
    const rig = await wsRig(echo, undefined, { handleProtocols: () => 'chat.v2' });
    rig.upstreamServer.on('headers', (headers: string[]) => headers.push('Set-Cookie: upstream=1'));
    const ws = new WebSocket(rig.proxy.url, ['chat.v1', 'chat.v2', 'chat.v3'], { perMessageDeflate: false });
    onCleanup(() => ws.terminate());
    const upgraded = once(ws, 'upgrade') as Promise<[http.IncomingMessage]>;
    await once(ws, 'open');
    const [res] = await upgraded;
    expect(res.headers['sec-websocket-protocol']).to.equal('chat.v2');
    expect(res.headers['set-cookie']).to.deep.equal(['upstream=1']);
    expect(res.headers).not.to.have.property('sec-websocket-extensions');
    expect(ws.protocol).to.equal('chat.v2');
  });

  it('an unreachable upstream: the client is not upgraded but answered 502', async () => {
    const free = await silentServer();
    // Listened on, then closed: nothing listens on the port any more.
    const port = free.port;
    await releaseAll();
    const proxy = await startProxy({ upstream: `ws://127.0.0.1:${port}/` });
    onCleanup(() => proxy.close());
    const response = await upgradeRequest(portOf(proxy.url), upgradeHeaders());
    expect(response.statusCode).to.equal(502);
    expect(response.body).to.equal('Bad Gateway');
    const { connectError } = await (await proxy.nextOutcome()).done;
    expect((connectError as HandshakeError).code).to.equal('WSP_ERR_UPSTREAM_UNREACHABLE');
  });

  it('a failed connect() destroys the proxy\'s stages (one holding a file or a timer is told), and so does destroy() before execute()', async () => {
    const free = await silentServer();
    const port = free.port;
    await releaseAll();
    const made: PassThrough[] = [];
    const stages = (): PassThrough[] => {
      const stage = new PassThrough({ objectMode: true });
      made.push(stage);
      return [stage];
    };
    const proxy = await startProxy({ upstream: `ws://127.0.0.1:${port}/`, proxyOptions: () => ({ transforms: { client: stages, upstream: stages } }) });
    onCleanup(() => proxy.close());
    expect((await upgradeRequest(portOf(proxy.url), upgradeHeaders())).statusCode).to.equal(502);
    await (await proxy.nextOutcome()).done;
    expect(made).to.have.length(2);
    expect(made.every((stage) => stage.destroyed)).to.equal(true);

    const idle = new WebSocketProxy({ transforms: { client: stages } });
    expect(made[2]!.destroyed).to.equal(false);
    idle.destroy();
    await idle.execute();
    expect(made[2]!.destroyed).to.equal(true);
  });

  it('an upstream answering another status: its status, headers and body are relayed to the client', async () => {
    const upstream = http.createServer();
    upstream.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Reason: no entry\r\nContent-Length: 9\r\n\r\nforbidden');
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    onCleanup(() => new Promise<void>((resolve) => {
      upstream.closeAllConnections();
      upstream.close(() => resolve());
    }));
    const proxy = await startProxy({ upstream: `ws://127.0.0.1:${(upstream.address() as AddressInfo).port}/` });
    onCleanup(() => proxy.close());
    const response = await upgradeRequest(portOf(proxy.url), upgradeHeaders());
    expect(response.statusCode).to.equal(403);
    expect(response.headers['x-reason']).to.equal('no entry');
    expect(response.headers['content-type']).to.equal('text/plain');
    expect(response.body).to.equal('forbidden');
    const { connectError } = await (await proxy.nextOutcome()).done;
    expect(connectError).to.deep.include({ code: 'WSP_ERR_UPSTREAM_REJECTED', statusCode: 403 });
  });

  const badRequests: { name: string; headers: () => Record<string, string>; method?: string; status: number; reason: string }[] = [
    { name: 'no Sec-WebSocket-Key', headers: () => { const h = upgradeHeaders(); delete h['Sec-WebSocket-Key']; return h; }, status: 400, reason: 'missing Sec-WebSocket-Key header' },
    { name: 'Upgrade: h2c', headers: () => upgradeHeaders({ Upgrade: 'h2c' }), status: 400, reason: 'Upgrade header does not contain "websocket"' },
    { name: 'a POST', headers: () => upgradeHeaders(), method: 'POST', status: 400, reason: 'method POST is not GET' },
    { name: 'version 8', headers: () => upgradeHeaders({ 'Sec-WebSocket-Version': '8' }), status: 426, reason: 'unsupported Sec-WebSocket-Version "8"' },
  ];
  for (const bad of badRequests) {
    it(`a bad client request (${bad.name}) gets ${bad.status} and no upstream connection is made`, async () => {
      const upstream = await silentServer();
      const proxy = await startProxy({ upstream: `ws://127.0.0.1:${upstream.port}/` });
      onCleanup(() => proxy.close());
      const response = await upgradeRequest(portOf(proxy.url), bad.headers(), bad.method);
      expect(response.statusCode).to.equal(bad.status);
      expect(response.body).to.equal(`${bad.reason}\n`);
      if (bad.status === 426) expect(response.headers['sec-websocket-version']).to.equal('13');
      const { connectError } = await (await proxy.nextOutcome()).done;
      expect(connectError).to.deep.include({ code: 'WSP_ERR_CLIENT_HANDSHAKE', statusCode: bad.status });
      expect(upstream.connections()).to.equal(0);
    });
  }

  it('a client that goes away during the upstream handshake: the upstream handshake is aborted at once (its TCP connection dropped)', async () => {
    const upstreamClosed: [number, string][] = [];
    let releaseHandshake: (() => void) | undefined;
    const wss = new WebSocketServer({
      host: '127.0.0.1', port: 0, perMessageDeflate: false,
      verifyClient: (_info, callback) => {
        releaseHandshake = () => callback(true);
      },
    });
    await once(wss, 'listening');
    wss.on('connection', (ws) => ws.on('close', (code, reason) => upstreamClosed.push([code, reason.toString()])));
    onCleanup(() => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => resolve());
    }));
    const proxy = await startProxy({ upstream: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/` });
    onCleanup(() => proxy.close());
    const socket = net.connect(portOf(proxy.url), '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    const headers = upgradeHeaders({ Host: `127.0.0.1:${portOf(proxy.url)}` });
    socket.write(`GET / HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    await until(() => releaseHandshake !== undefined);
    socket.destroy();
    await once(socket, 'close');
    releaseHandshake!();
    const { connectError } = await (await proxy.nextOutcome()).done;
    expect(connectError).to.have.property('code', 'WSP_ERR_CLIENT_HANDSHAKE');
    await until(() => upstreamClosed.length === 1);
    // No WebSocket connection existed on the proxy's side: nothing to send a close frame on.
    expect(upstreamClosed).to.deep.equal([[1006, '']]);
  });
});
