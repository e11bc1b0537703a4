/**
 * The Kong EE behaviours of seed-behaviour.md section 3 ("not on main") that our evolved design
 * (section 2.12) adopts: 1001 to the other side on an abort, no in-flight message lost around a
 * close, the other side's messages relayed until its close reply, the default size limits.
 */
import { expect } from 'chai';
import { closeFrame, textFrame } from '../../../src/index.js';
import { SeedFixture, lines, spyLogger } from './helpers.js';

const TOO_LARGE = { code: 1009, reason: 'Payload Too Large' };
const GOING_AWAY = { code: 1001, reason: '' };

describe('seed Kong EE (evolved design)', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('EE: client abort (TCP gone, no close frame) -> the upstream receives close 1001', async () => {
    const upstream = await fx.echoUpstream();
    const logger = spyLogger();
    const proxy = await fx.proxy({ upstream: upstream.url, proxyOptions: { logger } });
    const client = await fx.client(proxy.url);
    client.ws.send('hello');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello' });
    client.ws.terminate();
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal(GOING_AWAY);
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.closedBy).to.equal('client');
    expect(summary?.client.aborted).to.equal(true);
    expect(summary?.client.closeReceived).to.equal(undefined);
    expect(summary?.upstream.closeSent).to.deep.equal(GOING_AWAY);
    expect(summary?.upstream.aborted).to.equal(false);
    expect(lines(logger.error)).to.deep.equal([]);
  });

  it('EE: upstream abort (TCP gone, no close frame) -> the client receives close 1001', async () => {
    const upstream = await fx.echoUpstream();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await fx.client(proxy.url);
    const u = await upstream.connections.next();
    u.ws.terminate();
    expect(await client.closed).to.deep.equal(GOING_AWAY);
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.closedBy).to.equal('upstream');
    expect(summary?.upstream.aborted).to.equal(true);
    expect(summary?.client.closeSent).to.deep.equal(GOING_AWAY);
    expect(summary?.client.closeReceived).to.deep.equal(GOING_AWAY); // ws echoes it
  });

  it('EE: in-flight messages are not lost around a close, in either direction', async () => {
    const count = 200;
    const words = Array.from({ length: count }, (_, i) => `message ${i}`);
    // Upstream to client: the messages and the close leave the upstream back to back.
    const upstream = await fx.upstream((peer) => {
      for (const word of words) peer.ws.send(word);
      peer.ws.close(1000, 'bye');
    });
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await fx.client(proxy.url);
    expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
    expect(client.events.all).to.deep.equal([
      ...words.map((payload) => ({ type: 'text', payload })),
      { type: 'close', payload: 'bye', code: 1000 },
    ]);
    // Client to upstream: the same, from the client, in one write.
    const silent = await fx.upstream(() => undefined);
    const proxy2 = await fx.proxy({ upstream: silent.url });
    const client2 = await fx.rawClient(proxy2.url);
    client2.send(...words.map((word) => textFrame(word)), closeFrame(1000, 'bye'));
    const u = await silent.connections.next();
    expect(await u.closed).to.deep.equal({ code: 1000, reason: 'bye' });
    expect(u.events.all).to.deep.equal([
      ...words.map((payload) => ({ type: 'text', payload })),
      { type: 'close', payload: 'bye', code: 1000 },
    ]);
    const { summary } = await proxy2.nextResult();
    expect(summary?.client.frames).to.equal(count + 1);
    expect(summary?.upstream.closeReceived).to.deep.equal({ code: 1000, reason: 'bye' });
  });

  it('EE: after the client closes, the upstream may send more messages before its close reply', async () => {
    const upstream = await fx.rawUpstream();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await fx.rawClient(proxy.url);
    const u = await upstream.accept();
    client.send(closeFrame(1000, 'bye'));
    expect(await u.frames.next()).to.deep.equal({ type: 'close', fin: true, payload: 'bye', code: 1000 });
    u.send(textFrame('late 1'), textFrame('late 2'));
    u.send(closeFrame(1000, 'bye'));
    u.end();
    expect(await client.frames.take(3)).to.deep.equal([
      { type: 'text', fin: true, payload: 'late 1' },
      { type: 'text', fin: true, payload: 'late 2' },
      { type: 'close', fin: true, payload: 'bye', code: 1000 },
    ]);
    // The proxy, the client's server, ends the TCP connection after the close handshake.
    await client.ended;
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.closedBy).to.equal('client');
    expect(summary?.upstream.frames).to.equal(3);
  });

  it('EE: after the upstream closes, the client may send more messages before its close reply', async () => {
    const upstream = await fx.rawUpstream();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await fx.rawClient(proxy.url);
    const u = await upstream.accept();
    u.send(closeFrame(4000, 'done'));
    expect(await client.frames.next()).to.deep.equal({ type: 'close', fin: true, payload: 'done', code: 4000 });
    client.send(textFrame('late 1'), textFrame('late 2'), closeFrame(4000, 'done'));
    expect(await u.frames.take(3)).to.deep.equal([
      { type: 'text', fin: true, payload: 'late 1' },
      { type: 'text', fin: true, payload: 'late 2' },
      { type: 'close', fin: true, payload: 'done', code: 4000 },
    ]);
    u.end();
    await client.ended;
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.closedBy).to.equal('upstream');
    expect(summary?.client.frames).to.equal(3);
  });

  it('EE: default limits: client 1 MiB (exactly passes, 1 byte more: 1009 / 1001)', async () => {
    const upstream = await fx.echoUpstream();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await fx.client(proxy.url);
    client.ws.send(Buffer.alloc(1024 * 1024, 1));
    expect((await client.events.next()).type).to.equal('binary');
    expect(client.messages[0]!.equals(Buffer.alloc(1024 * 1024, 1))).to.equal(true);
    client.ws.send(Buffer.alloc(1024 * 1024 + 1, 1));
    expect(await client.closed).to.deep.equal(TOO_LARGE);
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal(GOING_AWAY);
    expect(u.messages.map((m) => m.length)).to.deep.equal([1024 * 1024]);
  });

  it('EE: default limits: upstream 16 MiB (exactly passes, 1 byte more: 1009 to the upstream, 1001 to the client)', async () => {
    const upstream = await fx.upstream((peer) => {
      peer.ws.send(Buffer.alloc(16 * 1024 * 1024, 2));
      peer.ws.send(Buffer.alloc(16 * 1024 * 1024 + 1, 2));
    });
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await fx.client(proxy.url);
    expect(await client.closed).to.deep.equal(GOING_AWAY);
    expect(client.messages.map((m) => m.length)).to.deep.equal([16 * 1024 * 1024]);
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal(TOO_LARGE);
  });
});
