import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import { createProxyServer, type RefusalInfo, type ProxySummary, type Route, type WebSocketProxy, map, textFrame } from '../../src/index.js';
import { recordingLogger, wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { onCleanup, releaseAll } from '../proxy/rig.js';
import { echoUpstream, get, listening, upgradeTo } from './helpers.js';

/** A TCP server that counts connections and never answers: any contact shows in `count`. */
async function silentUpstream(): Promise<{ url: string; count: () => number }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`, count: () => count };
}

describe('server/ProxyServer', () => {
  afterEach(releaseAll);

  describe('routing', () => {
    it('forwards the rest of the path and the query, with named parameters, first match winning', async () => {
      const chat = await echoUpstream();
      const other = await echoUpstream();
      const { url } = await listening({
        routes: [
          { path: '/chat/:room', target: `${chat.url}/rooms/:room` },
          { path: '/', target: other.url },
        ],
      });
      const client = await wsClient(`${url}/chat/lobby/sub?token=a&x=1`);
      client.ws.send('hi');
      await client.waitMessages(1);
      expect(client.messages).to.deep.equal(['hi']);
      expect(chat.requests[0]!.url).to.equal('/rooms/lobby/sub?token=a&x=1');
      const second = await wsClient(`${url}/chatroom?y=2`);
      expect(other.requests[0]!.url).to.equal('/chatroom?y=2');
      client.ws.close();
      second.ws.close();
      await Promise.all([client.closed, second.closed]);
    });

    it('answers 404 to a path no route matches, without contacting any upstream', async () => {
      const upstream = await silentUpstream();
      const refusals: RefusalInfo[] = [];
      const { server, port } = await listening({ routes: [{ path: '/api', target: upstream.url }] });
      server.on('refuse', (info) => refusals.push(info));
      const res = await upgradeTo(port, '/apix');
      expect(res.statusCode).to.equal(404);
      expect(upstream.count()).to.equal(0);
      expect(refusals.map((r) => r.outcome)).to.deep.equal([404]);
    });

    it('calls an async target function with the request and parameters', async () => {
      const upstream = await echoUpstream();
      const seen: unknown[] = [];
      const { url } = await listening({
        routes: [{ path: '/t/:id', target: async (req, params) => {
          seen.push(req.headers['x-tenant'], params.id);
          return `${upstream.url}/tenant/${params.id}`;
        } }],
      });
      const client = await wsClient(`${url}/t/42`, undefined, { headers: { 'x-tenant': 'acme' } });
      expect(seen).to.deep.equal(['acme', '42']);
      expect(upstream.requests[0]!.url).to.equal('/tenant/42');
      client.ws.close();
      await client.closed;
    });

    it('answers 500 when a target function throws or returns an invalid URL, reporting the error', async () => {
      const errors: Error[] = [];
      const { server, port } = await listening({
        routes: [
          { path: '/throw', target: () => { throw new Error('resolver down'); } },
          { path: '/bad', target: () => 'not a url' },
        ],
      });
      server.on('error', (err) => errors.push(err));
      expect((await upgradeTo(port, '/throw')).statusCode).to.equal(500);
      expect((await upgradeTo(port, '/bad')).statusCode).to.equal(500);
      expect(errors.map((e) => e.message)).to.deep.equal(['resolver down', 'the route target function\'s URL is not a valid URL: "not a url"']);
    });

    it('refuses an invalid target URL at createProxyServer, not per connection', () => {
      expect(() => createProxyServer({ target: 'not-a-url' })).to.throw(TypeError, 'options.target is not a valid URL: "not-a-url"');
      expect(() => createProxyServer({ routes: [{ path: '/', target: 'http//x' }] })).to.throw(TypeError, 'options.routes[0].target');
    });

    it('routes by host', async () => {
      const a = await echoUpstream();
      const b = await echoUpstream();
      const { url } = await listening({ routes: [{ path: '/', host: 'a.test', target: a.url }, { path: '/', target: b.url }] });
      const first = await wsClient(url, undefined, { headers: { host: 'A.test:1234' } });
      const second = await wsClient(url);
      expect(a.connections()).to.equal(1);
      expect(b.connections()).to.equal(1);
      first.ws.close();
      second.ws.close();
      await Promise.all([first.closed, second.closed]);
    });
  });

  describe('answers without an upgrade', () => {
    it('answers 426 to plain requests and 200 on /healthz', async () => {
      const upstream = await echoUpstream();
      const { port } = await listening({ target: upstream.url });
      const plain = await get(port, '/');
      expect(plain.statusCode).to.equal(426);
      expect(plain.headers.upgrade).to.equal('websocket');
      const health = await get(port, '/healthz');
      expect(health.statusCode).to.equal(200);
      expect(health.body).to.equal('ok\n');
    });

    it('answers 400 to an invalid upgrade request before any hook or upstream', async () => {
      const upstream = await silentUpstream();
      let authorized = 0;
      const { port } = await listening({ target: upstream.url, authorize: () => { authorized++; return true; } });
      const res = await upgradeTo(port, '/', { 'Sec-WebSocket-Key': 'short' });
      expect(res.statusCode).to.equal(400);
      expect(authorized).to.equal(0);
      expect(upstream.count()).to.equal(0);
    });

    it('answers 502 when the upstream is down, and relays an upstream refusal', async () => {
      const closed = net.createServer();
      closed.listen(0, '127.0.0.1');
      await once(closed, 'listening');
      const deadPort = (closed.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const refusing = http.createServer((_req, res) => res.writeHead(401, { 'www-authenticate': 'Bearer' }).end('who?'));
      refusing.on('upgrade', (_req, socket: net.Socket) => socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 4\r\n\r\nwho?'));
      refusing.listen(0, '127.0.0.1');
      await once(refusing, 'listening');
      onCleanup(() => new Promise<void>((resolve) => refusing.close(() => resolve())));
      const { port, server } = await listening({
        routes: [
          { path: '/dead', target: `ws://127.0.0.1:${deadPort}` },
          { path: '/refusing', target: `ws://127.0.0.1:${(refusing.address() as net.AddressInfo).port}` },
        ],
      });
      const outcomes: (number | string)[] = [];
      server.on('refuse', (info) => outcomes.push(info.outcome));
      expect((await upgradeTo(port, '/dead')).statusCode).to.equal(502);
      const refused = await upgradeTo(port, '/refusing');
      expect(refused.statusCode).to.equal(401);
      expect(refused.headers['www-authenticate']).to.equal('Bearer');
      expect(refused.body).to.equal('who?');
      await waitFor(() => outcomes.length === 2);
      expect(outcomes).to.deep.equal([502, 401]);
    });
  });

  describe('hooks before the upstream', () => {
    it('authorize: false is 403, a refusal is answered as given, a throw is 500; none contacts the upstream', async () => {
      const upstream = await silentUpstream();
      const errors: Error[] = [];
      const { server, port } = await listening({
        target: upstream.url,
        authorize: (req, route: Route) => {
          expect(route.path).to.equal('/');
          const who = req.headers['x-user'];
          if (who === 'nobody') return false;
          if (who === 'anonymous') return { status: 401, headers: { 'www-authenticate': 'Bearer realm="x"' }, body: 'log in first' };
          if (who === 'slow') return Promise.resolve({ status: 429 });
          throw new Error('auth backend down');
        },
      });
      server.on('error', (err) => errors.push(err));
      const forbidden = await upgradeTo(port, '/', { 'x-user': 'nobody' });
      expect(forbidden.statusCode).to.equal(403);
      const anonymous = await upgradeTo(port, '/', { 'x-user': 'anonymous' });
      expect(anonymous.statusCode).to.equal(401);
      expect(anonymous.headers['www-authenticate']).to.equal('Bearer realm="x"');
      expect(anonymous.body).to.equal('log in first');
      const limited = await upgradeTo(port, '/', { 'x-user': 'slow' });
      expect(limited.statusCode).to.equal(429);
      expect(limited.body).to.equal('Too Many Requests');
      const failed = await upgradeTo(port, '/', { 'x-user': 'boom' });
      expect(failed.statusCode).to.equal(500);
      expect(errors.map((e) => e.message)).to.deep.equal(['auth backend down']);
      expect(upstream.count()).to.equal(0);
    });

    it('authorize: an answer that is not true, false or a refusal is a 500', async () => {
      const upstream = await silentUpstream();
      const errors: Error[] = [];
      const { server, port } = await listening({ target: upstream.url, authorize: () => ({ status: 200 }) });
      server.on('error', (err) => errors.push(err));
      expect((await upgradeTo(port, '/')).statusCode).to.equal(500);
      expect(errors[0]!.message).to.include('authorize must answer true, false or { status (400-599)');
    });

    it('authorize: a hook that never settles is answered 500 after handshakeTimeout', async () => {
      const upstream = await silentUpstream();
      const errors: Error[] = [];
      const { server, port } = await listening({ target: upstream.url, handshakeTimeout: 100, authorize: () => new Promise<boolean>(() => undefined) });
      server.on('error', (err) => errors.push(err));
      expect((await upgradeTo(port, '/')).statusCode).to.equal(500);
      expect(errors[0]!.message).to.equal('authorize did not settle within 100 ms');
      expect(upstream.count()).to.equal(0);
    });

    it('allowedOrigins as a list: other origins and none get 403; as a predicate: it decides', async () => {
      const upstream = await echoUpstream();
      const { port, url } = await listening({ target: upstream.url, allowedOrigins: ['https://app.example.com'] });
      expect((await upgradeTo(port, '/', { Origin: 'https://evil.example.com' })).statusCode).to.equal(403);
      expect((await upgradeTo(port, '/')).statusCode).to.equal(403);
      const client = await wsClient(url, undefined, { origin: 'https://APP.example.com' });
      client.ws.close();
      await client.closed;
      expect(upstream.connections()).to.equal(1);
      expect(upstream.requests[0]!.headers.origin).to.equal('https://APP.example.com');

      const seen: (string | undefined)[] = [];
      const second = await listening({ target: upstream.url, allowedOrigins: (origin) => { seen.push(origin); return origin === undefined; } });
      expect((await upgradeTo(second.port, '/', { Origin: 'https://a' })).statusCode).to.equal(403);
      const native = await wsClient(second.url);
      native.ws.close();
      await native.closed;
      expect(seen).to.deep.equal(['https://a', undefined]);
    });

    it('a client that resets while authorize runs crashes nothing and is counted as aborted', async () => {
      const upstream = await silentUpstream();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const refusals: RefusalInfo[] = [];
      const { server, port } = await listening({ target: upstream.url, authorize: async () => { await gate; return true; } });
      server.on('refuse', (info) => refusals.push(info));
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      await waitFor(() => server.listenerCount('refuse') > 0 && socket.bytesWritten > 0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      socket.resetAndDestroy();
      await new Promise((resolve) => setTimeout(resolve, 20));
      release();
      await waitFor(() => refusals.length === 1);
      expect(refusals[0]!.outcome).to.equal('aborted');
      expect(upstream.count()).to.equal(0);
    });
  });

  describe('forwarding', () => {
    it('sets and removes upstream request headers per server and route, adds X-Forwarded-*, relays the subprotocol', async () => {
      const upstream = await echoUpstream();
      const { url, port } = await listening({
        headers: { 'x-proxy': 'wsfp', cookie: null },
        routes: [{ path: '/', target: upstream.url, headers: { 'x-route': 'main', 'x-proxy': 'route' } }],
      });
      const client = await wsClient(url, ['other', 'chat'], { headers: { cookie: 'secret=1', 'x-keep': 'yes' } });
      expect(client.ws.protocol).to.equal('chat');
      const headers = upstream.requests[0]!.headers;
      expect(headers.cookie).to.equal(undefined);
      expect(headers['x-keep']).to.equal('yes');
      expect(headers['x-proxy']).to.equal('route');
      expect(headers['x-route']).to.equal('main');
      expect(headers['x-forwarded-for']).to.equal('127.0.0.1');
      expect(headers['x-forwarded-proto']).to.equal('ws');
      expect(headers['x-forwarded-host']).to.equal(`127.0.0.1:${port}`);
      expect(headers['sec-websocket-protocol']).to.equal('other, chat');
      client.ws.close();
      await client.closed;
    });

    it('xForwarded: false adds no X-Forwarded-* header', async () => {
      const upstream = await echoUpstream();
      const { url } = await listening({ target: upstream.url, xForwarded: false });
      const client = await wsClient(url);
      expect(upstream.requests[0]!.headers['x-forwarded-for']).to.equal(undefined);
      client.ws.close();
      await client.closed;
    });

    it('maxForwardedHeaders / maxForwardedHeaderBytes bound the client headers forwarded, the handshake\'s own always go', async () => {
      const upstream = await echoUpstream();
      const { url } = await listening({ target: upstream.url, maxForwardedHeaders: 5, maxForwardedHeaderBytes: 4096 });
      const extra: Record<string, string> = {};
      for (let i = 0; i < 40; i++) extra[`x-extra-${i}`] = `value ${i}`;
      const client = await wsClient(url, undefined, { headers: extra });
      const forwarded = upstream.requests[0]!.headers;
      const kept = Object.keys(forwarded).filter((name) => name.startsWith('x-extra-'));
      expect(kept.length).to.be.at.most(5);
      expect(forwarded['sec-websocket-key']).to.be.a('string');
      expect(forwarded.upgrade).to.equal('websocket');
      client.ws.close();
      await client.closed;
      expect(() => createProxyServer({ target: upstream.url, maxForwardedHeaders: -1 })).to.throw(TypeError, 'options.maxForwardedHeaders must be an integer >= 0');
      expect(() => createProxyServer({ target: upstream.url, maxForwardedHeaderBytes: 1.5 })).to.throw(TypeError, 'options.maxForwardedHeaderBytes must be an integer >= 0');
    });

    it('makes stages per connection from factories, and runs onFrame', async () => {
      const upstream = await echoUpstream();
      const ids = new Set<string>();
      const { url } = await listening({
        target: upstream.url,
        transforms: { client: (ctx) => { ids.add(ctx.id); return [map((frame) => (frame.type === 'text' ? textFrame(frame.payload.toString().toUpperCase()) : frame))]; } },
        onFrame: (_proxy, role, type, payload) => (role === 'upstream' && type === 'text' ? `${payload.toString()}!` : payload),
      });
      const first = await wsClient(url);
      const second = await wsClient(url);
      first.ws.send('one');
      second.ws.send('two');
      await Promise.all([first.waitMessages(1), second.waitMessages(1)]);
      expect(first.messages).to.deep.equal(['ONE!']);
      expect(second.messages).to.deep.equal(['TWO!']);
      expect(ids.size).to.equal(2);
      first.ws.close();
      second.ws.close();
      await Promise.all([first.closed, second.closed]);
    });

    it('refuses a stage array at createProxyServer, and answers 500 when a factory throws', async () => {
      expect(() => createProxyServer({ target: 'ws://127.0.0.1:1', transforms: { client: [map((f) => f)] as never } }))
        .to.throw(TypeError, 'options.transforms.client must be a function (ctx) => stages');
      expect(() => createProxyServer({ target: 'ws://127.0.0.1:1', clientMaxFrameSize: -1 })).to.throw(TypeError, 'clientMaxFrameSize');
      const upstream = await silentUpstream();
      const logger = recordingLogger();
      const { port } = await listening({ target: upstream.url, logger, transforms: { client: () => { throw new Error('factory broke'); } } });
      expect((await upgradeTo(port, '/')).statusCode).to.equal(500);
      // No 'error' listener: logged, not thrown.
      expect(logger.at('error').join('\n')).to.include('factory broke');
      expect(upstream.count()).to.equal(0);
    });
  });

  describe('events and connections', () => {
    it("emits 'connection' and 'close' with the route, and lists the live proxies", async () => {
      const upstream = await echoUpstream();
      const { server, url } = await listening({ routes: [{ path: '/', target: upstream.url, name: 'main' }] });
      const opened: [WebSocketProxy, string | undefined, string][] = [];
      const closed: [ProxySummary, string | undefined][] = [];
      server.on('connection', (proxy, req, route) => opened.push([proxy, req.url, route.name!]));
      server.on('close', (summary, route) => closed.push([summary, route.name]));
      const client = await wsClient(`${url}/x`);
      await waitFor(() => opened.length === 1);
      expect(opened[0]![1]).to.equal('/x');
      expect(opened[0]![2]).to.equal('main');
      expect(server.connections).to.deep.equal([opened[0]![0]]);
      client.ws.close(1000, 'bye');
      await client.closed;
      await waitFor(() => closed.length === 1);
      expect(closed[0]![0].client.closeReceived).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(closed[0]![0].error).to.equal(undefined);
      expect(closed[0]![1]).to.equal('main');
      expect(server.connections).to.deep.equal([]);
    });

    it("tells 'connection' listeners the upstream URL the connection went to", async () => {
      const upstream = await echoUpstream();
      const { server, url } = await listening({ routes: [{ path: '/chat/:room', target: `${upstream.url}/rooms/:room` }] });
      const urls: string[] = [];
      server.on('connection', (_proxy, _req, _route, upstreamUrl) => urls.push(upstreamUrl.href));
      const client = await wsClient(`${url}/chat/lobby?x=1`);
      await waitFor(() => urls.length === 1);
      expect(urls).to.deep.equal([`${upstream.url}/rooms/lobby?x=1`]);
      client.ws.close();
      await client.closed;
    });

    it('addTransforms() runs stages after the configured ones, on connections opened after it, until removed', async () => {
      const upstream = await echoUpstream();
      const seen: string[] = [];
      const { server, url } = await listening({
        target: upstream.url,
        transforms: { client: () => [map((frame) => ({ ...frame, payload: Buffer.from(`${frame.payload}+configured`) }))] },
      });
      const before = await wsClient(url);
      const remove = server.addTransforms({
        client: (ctx) => [map((frame) => {
          seen.push(`${ctx.role}:${frame.payload}`);
          return frame;
        })],
      });
      before.ws.send('old');
      await before.waitMessages(1);
      const after = await wsClient(url);
      after.ws.send('new');
      await after.waitMessages(1);
      expect(after.messages).to.deep.equal(['new+configured']);
      expect(seen).to.deep.equal(['client:new+configured']);
      remove();
      const last = await wsClient(url);
      last.ws.send('gone');
      await last.waitMessages(1);
      expect(seen).to.have.length(1);
      expect(() => server.addTransforms({ client: [] as never })).to.throw(TypeError, 'transforms.client must be a function');
      for (const client of [before, after, last]) client.ws.close();
      await Promise.all([before.closed, after.closed, last.closed]);
    });

    it('a listener that throws is logged and crashes nothing', async () => {
      const upstream = await echoUpstream();
      const logger = recordingLogger();
      const { server, url } = await listening({ target: upstream.url, logger });
      server.on('connection', () => { throw new Error('listener bug'); });
      const client = await wsClient(url);
      client.ws.send('still works');
      await client.waitMessages(1);
      expect(logger.at('error').join('\n')).to.include("a 'connection' listener threw: listener bug");
      client.ws.close();
      await client.closed;
    });

    it('handleUpgrade serves any http server, and handleRequest answers its health check', async () => {
      const upstream = await echoUpstream();
      const proxy = createProxyServer({ target: upstream.url });
      const server = http.createServer((req, res) => {
        if (!proxy.handleRequest(req, res)) res.end('app');
      });
      server.on('upgrade', proxy.handleUpgrade);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as net.AddressInfo).port;
      onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
      onCleanup(() => proxy.close({ timeout: 200 }));
      expect((await get(port, '/healthz')).statusCode).to.equal(200);
      expect((await get(port, '/other')).body).to.equal('app');
      const client = await wsClient(`ws://127.0.0.1:${port}/`);
      client.ws.send('attached');
      await client.waitMessages(1);
      expect(client.messages).to.deep.equal(['attached']);
      expect(proxy.address()).to.equal(null);
      client.ws.close();
      await client.closed;
    });

    it('listen() rejects on a port in use and can be called once', async () => {
      const upstream = await echoUpstream();
      const { server, port } = await listening({ target: upstream.url });
      const other = createProxyServer({ target: upstream.url });
      let error: NodeJS.ErrnoException | undefined;
      await other.listen(port, '127.0.0.1').catch((err: NodeJS.ErrnoException) => (error = err));
      expect(error?.code).to.equal('EADDRINUSE');
      expect(other.address()).to.equal(null);
      let again: Error | undefined;
      await server.listen(0).catch((err: Error) => (again = err));
      expect(again?.message).to.equal('the proxy server is already listening');
    });
  });
});
