/**
 * Port of lua-resty-websocket-proxy t/04-fragmented_frames.t (seed-behaviour.md section 3, cases
 * 15-22): fragments pass one by one without aggregation, are assembled into one frame of the first
 * fragment's type with it, and control frames interleaved in a message are forwarded at once.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import {
  closeFrame,
  continuationFrame,
  textFrame,
  type FrameType,
  type OnFrameResult,
  type ProxyRole,
  type WebSocketProxy,
} from '../../../src/index.js';
import { SeedFixture, type RawPeer, type Seen, type WsPeer } from './helpers.js';

type OnFrameArgs = [WebSocketProxy, ProxyRole, FrameType, Buffer, boolean, number | undefined];

/** A raw frame as a peer sees it. */
function seen(type: FrameType, payload: string, fin = true, code?: number): Seen {
  return code === undefined ? { type, fin, payload } : { type, fin, payload, code };
}

/** Sends `parts` as one fragmented text message (the first a text frame, then continuations). */
function sendFragments(ws: WsPeer['ws'], parts: string[]): void {
  parts.forEach((part, i) => ws.send(part, { fin: i === parts.length - 1 }));
}

/**
 * The seed's fragmenting upstream: answers each message "w1 w2 ..." with the fragments
 * `''`, `w1`, `w2`, ..., `''`.
 */
function splittingUpstream(peer: WsPeer): void {
  peer.ws.on('message', (data) => sendFragments(peer.ws, ['', ...data.toString().split(' '), '']));
}

/** Answers every close frame with the same close, then ends the connection (a server's duty). */
async function closeReply(peer: RawPeer, frame: Seen): Promise<void> {
  peer.send(closeFrame(frame.code, frame.payload));
  if (peer.role === 'server') peer.end();
  await peer.ended;
}

