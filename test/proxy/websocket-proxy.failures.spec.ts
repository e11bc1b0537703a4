/**
 * Strict transparency on failures (the `relayFirst` rows of `ENDINGS`: `limit`, `protocol`,
 * `policy`): when one side breaks the protocol, a limit or a stage's policy, the proxy stops reading
 * it, sends its peer 1001, keeps relaying the peer's frames to it until the peer's close reply (or
 * `lingeringTimeout`, or a lingering deadline), and only then sends it its close. Real `ws` peers and
 * raw peers on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { expect } from 'chai';
import { Transform } from 'readable-stream';
import type { WebSocket } from 'ws';
import {
  type Frame, type ProxySummary, WebSocketProxyError, binaryFrame, closeFrame, continuationFrame, pingFrame, textFrame,
} from '../../src/index.js';
import { MAX_DISCARDED_BYTES } from '../../src/proxy/side.js';
import type { ProxyOutcome } from '../helpers/proxy-harness.js';
import { type FrameText, type RawPeer, portOf, rawClient, text, until } from '../helpers/proxy-peers.js';
import { wire } from '../helpers/sockets.js';
import { onCleanup, rawRig, releaseAll, turns, wsRig, fakeTimers } from './rig.js';

/** A frame with the reserved opcode 3, masked (a client's): a protocol violation (1002). */
const RESERVED_OPCODE = Buffer.from([0x83, 0x80, 1, 2, 3, 4]);

/** A masked text frame from the upstream: a violation (1002, WSP_ERR_MASK_FORBIDDEN). */
const MASKED_FROM_UPSTREAM = Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]);

/** Frames as a client writes them, masked, in one buffer. */
function fromClient(...frames: Frame[]): Buffer {
  return wire(frames, randomBytes(4));
}

function closesOf(peer: RawPeer): Frame[] {
  return peer.frames.filter((f) => f.type === 'close');
}

/** What a `ws` upstream connection received, and how it closed. */
function watch(ws: WebSocket): { messages: string[]; closed: Promise<[number, string]> } {
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
  return { messages, closed };
}

/** execute() resolved, with this coded error in the summary. */
async function endedWith(outcome: ProxyOutcome, code: string, closeCode: number): Promise<ProxySummary> {
  const { summary, error, connectError } = await outcome.done;
  expect(connectError, 'connect() error').to.equal(undefined);
  expect(error, 'execute() rejection').to.equal(undefined);
  expect(summary!.error, 'summary.error').to.be.instanceOf(WebSocketProxyError);
  expect(summary!.error).to.deep.include({ code, closeCode });
  return summary!;
}

/** The proxy's own socket to the client (what it reads the client from). */
function proxySocketOfClient(outcome: ProxyOutcome): net.Socket {
  return outcome.proxy.client!.readable.socket as net.Socket;
}

