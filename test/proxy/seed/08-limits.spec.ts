/**
 * Port of lua-resty-websocket-proxy t/08-limits.t (seed-behaviour.md section 3, cases 29-35): over a
 * limit (strictly), the offending side gets 1009 "Payload Too Large" and its peer 1001 with an empty
 * reason; control frames are never counted; with aggregation, sizes and fragments add up per message.
 * `execute()` resolves for a limit close, and its summary tells what was sent.
 */
import { expect } from 'chai';
import type { ProxyOptions, ProxySummary, WebSocketProxy } from '../../../src/index.js';
import { SeedFixture, lines, pongBehaviour, spyLogger, type SeedProxy, type SpyLogger, type WsPeer } from './helpers.js';

const TOO_LARGE = { code: 1009, reason: 'Payload Too Large' };
const GOING_AWAY = { code: 1001, reason: '' };
/**
 * Lingering far over the test timeout: each close handshake must complete on its own (the upstream's
 * TCP close seen at once, even after its stream failed on the limit), not by a timeout.
 */
const LONG_LINGER = { lingeringTimeout: 60000, lingeringTime: 120000 };

/** Sends a ping and waits for the next event, which must be the pong "heartbeat server". */
async function pingPong(client: WsPeer, payload = 'ping'): Promise<void> {
  client.ws.ping(payload);
  expect(await client.events.next()).to.deep.equal({ type: 'pong', payload: 'heartbeat server' });
}

/** A pong upstream and a proxy in front of it, with `options`, and a connected `ws` client. */
async function pongSetup(fx: SeedFixture, options: ProxyOptions<WebSocketProxy>) {
  const upstream = await fx.upstream(pongBehaviour, { autoPong: false });
  const logger = spyLogger();
  const proxy = await fx.proxy({ upstream: `${upstream.url}/pong?repeat=1`, proxyOptions: { ...LONG_LINGER, ...options, logger } });
  const client = await fx.client(`${proxy.url}/proxy`);
  const u = await upstream.connections.next();
  return { proxy, client, u, logger };
}

/** Checks a limit close: who offended, what both sides were sent and that nothing failed. */
async function expectLimitClose(proxy: SeedProxy, logger: SpyLogger, offender: 'client' | 'upstream'): Promise<ProxySummary> {
  const { summary, error } = await proxy.nextResult();
  expect(error).to.equal(undefined);
  expect(summary).to.not.equal(undefined);
  const peer = offender === 'client' ? 'upstream' : 'client';
  expect(summary!.closedBy).to.equal('proxy');
  expect(summary![offender].closeSent).to.deep.equal(TOO_LARGE);
  expect(summary![peer].closeSent).to.deep.equal(GOING_AWAY);
  expect(lines(logger.error)).to.deep.equal([]);
  expect(lines(logger.info).some((line) => line.startsWith(`${offender} `) && line.endsWith(', closing'))).to.equal(true);
  return summary!;
}

