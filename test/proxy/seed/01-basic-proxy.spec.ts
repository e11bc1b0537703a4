/**
 * Port of lua-resty-websocket-proxy t/01-basic_proxy.t (seed-behaviour.md section 3, cases 1-6).
 */
import { expect } from 'chai';
import { closeFrame } from '../../../src/index.js';
import { SeedFixture, lines, pongBehaviour, spyLogger } from './helpers.js';

describe('seed t/01-basic_proxy', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('1: text round trip through the echo upstream', async () => {
    const upstream = await fx.echoUpstream();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo` });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([{ type: 'text', payload: 'hello world!' }]);
    client.ws.close(1000);
    expect(await client.closed).to.deep.equal({ code: 1000, reason: '' });
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.closedBy).to.equal('client');
    expect(summary?.client.frames).to.equal(2); // the text and the close
    expect(summary?.upstream.frames).to.equal(2);
  });

  it('2: ping from the client reaches the upstream, its pong comes back', async () => {
    const upstream = await fx.upstream(pongBehaviour, { autoPong: false });
    const proxy = await fx.proxy({ upstream: `${upstream.url}/pong` });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.ping('heartbeat client');
    expect(await client.events.next()).to.deep.equal({ type: 'pong', payload: 'heartbeat server' });
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([{ type: 'ping', payload: 'heartbeat client' }]);
  });

  it('3: binary round trip keeps the binary type and the bytes', async () => {
    const upstream = await fx.echoUpstream();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo` });
    const client = await fx.client(`${proxy.url}/proxy`);
    const bytes = Buffer.from('你好, WebSocket!', 'utf8');
    client.ws.send(bytes, { binary: true });
    expect(await client.events.next()).to.deep.equal({ type: 'binary', payload: '你好, WebSocket!' });
    expect(client.messages[0]!.equals(bytes)).to.equal(true);
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([{ type: 'binary', payload: '你好, WebSocket!' }]);
  });

  it('4: client-initiated close reaches the upstream, its (empty) close reply reaches the client', async () => {
    const upstream = await fx.rawUpstream();
    const logger = spyLogger();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    const u = await upstream.accept();
    client.ws.close(1000, 'goodbye');
    expect(await u.frames.next()).to.deep.equal({ type: 'close', fin: true, payload: 'goodbye', code: 1000 });
    u.send(closeFrame()); // the seed's send_close(): no code
    expect(await client.closed).to.deep.equal({ code: 1005, reason: '' });
    // The server (upstream) ends the TCP connection after the close handshake.
    u.end();
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary).to.deep.include({ closedBy: 'client' });
    expect(summary?.client.closeReceived).to.deep.equal({ code: 1000, reason: 'goodbye' });
    expect(summary?.upstream.closeSent).to.deep.equal({ code: 1000, reason: 'goodbye' });
    expect(summary?.upstream.closeReceived).to.deep.equal({ code: undefined, reason: '' });
    expect(summary?.client.closeSent).to.deep.equal({ code: undefined, reason: '' });
    expect(summary?.client.aborted).to.equal(false);
    expect(summary?.upstream.aborted).to.equal(false);
    expect(u.frames.all).to.have.length(1);
    expect(lines(logger.error)).to.deep.equal([]);
  });

  it('5: upstream-initiated empty close reaches the client (logged with no code)', async () => {
    const logger = spyLogger();
    const upstream = await fx.upstream((peer) => peer.ws.close());
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    expect(await client.closed).to.deep.equal({ code: 1005, reason: '' });
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(lines(logger.info)).to.include('forwarding close with code: undefined, payload: ""');
    expect(summary?.closedBy).to.equal('upstream');
    expect(summary?.upstream.closeReceived).to.deep.equal({ code: undefined, reason: '' });
    expect(summary?.client.closeSent).to.deep.equal({ code: undefined, reason: '' });
    // The client's reply (an empty close, as ws answers one) went back to the upstream.
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal({ code: 1005, reason: '' });
    expect(lines(logger.error)).to.deep.equal([]);
  });

  it('6: handshake order reversed (connectClient, then connectUpstream) still proxies', async () => {
    const upstream = await fx.echoUpstream();
    const proxy = await fx.proxy({
      upstream: `${upstream.url}/echo`,
      handshake: async (p, url, req, socket, head) => {
        await p.connectClient(req, socket, head);
        await p.connectUpstream(url);
      },
    });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([{ type: 'text', payload: 'hello world!' }]);
  });
});
