/**
 * Keepalive (`pingInterval`, `pongTimeout`) over real sockets: the proxy's own pings, its pongs
 * consumed, silent sides given up, and backpressure never mistaken for silence. Time is sinon's.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import { textFrame } from '../../src/frame.js';
import type { ProxyOptions, ProxySummary, WebSocketProxy } from '../../src/index.js';
import { KEEPALIVE_PREFIX } from '../../src/proxy/keepalive.js';
import { tap } from '../../src/transforms/tap.js';
import { type ProxyOutcome, echo } from '../helpers/proxy-harness.js';
import { type RecordingClient, recordClient, recordingLogger, until } from '../helpers/proxy-peers.js';
import { releaseAll, rawRig, turns, wsRig, fakeTimers } from './rig.js';

const PREFIX = KEEPALIVE_PREFIX.toString('latin1');

/** The event a recording peer logs for the proxy's n-th ping to it. */
function pingEvent(n: number): string {
  return `ping:${PREFIX}${n}`;
}

async function summaryOf(outcome: ProxyOutcome): Promise<ProxySummary> {
  const { summary, error, connectError } = await outcome.done;
  expect(error, 'execute() rejected').to.equal(undefined);
  expect(connectError, 'connect() rejected').to.equal(undefined);
  return summary!;
}