describe('seed t/08-limits', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('29: clientMaxFrameSize 10: a 20-byte client frame gets the client 1009, the upstream 1001 and nothing else', async () => {
    const upstream = await fx.echoUpstream();
    const logger = spyLogger();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo?repeat=1`, proxyOptions: { ...LONG_LINGER, clientMaxFrameSize: 10, logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    // Exactly the limit passes.
    client.ws.send('exactly10!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'exactly10!' });
    client.ws.send('this is way too long');
    expect(await client.closed).to.deep.equal(TOO_LARGE);
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal(GOING_AWAY);
    expect(u.events.all).to.deep.equal([{ type: 'text', payload: 'exactly10!' }, { type: 'close', payload: '', code: 1001 }]);
    expect(client.events.all).to.deep.equal([{ type: 'text', payload: 'exactly10!' }, { type: 'close', payload: 'Payload Too Large', code: 1009 }]);
    const summary = await expectLimitClose(proxy, logger, 'client');
    expect(summary.client.frames).to.equal(1); // the offending frame was discarded
    expect(summary.upstream.closeReceived).to.deep.equal(GOING_AWAY); // ws echoes the 1001
  });

  it('30: upstreamMaxFrameSize 10: a 20-byte upstream frame gets the client 1001 and the upstream 1009', async () => {
    const upstream = await fx.upstream((peer) => peer.ws.send('this is way too long'));
    const logger = spyLogger();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { ...LONG_LINGER, upstreamMaxFrameSize: 10, logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    expect(await client.closed).to.deep.equal(GOING_AWAY);
    expect(client.events.all).to.deep.equal([{ type: 'close', payload: '', code: 1001 }]);
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal(TOO_LARGE);
    const summary = await expectLimitClose(proxy, logger, 'upstream');
    expect(summary.upstream.frames).to.equal(0);
  });

  it('31: clientMaxFrameSize 10 + aggregation: fragments add up per message; pings pass meanwhile; the 11th byte closes', async () => {
    const { proxy, client, u, logger } = await pongSetup(fx, { clientMaxFrameSize: 10, aggregateFragments: true });
    for (let i = 0; i < 5; i++) {
      client.ws.send('11', { fin: false });
      await pingPong(client, `ping ${i}`);
    }
    client.ws.send('1', { fin: false });
    expect(await client.closed).to.deep.equal(TOO_LARGE);
    expect(await u.closed).to.deep.equal(GOING_AWAY);
    // The upstream saw the pings only: the buffered fragments were discarded.
    expect(u.events.all.map((e) => e.type)).to.deep.equal(['ping', 'ping', 'ping', 'ping', 'ping', 'close']);
    await expectLimitClose(proxy, logger, 'client');
  });

  it('32: upstreamMaxFrameSize 10 + aggregation: 5 x "11" + "1" from the upstream gets the client 1001, the upstream 1009', async () => {
    const upstream = await fx.upstream((peer) => {
      for (let i = 0; i < 5; i++) peer.ws.send('11', { fin: false });
      peer.ws.send('1', { fin: false });
    });
    const logger = spyLogger();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { ...LONG_LINGER, upstreamMaxFrameSize: 10, aggregateFragments: true, logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    expect(await client.closed).to.deep.equal(GOING_AWAY);
    expect(client.events.all).to.deep.equal([{ type: 'close', payload: '', code: 1001 }]);
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal(TOO_LARGE);
    await expectLimitClose(proxy, logger, 'upstream');
  });

  it('33: control frames are not limited: 2-byte limits, 6-byte pings, 16-byte pongs and a close reason pass', async () => {
    const { proxy, client, u, logger } = await pongSetup(fx, { clientMaxFrameSize: 2, upstreamMaxFrameSize: 2 });
    await pingPong(client, 'test-1');
    await pingPong(client, 'test-2');
    client.ws.close(1002, 'goodbye');
    expect(await u.closed).to.deep.equal({ code: 1002, reason: 'goodbye' });
    expect(u.events.all).to.deep.equal([
      { type: 'ping', payload: 'test-1' },
      { type: 'ping', payload: 'test-2' },
      { type: 'close', payload: 'goodbye', code: 1002 },
    ]);
    expect(await client.closed).to.deep.equal({ code: 1002, reason: 'goodbye' });
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(lines(logger.info)).to.include('forwarding close with code: 1002, payload: "goodbye"');
    expect(summary?.closedBy).to.equal('client');
    expect(summary?.upstream.closeSent).to.deep.equal({ code: 1002, reason: 'goodbye' });
    expect(lines(logger.error)).to.deep.equal([]);
  });

  it('34: clientMaxFragments 5 + aggregation: the 6th fragment of a message closes; pings pass meanwhile', async () => {
    const { proxy, client, u, logger } = await pongSetup(fx, { clientMaxFragments: 5, aggregateFragments: true, debug: true });
    for (let i = 0; i < 5; i++) {
      client.ws.send('11', { fin: false });
      await pingPong(client);
    }
    client.ws.send('1', { fin: false });
    expect(await client.closed).to.deep.equal(TOO_LARGE);
    expect(await u.closed).to.deep.equal(GOING_AWAY);
    expect(u.events.all.map((e) => e.type)).to.deep.equal(['ping', 'ping', 'ping', 'ping', 'ping', 'close']);
    await expectLimitClose(proxy, logger, 'client');
    // debug: one line per frame (here the pings and pongs; fragments were buffered, never forwarded).
    const frameLines = lines(logger.debug).filter((line) => line.startsWith('[frame]'));
    expect(frameLines.filter((line) => line.includes('client --> upstream ping'))).to.have.length(5);
    expect(frameLines.filter((line) => line.includes('client <-- upstream pong'))).to.have.length(5);
  });

  it('34 (per message): the fragment count restarts with each message, with and without aggregation', async () => {
    for (const aggregateFragments of [true, false]) {
      const upstream = await fx.echoUpstream();
      const proxy = await fx.proxy({ upstream: upstream.url, proxyOptions: { ...LONG_LINGER, clientMaxFragments: 5, aggregateFragments } });
      const client = await fx.client(proxy.url);
      for (const word of ['first', 'again']) {
        for (let i = 0; i < 5; i++) client.ws.send(word[i]!, { fin: i === 4 });
        expect(await client.events.next(), `aggregate ${aggregateFragments}`).to.deep.equal({ type: 'text', payload: word });
      }
      // Without aggregation the limit counts fragments too (the seed's could never trigger).
      for (let i = 0; i < 6; i++) client.ws.send('x', { fin: false });
      expect(await client.closed, `aggregate ${aggregateFragments}`).to.deep.equal(TOO_LARGE);
    }
  });

  it('35: upstreamMaxFragments 5 + aggregation: the 6th upstream fragment gets the client 1001, the upstream 1009', async () => {
    const upstream = await fx.upstream((peer) => {
      for (let i = 0; i < 6; i++) peer.ws.send('11', { fin: false });
    });
    const logger = spyLogger();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { ...LONG_LINGER, upstreamMaxFragments: 5, aggregateFragments: true, logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    expect(await client.closed).to.deep.equal(GOING_AWAY);
    expect(client.events.all).to.deep.equal([{ type: 'close', payload: '', code: 1001 }]);
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal(TOO_LARGE);
    await expectLimitClose(proxy, logger, 'upstream');
  });
});