describe('seed t/04-fragmented_frames', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('15: without aggregation each client fragment reaches the upstream as it is (type and FIN)', async () => {
    const upstream = await fx.rawUpstream();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo` });
    const client = await fx.client(`${proxy.url}/proxy`);
    const u = await upstream.accept();
    client.ws.send('hello', { fin: false });
    expect(await u.frames.next()).to.deep.equal(seen('text', 'hello', false));
    u.send(textFrame('hello'));
    client.ws.send('world', { fin: true });
    expect(await u.frames.next()).to.deep.equal(seen('continuation', 'world', true));
    u.send(textFrame('world'));
    expect(await client.events.take(2)).to.deep.equal([
      { type: 'text', payload: 'hello' },
      { type: 'text', payload: 'world' },
    ]);
  });

  it('16: aggregation assembles client fragments into one text frame', async () => {
    const upstream = await fx.rawUpstream();
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { aggregateFragments: true } });
    const client = await fx.rawClient(`${proxy.url}/proxy`);
    const u = await upstream.accept();
    client.send(textFrame('hello', false), continuationFrame(' world', true));
    expect(await u.frames.next()).to.deep.equal(seen('text', 'hello world', true));
    u.send(textFrame('hello world'));
    expect(await client.frames.next()).to.deep.equal(seen('text', 'hello world', true));
    client.send(closeFrame(1000, 'done'));
    const close = await u.frames.next();
    expect(close).to.deep.equal(seen('close', 'done', true, 1000));
    await closeReply(u, close);
    expect(await client.frames.next()).to.deep.equal(seen('close', 'done', true, 1000));
    expect(u.frames.all).to.have.length(2);
  });

  it('17: aggregation assembles upstream fragments (empty first and last ones included) into one text frame', async () => {
    const upstream = await fx.upstream(splittingUpstream);
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { aggregateFragments: true } });
    const client = await fx.rawClient(`${proxy.url}/proxy`);
    client.send(textFrame('hello world'));
    expect(await client.frames.next()).to.deep.equal(seen('text', 'helloworld', true));
    client.send(closeFrame(1000));
    expect(await client.frames.next()).to.deep.equal(seen('close', '', true, 1000));
    expect(client.frames.all).to.have.length(2);
  });

  it('18: consecutive aggregated messages: buffer and type are reset between messages', async () => {
    const upstream = await fx.upstream(splittingUpstream);
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { aggregateFragments: true } });
    const client = await fx.rawClient(`${proxy.url}/proxy`);
    client.send(textFrame('hello', false), continuationFrame(' world', true));
    expect(await client.frames.next()).to.deep.equal(seen('text', 'helloworld', true));
    client.send(textFrame('goodbye', false), continuationFrame(' world', true));
    expect(await client.frames.next()).to.deep.equal(seen('text', 'goodbyeworld', true));
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([
      { type: 'text', payload: 'hello world' },
      { type: 'text', payload: 'goodbye world' },
    ]);
  });

  it('19: aggregation + onFrame: onFrame sees whole messages only (fin=true), twice in a row', async () => {
    const upstream = await fx.upstream(splittingUpstream);
    const onFrame = sinon.spy((...args: OnFrameArgs): OnFrameResult => `updated ${args[1]} frame`);
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { aggregateFragments: true, onFrame } });
    const client = await fx.rawClient(`${proxy.url}/proxy`);
    client.send(textFrame('hello', false), continuationFrame(' world', true));
    expect(await client.frames.next()).to.deep.equal(seen('text', 'updated upstream frame', true));
    client.send(textFrame('goodbye', false), continuationFrame(' world', true));
    expect(await client.frames.next()).to.deep.equal(seen('text', 'updated upstream frame', true));
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([
      { type: 'text', payload: 'updated client frame' },
      { type: 'text', payload: 'updated client frame' },
    ]);
    expect(onFrame.getCalls().map((c) => [c.args[1], c.args[2], c.args[3].toString(), c.args[4], c.args[5]])).to.deep.equal([
      ['client', 'text', 'hello world', true, undefined],
      ['upstream', 'text', 'updatedclientframe', true, undefined],
      ['client', 'text', 'goodbye world', true, undefined],
      ['upstream', 'text', 'updatedclientframe', true, undefined],
    ]);
  });

  it('20: no aggregation + onFrame: onFrame sees and rewrites every fragment, FIN and opcodes kept', async () => {
    const upstream = await fx.rawUpstream();
    const onFrame = sinon.spy((...args: OnFrameArgs): OnFrameResult => `updated ${args[1]} frame`);
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { onFrame } });
    const client = await fx.rawClient(`${proxy.url}/proxy`);
    const u = await upstream.accept();
    // The seed's upstream answers each frame (not each message) with '', updated, client, frame, ''.
    const answer = (): void =>
      u.send(textFrame('', false), continuationFrame('updated', false), continuationFrame('client', false),
        continuationFrame('frame', false), continuationFrame('', true));
    client.send(textFrame('hello', false), continuationFrame(' world', true));
    expect(await u.frames.take(2)).to.deep.equal([seen('text', 'updated client frame', false), seen('continuation', 'updated client frame', true)]);
    answer();
    answer();
    const message = [
      seen('text', 'updated upstream frame', false),
      seen('continuation', 'updated upstream frame', false),
      seen('continuation', 'updated upstream frame', false),
      seen('continuation', 'updated upstream frame', false),
      seen('continuation', 'updated upstream frame', true),
    ];
    expect(await client.frames.take(10)).to.deep.equal([...message, ...message]);
    const upstreamCalls: unknown[][] = [
      ['upstream', 'text', '', false, undefined],
      ['upstream', 'continuation', 'updated', false, undefined],
      ['upstream', 'continuation', 'client', false, undefined],
      ['upstream', 'continuation', 'frame', false, undefined],
      ['upstream', 'continuation', '', true, undefined],
    ];
    expect(onFrame.getCalls().map((c) => [c.args[1], c.args[2], c.args[3].toString(), c.args[4], c.args[5]])).to.deep.equal([
      ['client', 'text', 'hello', false, undefined],
      ['client', 'continuation', ' world', true, undefined],
      ...upstreamCalls,
      ...upstreamCalls,
    ]);
  });

  it('21: without aggregation, pings interleaved in an upstream message arrive in place, fragments as they are', async () => {
    const upstream = await fx.upstream((peer) => {
      peer.ws.send('', { fin: false });
      ['a', 'b', 'c'].forEach((part, i) => {
        peer.ws.send(part, { fin: false });
        peer.ws.ping(String(i + 1));
      });
      peer.ws.send('', { fin: true });
      peer.ws.close(1000, 'server close');
    });
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo` });
    const client = await fx.rawClient(`${proxy.url}/proxy`);
    const expected = [
      seen('text', '', false),
      seen('continuation', 'a', false),
      seen('ping', '1'),
      seen('continuation', 'b', false),
      seen('ping', '2'),
      seen('continuation', 'c', false),
      seen('ping', '3'),
      seen('continuation', '', true),
      seen('close', 'server close', true, 1000),
    ];
    const received = await client.frames.take(expected.length);
    expect(received).to.deep.equal(expected);
    await closeReply(client, received[received.length - 1]!);
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.closedBy).to.equal('upstream');
    expect(summary?.upstream.frames).to.equal(9);
    expect(client.frames.all).to.have.length(expected.length);
  });

  it('22: with aggregation, interleaved pings are forwarded at once, before the assembled message', async () => {
    const upstream = await fx.upstream((peer) => {
      peer.ws.send('', { fin: false });
      ['a', 'b', 'c'].forEach((part, i) => {
        peer.ws.send(part, { fin: false });
        peer.ws.ping(String(i + 1));
      });
      peer.ws.send('', { fin: true });
      peer.ws.close(1000, 'server close');
    });
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { aggregateFragments: true } });
    const client = await fx.rawClient(`${proxy.url}/proxy`);
    const expected = [
      seen('ping', '1'),
      seen('ping', '2'),
      seen('ping', '3'),
      seen('text', 'abc', true),
      seen('close', 'server close', true, 1000),
    ];
    const received = await client.frames.take(expected.length);
    expect(received).to.deep.equal(expected);
    await closeReply(client, received[received.length - 1]!);
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.upstream.frames).to.equal(5); // whole messages when aggregating
    expect(client.frames.all).to.have.length(expected.length);
  });
});