describe('WebSocketProxy keepalive (pingInterval, pongTimeout)', () => {
  afterEach(releaseAll);

  it('pings each idle side at pingInterval after it was last heard from; its pongs reach no stage, no onFrame, no peer, no summary count', async () => {
    const seen: string[] = [];
    const staged: string[] = [];
    const options = (): ProxyOptions<WebSocketProxy> => ({
      pingInterval: 1000,
      onFrame: (_proxy, role, type, payload) => {
        seen.push(`${role}:${type}:${payload.toString()}`);
        return payload;
      },
      transforms: {
        client: () => [tap((frame) => staged.push(`client:${frame.type}`), { control: true })],
        upstream: () => [tap((frame) => staged.push(`upstream:${frame.type}`), { control: true })],
      },
    });
    const rig = await wsRig(() => undefined, options);
    const timers = fakeTimers();
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstream = recordClient(rig.upstreamSockets[0]!);

    await timers.tickAsync(999);
    await turns();
    expect(client.events).to.deep.equal([]);
    expect(upstream.events).to.deep.equal([]);
    await timers.tickAsync(1);
    await until(() => client.events.length === 1 && upstream.events.length === 1);
    expect(client.events).to.deep.equal([pingEvent(1)]);
    expect(upstream.events).to.deep.equal([pingEvent(1)]);

    // ws answered each ping at once, before the message each now sends: had a pong been forwarded,
    // it would arrive before that message.
    client.ws.send('after');
    upstream.ws.send('after-up');
    await until(() => upstream.messages.length === 1 && client.messages.length === 1);
    expect(upstream.events).to.deep.equal([pingEvent(1), 'message:after']);
    expect(client.events).to.deep.equal([pingEvent(1), 'message:after-up']);
    expect(seen).to.have.members(['client:text:after', 'upstream:text:after-up']);
    expect(staged).to.have.members(['client:text', 'upstream:text']);

    // Both sides were last heard from now: the next pings come pingInterval later, not before.
    await timers.tickAsync(999);
    await turns();
    expect(client.events).to.have.length(2);
    await timers.tickAsync(1);
    await until(() => client.events.length === 3 && upstream.events.length === 3);
    expect(client.events[2]).to.equal(pingEvent(2));
    expect(upstream.events[2]).to.equal(pingEvent(2));

    client.ws.close(1000, 'bye');
    expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
    const summary = await summaryOf(outcome);
    expect(summary.error).to.equal(undefined);
    // Only 'after' / 'after-up' and the close frames: no pong is counted.
    expect(summary.client).to.deep.include({ frames: 2, bytes: 'after'.length + 'bye'.length, aborted: false });
    expect(summary.upstream).to.deep.include({ frames: 2, bytes: 'after-up'.length + 'bye'.length, aborted: false });
    expect(seen.filter((line) => line.includes(':pong:'))).to.deep.equal([]);
    expect(staged.filter((line) => line.endsWith(':pong'))).to.deep.equal([]);
    expect(timers.countTimers()).to.equal(0);
  });

  it('a peer\'s own pings and pongs still pass, also an unsolicited pong and one carrying the prefix with a number the proxy never sent', async () => {
    const seen: string[] = [];
    const rig = await wsRig(() => undefined, () => ({
      pingInterval: 60_000,
      onFrame: (_proxy, role, type, payload) => {
        seen.push(`${role}:${type}:${payload.toString()}`);
        return payload;
      },
    }));
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstream = recordClient(rig.upstreamSockets[0]!);
    client.ws.ping('from-client');
    await until(() => client.events.includes('pong:from-client'));
    upstream.ws.ping('from-upstream');
    await until(() => upstream.events.includes('pong:from-upstream'));
    client.ws.pong('unsolicited');
    client.ws.pong(`${PREFIX}7`);
    upstream.ws.pong(`${PREFIX}1`);
    await until(() => upstream.events.length === 4 && client.events.length === 3);
    expect(upstream.events).to.deep.equal(['ping:from-client', 'pong:from-upstream', 'pong:unsolicited', `pong:${PREFIX}7`]);
    expect(client.events).to.deep.equal(['pong:from-client', 'ping:from-upstream', `pong:${PREFIX}1`]);
    expect(seen).to.include.members(['client:ping:from-client', 'upstream:pong:from-client', 'client:pong:unsolicited', `upstream:pong:${PREFIX}1`]);
    client.ws.close(1000);
    await client.closed;
    const summary = await summaryOf(outcome);
    expect(summary.error).to.equal(undefined);
  });

  it('a silent upstream (handshake done, never answers): at pongTimeout after the ping its socket is destroyed, the client gets 1001; WSP_ERR_KEEPALIVE_TIMEOUT, closedBy upstream; no timer left', async () => {
    const logger = recordingLogger();
    const rig = await rawRig({ pingInterval: 1000, pongTimeout: 500, logger });
    const timers = fakeTimers();
    const client = await rig.client();
    const upstream = await rig.upstream();
    const outcome = await rig.proxy.nextOutcome();
    await timers.tickAsync(1000);
    await upstream.waitFrames(1);
    expect(upstream.frames.map((f) => `${f.type}:${f.payload.toString()}`)).to.deep.equal([`ping:${PREFIX}1`]);
    await timers.tickAsync(499);
    await turns();
    expect(client.events).to.deep.equal([pingEvent(1)]);
    expect(upstream.isClosed).to.equal(false);
    await timers.tickAsync(1);
    expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
    await upstream.closed;
    const summary = await summaryOf(outcome);
    expect(summary.error?.code).to.equal('WSP_ERR_KEEPALIVE_TIMEOUT');
    expect(summary.error?.closeCode).to.equal(1006);
    expect(summary.closedBy).to.equal('upstream');
    expect(summary.upstream.aborted).to.equal(true);
    expect(summary.upstream.closeSent).to.equal(undefined);
    expect(summary.client.closeSent).to.deep.equal({ code: 1001, reason: '' });
    expect(summary.client.aborted).to.equal(false);
    // Nothing but the ping reached the upstream.
    expect(upstream.frames).to.have.length(1);
    expect(logger.at('info')).to.include('upstream connection lost: no answer to a keepalive ping in 500 ms');
    expect(timers.countTimers()).to.equal(0);
  });

  it('a silent client (ws with autoPong: false): the upstream gets 1001 at pongTimeout (default: pingInterval); WSP_ERR_KEEPALIVE_TIMEOUT, closedBy client; no timer left', async () => {
    const rig = await wsRig(echo, { pingInterval: 1000 });
    const timers = fakeTimers();
    const client = await rig.client(undefined, { autoPong: false });
    const outcome = await rig.proxy.nextOutcome();
    const upstream = recordClient(rig.upstreamSockets[0]!);
    await timers.tickAsync(1000);
    await until(() => client.events.length === 1);
    await timers.tickAsync(999);
    await turns();
    expect(upstream.events).to.deep.equal([pingEvent(1)]);
    await timers.tickAsync(1);
    expect(await upstream.closed).to.deep.equal({ code: 1001, reason: '' });
    expect((await client.closed).code).to.equal(1006);
    const summary = await summaryOf(outcome);
    expect(summary.error?.code).to.equal('WSP_ERR_KEEPALIVE_TIMEOUT');
    expect(summary.closedBy).to.equal('client');
    expect(summary.client.aborted).to.equal(true);
    expect(summary.client.closeSent).to.equal(undefined);
    expect(summary.upstream.closeSent).to.deep.equal({ code: 1001, reason: '' });
    expect(timers.countTimers()).to.equal(0);
  });

  it('any frame from a pinged side proves it alive; it is given up only after a later ping goes unanswered (per-side pongTimeout)', async () => {
    const rig = await rawRig({ pingInterval: { upstream: 1000 }, pongTimeout: { client: 50, upstream: 300 } });
    const timers = fakeTimers();
    const client = await rig.client();
    const upstream = await rig.upstream();
    const outcome = await rig.proxy.nextOutcome();
    await timers.tickAsync(1000);
    await upstream.waitFrames(1);
    // A data frame instead of a pong.
    upstream.send(textFrame('still here'));
    await client.waitMessages(1);
    await timers.tickAsync(300);
    await turns();
    expect(upstream.isClosed).to.equal(false);
    // Heard from at 1000: the next ping at 2000, then 300 ms of silence.
    await timers.tickAsync(699);
    await turns();
    expect(upstream.frames).to.have.length(1);
    await timers.tickAsync(1);
    await upstream.waitFrames(2);
    expect(upstream.frames[1]!.payload.toString()).to.equal(`${PREFIX}2`);
    await timers.tickAsync(299);
    await turns();
    expect(upstream.isClosed).to.equal(false);
    await timers.tickAsync(1);
    expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
    const summary = await summaryOf(outcome);
    expect(summary.error?.code).to.equal('WSP_ERR_KEEPALIVE_TIMEOUT');
    // The client, not pinged (no client pingInterval), never got a ping.
    expect(client.events).to.deep.equal(['message:still here', 'close:1001:']);
    expect(timers.countTimers()).to.equal(0);
  });

  it('{ client, upstream } pingInterval: each side on its own schedule', async () => {
    const rig = await wsRig(() => undefined, { pingInterval: { client: 300, upstream: 1000 } });
    const timers = fakeTimers();
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstream = recordClient(rig.upstreamSockets[0]!);
    await timers.tickAsync(300);
    await until(() => client.events.length === 1);
    expect(upstream.events).to.deep.equal([]);
    await timers.tickAsync(300);
    await until(() => client.events.length === 2);
    await timers.tickAsync(400);
    await until(() => upstream.events.length === 1 && client.events.length === 3);
    expect(client.events).to.deep.equal([pingEvent(1), pingEvent(2), pingEvent(3)]);
    expect(upstream.events).to.deep.equal([pingEvent(1)]);
    client.ws.close(1000);
    await client.closed;
    expect((await summaryOf(outcome)).error).to.equal(undefined);
  });

  it('consumed pongs are no activity: idleTimeout still closes both sides (1001, WSP_ERR_IDLE_TIMEOUT)', async () => {
    const rig = await wsRig(() => undefined, { pingInterval: 1000, idleTimeout: 2500 });
    const timers = fakeTimers();
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstream = recordClient(rig.upstreamSockets[0]!);
    await timers.tickAsync(1000);
    await until(() => client.events.length === 1 && upstream.events.length === 1);
    await turns();
    await timers.tickAsync(1000);
    await until(() => client.events.length === 2 && upstream.events.length === 2);
    await turns();
    await timers.tickAsync(500);
    expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
    expect(await upstream.closed).to.deep.equal({ code: 1001, reason: '' });
    const summary = await summaryOf(outcome);
    expect(summary.error?.code).to.equal('WSP_ERR_IDLE_TIMEOUT');
    expect(summary.client.frames).to.equal(1);
    expect(summary.upstream.frames).to.equal(1);
    expect(timers.countTimers()).to.equal(0);
  });

  it('a side whose frames wait for a slow peer is not given up while the proxy does not read it; a ping stuck behind frames a side does not take starts no wait', async function () {
    this.timeout(30000);
    const COUNT = 48;
    const CHUNK = Buffer.alloc(1024 * 1024, 0x62);
    const rig = await wsRig(() => undefined, { pingInterval: 1000, pongTimeout: 500 });
    const timers = fakeTimers();
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstream = recordClient(rig.upstreamSockets[0]!);
    const reader = outcome.proxy.upstream!.readable;
    // The client stops reading; the upstream sends far more than the buffers between them hold.
    client.ws.pause();
    for (let i = 0; i < COUNT; i++) upstream.ws.send(CHUNK);
    await until(() => reader.stalls > 0 && !reader.reading);
    // The upstream is pinged (and answers, unread); the client's ping waits behind the frames.
    await timers.tickAsync(1000);
    await until(() => upstream.events.length === 1);
    expect(upstream.events).to.deep.equal([pingEvent(1)]);
    for (let i = 0; i < 8; i++) {
      await timers.tickAsync(500);
      await turns();
    }
    let settled = false;
    void outcome.done.then(() => {
      settled = true;
    });
    await turns();
    expect(settled).to.equal(false);
    expect(outcome.proxy.client!.readable.socket.destroyed).to.equal(false);
    expect(reader.socket.destroyed).to.equal(false);
    expect(upstream.events).to.deep.equal([pingEvent(1)]);
    // Reading again: every message and the client's ping arrive; both answers are consumed.
    client.ws.resume();
    await client.waitMessages(COUNT);
    await until(() => client.events.includes(pingEvent(1)));
    await turns();
    await timers.tickAsync(500);
    await turns();
    expect(settled).to.equal(false);
    client.ws.close(1000);
    await client.closed;
    const summary = await summaryOf(outcome);
    expect(summary.error).to.equal(undefined);
    expect(upstream.events.filter((event) => event.startsWith('pong'))).to.deep.equal([]);
    expect(client.events.filter((event) => event.startsWith('pong'))).to.deep.equal([]);
    expect(summary.upstream.frames).to.equal(COUNT + 1);
  });

  it('a pingInterval beyond what setTimeout can wait (2^31-1 ms) is reached in steps, not by a timer firing every millisecond', async () => {
    const rig = await wsRig(() => undefined, { pingInterval: 2 ** 31 + 5000 });
    const timers = fakeTimers();
    const client = await rig.client();
    await rig.proxy.nextOutcome();
    const armed = sinon.spy(globalThis, 'setTimeout');
    try {
      await timers.tickAsync(1000);
      expect(armed.callCount).to.be.at.most(1);
      await timers.tickAsync(2 ** 31);
      await turns();
      expect(client.events).to.deep.equal([]);
      await timers.tickAsync(5000);
      await until(() => client.events.length === 1);
      expect(client.events).to.deep.equal([pingEvent(1)]);
      expect(armed.callCount).to.be.at.most(4);
    } finally {
      armed.restore();
    }
  });

  it('a proxy without pingInterval sends no ping and forwards every pong', async () => {
    const rig = await wsRig(() => undefined);
    const timers = fakeTimers();
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstream: RecordingClient = recordClient(rig.upstreamSockets[0]!);
    await timers.tickAsync(3_600_000);
    await turns();
    client.ws.pong(`${PREFIX}1`);
    await until(() => upstream.events.length === 1);
    expect(upstream.events).to.deep.equal([`pong:${PREFIX}1`]);
    expect(client.events).to.deep.equal([]);
    client.ws.close(1000);
    await client.closed;
    const summary = await summaryOf(outcome);
    // The pong and the close.
    expect(summary.client.frames).to.equal(2);
  });
});