describe('WebSocketProxy failures: the peer\'s frames reach the offender before its close', () => {
  afterEach(releaseAll);

  describe('a ws upstream', () => {
    for (const aggregateFragments of [false, true]) {
      it(`${aggregateFragments ? 'aggregated' : 'not aggregated'}: a valid message and a violation in one write; the upstream's echo and what it sends with it, on their way, reach the client before its 1002; summary unchanged`, async () => {
        const rig = await wsRig((ws) => ws.on('message', (data) => {
          ws.send(data.toString());
          ws.send(Buffer.from([1, 2, 3]));
          ws.send('frag', { fin: false });
          ws.send('ments', { fin: true });
        }), { aggregateFragments });
        const client = await rawClient(portOf(rig.proxy.url));
        onCleanup(() => client.destroy());
        const outcome = await rig.proxy.nextOutcome();
        const upstream = watch(rig.upstreamSockets[0]!);
        client.sendRaw(Buffer.concat([fromClient(textFrame('hello')), RESERVED_OPCODE]));
        const close = await client.waitClose();
        const summary = await endedWith(outcome, 'WSP_ERR_INVALID_OPCODE', 1002);
        const fragmented: FrameText[] = aggregateFragments
          ? [{ type: 'text', fin: true, data: 'fragments' }]
          : [{ type: 'text', fin: false, data: 'frag' }, { type: 'continuation', fin: true, data: 'ments' }];
        expect(client.frames.map(text)).to.deep.equal([
          { type: 'text', fin: true, data: 'hello' },
          { type: 'binary', fin: true, data: '\u0001\u0002\u0003' },
          ...fragmented,
          { type: 'close', fin: true, data: summary.error!.message, code: 1002 },
        ]);
        expect(close.payload.toString()).to.equal(summary.error!.message);
        expect(await upstream.closed).to.deep.equal([1001, '']);
        expect(upstream.messages).to.deep.equal(['hello']);
        await client.closed;
        // What the summary says is what it said before: the proxy closed, the client got 1002, the
        // upstream 1001 (and its reply was not passed on).
        expect(summary.closedBy).to.equal('proxy');
        expect(summary.client).to.deep.include({ closeSent: { code: 1002, reason: summary.error!.message }, closeReceived: undefined, aborted: false });
        expect(summary.upstream).to.deep.include({ closeSent: { code: 1001, reason: '' }, closeReceived: { code: 1001, reason: '' }, aborted: false });
      });
    }

    it('a stage refusing a client message (policy, 1008): the echo of the message before it reaches the client before its 1008', async () => {
      const refusal = new WebSocketProxyError('WSP_ERR_POLICY_VIOLATION', 'no');
      const refuse = new Transform({
        objectMode: true,
        transform(frame: Frame, _encoding, callback) {
          if (frame.type === 'text' && frame.payload.toString() === 'refuse me') callback(refusal);
          else callback(null, frame);
        },
      });
      const rig = await wsRig((ws) => ws.on('message', (data) => ws.send(`echo ${data.toString()}`)), () => ({ transforms: { client: [refuse] } }));
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      // Back to back: the echo of 'fine' is still on its way when the stage refuses the next one.
      client.ws.send('fine');
      client.ws.send('refuse me');
      expect(await client.closed).to.deep.equal({ code: 1008, reason: refusal.message });
      expect(client.events).to.deep.equal(['message:echo fine', `close:1008:${refusal.message}`]);
      expect(await upstream.closed).to.deep.equal([1001, '']);
      expect(upstream.messages).to.deep.equal(['fine']);
      const summary = await endedWith(outcome, 'WSP_ERR_POLICY_VIOLATION', 1008);
      expect(summary.error).to.equal(refusal);
      expect(summary.closedBy).to.equal('proxy');
    });
  });

  describe('raw peers', () => {
    it('the client breaks the protocol: it is sent nothing until the upstream replies to its 1001; the upstream\'s frames until then reach it in order, then its 1002 (not the upstream\'s close)', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.sendRaw(RESERVED_OPCODE);
      expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
      await turns();
      expect(client.frames).to.deep.equal([]);
      upstream.send(textFrame('late'), pingFrame('still there?'), binaryFrame('ab', false), continuationFrame('cd', true));
      await client.waitFrames(4);
      await turns();
      expect(closesOf(client)).to.deep.equal([]);
      upstream.send(closeFrame(1001, 'going'));
      upstream.socket.end();
      const close = await client.waitClose();
      const summary = await endedWith(outcome, 'WSP_ERR_INVALID_OPCODE', 1002);
      expect(client.frames.map(text)).to.deep.equal([
        { type: 'text', fin: true, data: 'late' },
        { type: 'ping', fin: true, data: 'still there?' },
        { type: 'binary', fin: false, data: 'ab' },
        { type: 'continuation', fin: true, data: 'cd' },
        { type: 'close', fin: true, data: summary.error!.message, code: 1002 },
      ]);
      expect(close.code).to.equal(1002);
      // The proxy (the client's server) closes the client's TCP first.
      await client.closed;
      expect(client.gotEnd).to.equal(true);
      expect(summary.upstream.closeReceived).to.deep.equal({ code: 1001, reason: 'going' });
    });

    it('the upstream breaks the protocol: the client\'s frames sent before its close reply reach the upstream, then its 1002; nothing more of the upstream is forwarded', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      upstream.sendRaw(Buffer.concat([MASKED_FROM_UPSTREAM, wire([textFrame('never forwarded')])]));
      expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
      await turns();
      expect(upstream.frames).to.deep.equal([]);
      client.send(textFrame('in flight'), closeFrame(1001));
      const close = await upstream.waitClose();
      // The proxy, the upstream's client, waits for its TCP close: read again for that alone.
      upstream.socket.end();
      const summary = await endedWith(outcome, 'WSP_ERR_MASK_FORBIDDEN', 1002);
      expect(upstream.frames.map(text)).to.deep.equal([
        { type: 'text', fin: true, data: 'in flight' },
        { type: 'close', fin: true, data: summary.error!.message, code: 1002 },
      ]);
      expect(close.code).to.equal(1002);
      expect(client.frames.map(text)).to.deep.equal([{ type: 'close', fin: true, data: '', code: 1001 }]);
      await Promise.all([client.closed, upstream.closed]);
      expect(summary.closedBy).to.equal('proxy');
    });

    it('close() while the client is owed its 1002 does not replace it: the client still gets its 1002 after the upstream\'s reply', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.sendRaw(RESERVED_OPCODE);
      await upstream.waitClose();
      outcome.proxy.close(4000, 'bye');
      await turns();
      expect(client.frames).to.deep.equal([]);
      upstream.send(closeFrame(1001));
      upstream.socket.end();
      expect((await client.waitClose()).code).to.equal(1002);
      await endedWith(outcome, 'WSP_ERR_INVALID_OPCODE', 1002);
      expect(closesOf(client)).to.have.length(1);
    });

    it('an upstream that never replies to its 1001: the client gets its 1002 lingeringTimeout after the violation, with what the upstream sent until then; summary.error stays the violation; no timer left', async () => {
      const rig = await rawRig({ lingeringTimeout: 1000, lingeringTime: 30_000 });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const timers = fakeTimers();
      client.sendRaw(RESERVED_OPCODE);
      await upstream.waitClose();
      upstream.send(textFrame('no close from me'));
      await client.waitFrames(1);
      await timers.tickAsync(999);
      await turns();
      expect(closesOf(client)).to.deep.equal([]);
      await timers.tickAsync(1);
      const close = await client.waitClose();
      expect(close.code).to.equal(1002);
      expect(client.frames.map((f) => f.type)).to.deep.equal(['text', 'close']);
      await client.closed;
      // The upstream neither replies nor closes: its socket is cut lingeringTimeout later.
      await timers.tickAsync(1000);
      await upstream.closed;
      const summary = await endedWith(outcome, 'WSP_ERR_INVALID_OPCODE', 1002);
      expect(summary.closedBy).to.equal('proxy');
      expect(summary.upstream).to.deep.include({ closeSent: { code: 1001, reason: '' }, closeReceived: undefined });
      expect(timers.countTimers()).to.equal(0);
    });

    it('frames before a violation that never get down their direction (a stage holds them): the violator is failed lingeringTimeout after the violation all the same', async () => {
      // A client stage that takes its first frame and never lets go of it.
      const hold = (): Transform => new Transform({ objectMode: true, transform() { /* never calls back */ } });
      const rig = await rawRig(() => ({ lingeringTimeout: 1000, lingeringTime: 30_000, transforms: { client: [hold()] } }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const timers = fakeTimers();
      client.sendRaw(Buffer.concat([fromClient(textFrame('held'), textFrame('queued')), RESERVED_OPCODE]));
      await until(() => outcome.proxy.client!.readable.violation !== undefined);
      await timers.tickAsync(999);
      await turns();
      expect(upstream.frames).to.deep.equal([]);
      await timers.tickAsync(1);
      // Relay first: the upstream is sent 1001, and once it replies the client gets its 1002.
      expect(text(await upstream.waitClose())).to.deep.include({ type: 'close', code: 1001 });
      upstream.send(closeFrame(1001, ''));
      upstream.socket.end();
      expect((await client.waitClose()).code).to.equal(1002);
      await endedWith(outcome, 'WSP_ERR_INVALID_OPCODE', 1002);
      await timers.tickAsync(1000);
      await client.closed;
      expect(timers.countTimers()).to.equal(0);
    });

    it('a stage that drops the upstream\'s close: the end of the upstream\'s direction ends the wait all the same (no timer needed), the client gets its 1002', async () => {
      const dropCloses = new Transform({
        objectMode: true,
        transform(frame: Frame, _encoding, callback) {
          callback(null, frame.type === 'close' ? undefined : frame);
        },
      });
      const rig = await rawRig(() => ({ transforms: { upstream: [dropCloses] } }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const timers = fakeTimers();
      client.sendRaw(RESERVED_OPCODE);
      await upstream.waitClose();
      upstream.send(textFrame('last words'), closeFrame(1001));
      upstream.socket.end();
      // No fake time passes: only the upstream's direction ending can release the client's close.
      const close = await client.waitClose();
      expect(close.code).to.equal(1002);
      expect(client.frames.map((f) => f.type)).to.deep.equal(['text', 'close']);
      await Promise.all([client.closed, upstream.closed]);
      await endedWith(outcome, 'WSP_ERR_INVALID_OPCODE', 1002);
      expect(timers.countTimers()).to.equal(0);
    });

    it('the wait is also bounded by lingeringTime: the upstream\'s close held by a stage since 2500 ms, the client violates; at lingeringTime (3000 ms) it gets its 1002, not the held close; summary.error stays the violation', async () => {
      const held: Frame[] = [];
      const holdCloses = new Transform({
        objectMode: true,
        transform(frame: Frame, _encoding, callback) {
          // A close frame is kept for ever (its callback never called).
          if (frame.type === 'close') held.push(frame);
          else callback(null, frame);
        },
      });
      const rig = await rawRig(() => ({ lingeringTime: 3000, lingeringTimeout: 1000, transforms: { upstream: [holdCloses] } }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const timers = fakeTimers();
      upstream.send(closeFrame(4000, 'held'));
      await until(() => held.length === 1);
      await timers.tickAsync(2500);
      client.sendRaw(RESERVED_OPCODE);
      // The upstream's close is answered (1001), the client is owed its 1002 until lingeringTime.
      expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
      await timers.tickAsync(499);
      await turns();
      expect(client.frames).to.deep.equal([]);
      await timers.tickAsync(1);
      const close = await client.waitClose();
      expect(close.code).to.equal(1002);
      upstream.socket.end();
      await client.closed;
      await upstream.closed;
      const summary = await endedWith(outcome, 'WSP_ERR_INVALID_OPCODE', 1002);
      expect(summary.closedBy).to.equal('upstream');
      expect(closesOf(client)).to.have.length(1);
      expect(timers.countTimers()).to.equal(0);
    });

    it('a client flooding after its violation is not read: its socket is paused while the upstream\'s reply is awaited, and once its 1002 went at most MAX_DISCARDED_BYTES more are read before it is cut off', async () => {
      const rig = await rawRig({ lingeringTimeout: 1000, lingeringTime: 30_000 });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const socket = proxySocketOfClient(outcome);
      const timers = fakeTimers();
      client.sendRaw(RESERVED_OPCODE);
      await upstream.waitClose();
      const before = socket.bytesRead;
      // 64 MiB of valid frames at full speed: the client's socket queues what TCP does not take.
      const flood = fromClient(binaryFrame(Buffer.alloc(64 * 1024, 7)));
      for (let i = 0; i < 1024; i++) client.sendRaw(flood);
      await turns(200);
      // Paused: what it read since is at most what the socket had buffered (a few chunks).
      expect(socket.bytesRead - before, 'bytes read while the upstream\'s reply is awaited').to.be.below(1024 * 1024);
      expect(client.socket.writableLength, 'the client is held back by TCP').to.be.above(32 * 1024 * 1024);
      // lingeringTimeout: the client is sent its 1002, then read only to see its TCP close, within a bound.
      await timers.tickAsync(1000);
      await client.closed;
      await timers.tickAsync(1000);
      await upstream.closed;
      await endedWith(outcome, 'WSP_ERR_INVALID_OPCODE', 1002);
      expect(socket.bytesRead - before, 'bytes read after the violation').to.be.below(MAX_DISCARDED_BYTES + 1024 * 1024);
      expect(socket.destroyed).to.equal(true);
    });
  });
});
