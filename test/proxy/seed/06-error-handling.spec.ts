/**
 * Port of lua-resty-websocket-proxy t/06-error_handling.t (seed-behaviour.md section 3, case 24),
 * plus unmerged PR #15's TEST 2 (a non-101 upstream answer relayed to the client). Where the seed
 * left the client to the caller (`ngx.exit(444)`), `connect()` answers it: 502, or the upstream's
 * own response.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type net from 'node:net';
import { HandshakeError, isWebSocketProxyError } from '../../../src/index.js';
import { SeedFixture, lines, spyLogger } from './helpers.js';

describe('seed t/06-error_handling', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('24: wss:// to a plain ws port: connect() rejects (upstream unreachable) and the client gets 502, never a 101', async () => {
    const upstream = await fx.echoUpstream();
    const logger = spyLogger();
    const plainPort = new URL(upstream.url).port;
    const proxy = await fx.proxy({ upstream: `wss://127.0.0.1:${plainPort}/upstream`, proxyOptions: { logger } });
    const response = await fx.rejectedClient(`${proxy.url}/proxy`);
    expect(response.statusCode).to.equal(502);
    expect(response.headers.upgrade).to.equal(undefined);
    expect(response.body).to.equal('Bad Gateway');
    const { connectError, summary, error } = await proxy.nextResult();
    expect(isWebSocketProxyError(connectError)).to.equal(true);
    expect((connectError as { code?: string }).code).to.equal('WSP_ERR_UPSTREAM_UNREACHABLE');
    expect(summary).to.equal(undefined);
    expect(error).to.equal(undefined);
    expect(upstream.connections.all).to.have.length(0);
    expect(lines(logger.error)).to.deep.equal([]);
  });

  it('PR #15: an upstream answering 403 is relayed to the client: status, headers and body', async () => {
    const server = http.createServer();
    const sockets = new Set<net.Socket>();
    server.on('connection', (socket: net.Socket) => sockets.add(socket));
    server.on('upgrade', (_req, socket: net.Socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Denied-By: upstream\r\n' +
        'Content-Length: 14\r\nConnection: close\r\n\r\nno entry here\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const proxy = await fx.proxy({ upstream: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/forbidden` });
      const response = await fx.rejectedClient(`${proxy.url}/proxy`);
      expect(response.statusCode).to.equal(403);
      expect(response.headers['x-denied-by']).to.equal('upstream');
      expect(response.headers['content-type']).to.equal('text/plain');
      expect(response.body).to.equal('no entry here\n');
      const { connectError } = await proxy.nextResult();
      expect(connectError).to.be.instanceOf(HandshakeError);
      const rejected = connectError as HandshakeError;
      expect(rejected.code).to.equal('WSP_ERR_UPSTREAM_REJECTED');
      expect(rejected.statusCode).to.equal(403);
      expect(rejected.headers?.['x-denied-by']).to.equal('upstream');
      expect(rejected.body?.toString()).to.equal('no entry here\n');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
