/**
 * Port of lua-resty-websocket-proxy t/03-on_frame_callback.t (seed-behaviour.md section 3, cases
 * 9-14), with our API: `onFrame(proxy, role, type, payload: Buffer, fin, code)`, `{ payload, code }`
 * to rewrite a close, and a close frame that cannot be dropped.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import type { FrameType, OnFrameResult, ProxyRole, WebSocketProxy } from '../../../src/index.js';
import { SeedFixture, lines, spyLogger, type WsPeer } from './helpers.js';

type OnFrameArgs = [WebSocketProxy, ProxyRole, FrameType, Buffer, boolean, number | undefined];

/** A sinon spy around an onFrame implementation, typed for its arguments. */
function onFrameSpy(impl: (...args: OnFrameArgs) => OnFrameResult) {
  return sinon.spy(impl);
}

/** The spy's calls as plain data: [role, type, payload as text, fin, code]. */
function calls(spy: sinon.SinonSpy<OnFrameArgs, OnFrameResult>): [ProxyRole, FrameType, string, boolean, number | undefined][] {
  return spy.getCalls().map((call) => {
    const [, role, type, payload, fin, code] = call.args;
    expect(Buffer.isBuffer(payload), 'payload is a Buffer').to.equal(true);
    return [role, type, payload.toString('utf8'), fin, code];
  });
}

/** Upstream that sends `frames` on connection: strings as text, `{ close }` as a close frame. */
function sender(...frames: (string | { close: [number, string] })[]) {
  return (peer: WsPeer): void => {
    for (const frame of frames) {
      if (typeof frame === 'string') peer.ws.send(frame);
      else peer.ws.close(...frame.close);
    }
  };
}

