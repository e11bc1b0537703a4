/**
 * Port of lua-resty-websocket-proxy t/07-invalid_usage.t (seed-behaviour.md section 3, cases
 * 25-28): repeated handshakes warn and change nothing; `execute()` before both handshakes rejects
 * with `WSP_ERR_NOT_CONNECTED` (the seed returned `nil, err`).
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { isWebSocketProxyError, writeHttpResponse, type WebSocketProxy } from '../../../src/index.js';
import { SeedFixture, lines, spyLogger } from './helpers.js';

/** How many timers are active in the process. */
function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

/** Resolves once a socket has closed. */
async function closed(socket: Duplex): Promise<void> {
  if (!socket.destroyed) await once(socket, 'close');
}

describe('seed t/07-invalid_usage', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('25: connectUpstream() again after connect() warns, keeps the first connection, and proxying works', async () => {
    const upstream = await fx.echoUpstream();
    const logger = spyLogger();
    let again: { protocol: string | undefined } | undefined;
    const proxy = await fx.proxy({
      upstream: `${upstream.url}/echo?token=secret`,
      proxyOptions: { logger },
      handshake: async (p, url, req, socket, head) => {
        await p.connect(url, req, socket, head);
        again = await p.connectUpstream(url);
      },
    });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    // The query (secrets) is not logged.
    expect(lines(logger.warn)).to.deep.equal([`connection with upstream at "${upstream.url}/echo" already established`]);
    expect(again).to.deep.include({ protocol: undefined });
    expect(upstream.connections.all).to.have.length(1);
  });

  it('26: connectClient() again after connect() warns and proxying works', async () => {
    const upstream = await fx.echoUpstream();
    const logger = spyLogger();
    const proxy = await fx.proxy({
      upstream: `${upstream.url}/echo`,
      proxyOptions: { logger },
      handshake: async (p, url, req, socket, head) => {
        await p.connect(url, req, socket, head);
        await p.connectClient(req, socket, head);
      },
    });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    expect(lines(logger.warn)).to.deep.equal(['client handshake already completed']);
  });

  it('27: execute() after only connectUpstream() rejects "client handshake not complete"', async () => {
    const upstream = await fx.echoUpstream();
    let executeError: unknown;
    let instance: WebSocketProxy | undefined;
    const proxy = await fx.proxy({
      upstream: `${upstream.url}/echo`,
      execute: false,
      // Long lingering: the upstream's TCP close must be seen at once, not after a timeout.
      proxyOptions: { lingeringTimeout: 60000, lingeringTime: 120000 },
      handshake: async (p, url, _req, socket) => {
        instance = p;
        await p.connectUpstream(url);
        try {
          await p.execute();
        } catch (err) {
          executeError = err;
        }
        // What the seed's test handler did: the client gets a 500; here the upstream is closed too.
        writeHttpResponse(socket, 500, { 'content-type': 'text/plain' }, 'failed proxying');
        p.close(1001);
      },
    });
    const timers = activeTimers();
    const response = await fx.rejectedClient(`${proxy.url}/proxy`);
    expect(response.statusCode).to.equal(500);
    expect(isWebSocketProxyError(executeError)).to.equal(true);
    expect((executeError as { code?: string }).code).to.equal('WSP_ERR_NOT_CONNECTED');
    expect((executeError as Error).message).to.contain('client handshake not complete');
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal({ code: 1001, reason: '' });
    // Once the upstream connection is gone, the proxy holds no timer for it.
    await closed(instance!.upstream!.readable.socket);
    expect(activeTimers()).to.equal(timers);
  });

  it('28: execute() after only connectClient() rejects "upstream connection not established"', async () => {
    const upstream = await fx.echoUpstream();
    const logger = spyLogger();
    let executeError: unknown;
    let instance: WebSocketProxy | undefined;
    const proxy = await fx.proxy({
      upstream: `${upstream.url}/echo`,
      execute: false,
      proxyOptions: { logger, debug: true },
      handshake: async (p, _url, req, socket, head) => {
        instance = p;
        await p.connectClient(req, socket, head);
        try {
          await p.execute();
        } catch (err) {
          executeError = err;
        }
        p.close(1011, 'no upstream');
      },
    });
    const timers = activeTimers();
    // The client's handshake succeeded; then the proxy closes it.
    const client = await fx.client(`${proxy.url}/proxy`);
    expect(await client.closed).to.deep.equal({ code: 1011, reason: 'no upstream' });
    await closed(instance!.client!.readable.socket);
    expect(activeTimers()).to.equal(timers);
    expect(isWebSocketProxyError(executeError)).to.equal(true);
    expect((executeError as { code?: string }).code).to.equal('WSP_ERR_NOT_CONNECTED');
    expect((executeError as Error).message).to.contain('upstream connection not established');
    expect(lines(logger.debug)).to.include.members(['completing client handshake', 'completed client handshake']);
    expect(upstream.connections.all).to.have.length(0);
  });
});
