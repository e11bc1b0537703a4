/**
 * Port of lua-resty-websocket-proxy t/02-timeouts.t (seed-behaviour.md section 3, cases 7-8).
 * `recvTimeout` keeps the seed's meaning: a log line, never a close. Small real timeouts trigger the
 * lines; nothing asserts on elapsed time.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { SeedFixture, lines, spyLogger } from './helpers.js';

const CLIENT_LINE = 'timeout receiving frame from client, reopening';
const UPSTREAM_LINE = 'timeout receiving frame from upstream, reopening';

describe('seed t/02-timeouts', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('7: recvTimeout logs a timeout for both sides while the client is quiet, and closes nothing', async () => {
    const upstream = await fx.echoUpstream();
    const logger = spyLogger();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { recvTimeout: 80, logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    // execute() armed its 80 ms timers before the client could see the 101: 120 ms later both fired.
    await sleep(120);
    expect(lines(logger.info)).to.include(CLIENT_LINE);
    expect(lines(logger.info)).to.include(UPSTREAM_LINE);
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([{ type: 'text', payload: 'hello world!' }]);
    expect(client.ws.readyState).to.equal(client.ws.OPEN);
    expect(u.ws.readyState).to.equal(u.ws.OPEN);
    expect(proxy.outcomes).to.have.length(1);
    expect(lines(logger.error)).to.deep.equal([]);
  });

  it('8: recvTimeout logs a timeout from the upstream while it delays its echo; the echo still arrives', async () => {
    const logger = spyLogger();
    const upstream = await fx.upstream((peer) => {
      peer.ws.on('message', (data, isBinary) => {
        void sleep(120).then(() => peer.ws.send(data, { binary: isBinary }));
      });
    });
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { recvTimeout: 80, logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send('hello world!');
    const u = await upstream.connections.next();
    expect(await u.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    // The echo left the upstream 120 ms after its last frame: the 80 ms timer had fired by then.
    expect(lines(logger.info)).to.include(UPSTREAM_LINE);
    expect(client.ws.readyState).to.equal(client.ws.OPEN);
    expect(u.ws.readyState).to.equal(u.ws.OPEN);
    expect(lines(logger.error)).to.deep.equal([]);
    // Still usable after the timeouts.
    client.ws.send('again');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'again' });
  });
});