describe('seed t/03-on_frame_callback', () => {
  let fx: SeedFixture;
  beforeEach(() => {
    fx = new SeedFixture();
  });
  afterEach(() => fx.dispose());

  it('9: onFrame returning the payload is called once per frame with (proxy, role, type, payload, fin, code)', async () => {
    const upstream = await fx.echoUpstream();
    const onFrame = onFrameSpy((_p, _role, _type, payload) => payload);
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { onFrame } });
    const client = await fx.client(`${proxy.url}/proxy`);
    const outcome = await proxy.nextOutcome();
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'hello world!' });
    expect(onFrame.callCount).to.equal(2);
    const [first, second] = onFrame.getCalls();
    expect(first!.args[0]).to.equal(outcome.proxy);
    expect(second!.args[0]).to.equal(outcome.proxy);
    expect(first!.args.slice(1)).to.deep.equal(['client', 'text', Buffer.from('hello world!'), true, undefined]);
    expect(second!.args.slice(1)).to.deep.equal(['upstream', 'text', Buffer.from('hello world!'), true, undefined]);
    expect(first!.args).to.have.length(6);
    // Close frames pass through onFrame too, the reason as payload and the status as code.
    client.ws.close(1000, 'bye');
    expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
    await outcome.done;
    expect(calls(onFrame).slice(2)).to.deep.equal([
      ['client', 'close', 'bye', true, 1000],
      ['upstream', 'close', 'bye', true, 1000],
    ]);
  });

  it('10: onFrame rewrites text payloads in both directions', async () => {
    const upstream = await fx.echoUpstream();
    const onFrame = onFrameSpy((_p, role) => `updated ${role} frame`);
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { onFrame } });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send('hello world!');
    expect(await client.events.next()).to.deep.equal({ type: 'text', payload: 'updated upstream frame' });
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([{ type: 'text', payload: 'updated client frame' }]);
    expect(calls(onFrame)).to.deep.equal([
      ['client', 'text', 'hello world!', true, undefined],
      ['upstream', 'text', 'updated client frame', true, undefined],
    ]);
  });

  it('11: onFrame rewrites a binary payload and the binary opcode is kept', async () => {
    const upstream = await fx.echoUpstream();
    const onFrame = onFrameSpy((_p, role, type) => `updated ${role} frame (${type})`);
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { onFrame } });
    const client = await fx.client(`${proxy.url}/proxy`);
    client.ws.send(Buffer.from([0x00, 0xff, 0x10]), { binary: true });
    expect(await client.events.next()).to.deep.equal({ type: 'binary', payload: 'updated upstream frame (binary)' });
    const u = await upstream.connections.next();
    expect(u.events.all).to.deep.equal([{ type: 'binary', payload: 'updated client frame (binary)' }]);
    expect(calls(onFrame)).to.deep.equal([
      ['client', 'binary', '\u0000\ufffd\u0010', true, undefined],
      ['upstream', 'binary', 'updated client frame (binary)', true, undefined],
    ]);
  });

  it('12: onFrame rewrites a close reason; a string return keeps the code (the seed way), { payload, code } sets both', async () => {
    const rewrite = (_p: WebSocketProxy, role: ProxyRole, type: FrameType, payload: Buffer, _fin: boolean, code: number | undefined): OnFrameResult =>
      type === 'close' && role === 'upstream' ? `updated ${role} frame (typ: ${type}, code: ${code})` : payload;
    for (const style of ['string', 'object'] as const) {
      const upstream = await fx.upstream(sender({ close: [1000, 'server close'] }));
      const onFrame = onFrameSpy((...args) => {
        const out = rewrite(...args);
        return style === 'object' && args[2] === 'close' && args[1] === 'upstream' ? { payload: out as string, code: 1000 } : out;
      });
      const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { onFrame } });
      const client = await fx.client(`${proxy.url}/proxy`);
      expect(await client.closed, style).to.deep.equal({ code: 1000, reason: 'updated upstream frame (typ: close, code: 1000)' });
      const { summary } = await proxy.nextResult();
      expect(calls(onFrame)[0], style).to.deep.equal(['upstream', 'close', 'server close', true, 1000]);
      expect(summary?.client.closeSent, style).to.deep.equal({ code: 1000, reason: 'updated upstream frame (typ: close, code: 1000)' });
    }
  });

  it('13: onFrame rewrites a close code with { code } and the reason is kept', async () => {
    const upstream = await fx.upstream(sender({ close: [1000, 'server close'] }));
    const onFrame = onFrameSpy((_p, role, type, payload) => (type === 'close' && role === 'upstream' ? { payload, code: 1001 } : payload));
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { onFrame } });
    const client = await fx.client(`${proxy.url}/proxy`);
    expect(await client.closed).to.deep.equal({ code: 1001, reason: 'server close' });
    // The client's reply (ws echoes the code it got: 1001) reaches the upstream unchanged.
    const u = await upstream.connections.next();
    expect(await u.closed).to.deep.equal({ code: 1001, reason: 'server close' });
    const { summary } = await proxy.nextResult();
    expect(summary?.upstream.closeReceived).to.deep.equal({ code: 1000, reason: 'server close' });
    expect(summary?.client.closeSent).to.deep.equal({ code: 1001, reason: 'server close' });
    expect(summary?.client.closeReceived).to.deep.equal({ code: 1001, reason: 'server close' });
    // With only a code in the object, the reason is kept too.
    const upstream2 = await fx.upstream(sender({ close: [1000, 'server close'] }));
    const proxy2 = await fx.proxy({
      upstream: upstream2.url,
      proxyOptions: { onFrame: (_p, role, type, payload) => (type === 'close' && role === 'upstream' ? { code: 4000 } : payload) },
    });
    const client2 = await fx.client(proxy2.url);
    expect(await client2.closed).to.deep.equal({ code: 4000, reason: 'server close' });
  });

  it('14: onFrame returning null drops a frame; the others arrive in order', async () => {
    const upstream = await fx.upstream(sender('a', 'b', 'drop me', 'c', { close: [1000, 'server close'] }));
    const logger = spyLogger();
    const onFrame = onFrameSpy((_p, _role, _type, payload) => (payload.toString() === 'drop me' ? null : payload));
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { onFrame, logger, debug: true } });
    const client = await fx.client(`${proxy.url}/proxy`);
    await client.closed;
    expect(client.events.all).to.deep.equal([
      { type: 'text', payload: 'a' },
      { type: 'text', payload: 'b' },
      { type: 'text', payload: 'c' },
      { type: 'close', payload: 'server close', code: 1000 },
    ]);
    await proxy.nextResult();
    expect(lines(logger.debug)).to.include('upstream dropping text frame after onFrame requested it');
    expect(calls(onFrame).slice(0, 5).map((c) => c[2])).to.deep.equal(['a', 'b', 'drop me', 'c', 'server close']);
  });

  it('14 (fixed flaw): a close frame cannot be dropped: it is forwarded unchanged, with a warning', async () => {
    const upstream = await fx.upstream(sender('a', { close: [1000, 'server close'] }));
    const logger = spyLogger();
    const onFrame = onFrameSpy((_p, _role, type, payload) => (type === 'close' ? null : payload));
    const proxy = await fx.proxy({ upstream: `${upstream.url}/echo`, proxyOptions: { onFrame, logger } });
    const client = await fx.client(`${proxy.url}/proxy`);
    expect(await client.closed).to.deep.equal({ code: 1000, reason: 'server close' });
    expect(client.events.all).to.deep.equal([
      { type: 'text', payload: 'a' },
      { type: 'close', payload: 'server close', code: 1000 },
    ]);
    const u = await upstream.connections.next();
    // The client's close reply was "dropped" too: it still reached the upstream.
    expect(await u.closed).to.deep.equal({ code: 1000, reason: 'server close' });
    const { summary, error } = await proxy.nextResult();
    expect(error).to.equal(undefined);
    expect(summary?.upstream.closeSent).to.deep.equal({ code: 1000, reason: 'server close' });
    expect(lines(logger.warn)).to.deep.equal([
      'upstream close frame cannot be dropped; forwarding it unchanged',
      'client close frame cannot be dropped; forwarding it unchanged',
    ]);
  });
});
