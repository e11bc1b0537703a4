import { expect } from 'chai';
import sinon from 'sinon';
import type { WebSocket } from 'ws';
import {
  type Frame, WebSocketProxy, closeFrame, continuationFrame, pingFrame, textFrame,
} from '../../src/index.js';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { acceptKey } from '../../src/handshake/headers.js';
import { encodeFrame } from '../../src/protocol/encode.js';
import { echo, startProxy } from '../helpers/proxy-harness.js';
import { type RawPeer, recordingLogger, text, until, wsClient } from '../helpers/proxy-peers.js';
import { onCleanup, rawRig, releaseAll, turns, wsRig } from './rig.js';

/** Records what a `ws` upstream connection receives and how it closes. */
function watch(ws: WebSocket): { messages: string[]; closed: Promise<[number, string]> } {
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
  return { messages, closed };
}

function closesOf(peer: RawPeer): Frame[] {
  return peer.frames.filter((f) => f.type === 'close');
}

describe('WebSocketProxy close handshake and abnormal ends', () => {
  let clock: sinon.SinonFakeTimers | undefined;

  afterEach(async () => {
    clock?.restore();
    clock = undefined;
    await releaseAll();
  });

  describe('close handshake', () => {
    it('client-initiated: the close reaches the upstream and its reply comes back', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      client.ws.close(1000, 'goodbye');
      expect(await upstream.closed).to.deep.equal([1000, 'goodbye']);
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'goodbye' });
      const { summary } = await outcome.done;
      expect(summary?.closedBy).to.equal('client');
      expect(summary?.client).to.deep.include({ closeReceived: { code: 1000, reason: 'goodbye' }, closeSent: { code: 1000, reason: 'goodbye' }, aborted: false });
      expect(summary?.upstream).to.deep.include({ closeReceived: { code: 1000, reason: 'goodbye' }, closeSent: { code: 1000, reason: 'goodbye' }, aborted: false });
    });

    it('upstream-initiated: the close reaches the client and its reply goes back; an empty close stays empty', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      upstream.send(closeFrame());
      const close = await client.waitClose();
      expect(text(close)).to.deep.equal({ type: 'close', fin: true, data: '' });
      client.send(closeFrame(1000, 'ok'));
      expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'ok', code: 1000 });
      upstream.socket.end();
      await Promise.all([client.closed, upstream.closed]);
      const { summary } = await outcome.done;
      expect(summary?.closedBy).to.equal('upstream');
      expect(summary?.upstream.closeReceived).to.deep.equal({ code: undefined, reason: '' });
      expect(summary?.client.closeSent).to.deep.equal({ code: undefined, reason: '' });
      expect(summary?.client.closeReceived).to.deep.equal({ code: 1000, reason: 'ok' });
    });

    it('the other direction keeps relaying until the close reply: the upstream may send more first', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.send(textFrame('last from client'), closeFrame(1000, 'bye'));
      await upstream.waitClose();
      upstream.send(textFrame('more 1'), pingFrame('still here'), textFrame('more 2'), closeFrame(1000, 'bye too'));
      upstream.socket.end();
      await Promise.all([client.closed, upstream.closed]);
      expect(upstream.frames.map(text)).to.deep.equal([
        { type: 'text', fin: true, data: 'last from client' },
        { type: 'close', fin: true, data: 'bye', code: 1000 },
      ]);
      expect(client.frames.map(text)).to.deep.equal([
        { type: 'text', fin: true, data: 'more 1' },
        { type: 'ping', fin: true, data: 'still here' },
        { type: 'text', fin: true, data: 'more 2' },
        { type: 'close', fin: true, data: 'bye too', code: 1000 },
      ]);
      const { summary } = await outcome.done;
      expect(summary?.upstream.frames).to.equal(4);
    });

    it('after the handshake each TCP connection ends in its RFC order: the proxy ends the client\'s, the upstream ends its own', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.send(closeFrame(1000, 'bye'));
      await upstream.waitClose();
      upstream.send(closeFrame(1000, 'bye'));
      // As the client's server, the proxy closes TCP first (RFC 6455 section 7.1.1).
      await until(() => client.gotEnd);
      // As the upstream's client, it waits for the upstream to close first.
      await turns();
      expect(upstream.gotEnd).to.equal(false);
      expect(upstream.isClosed).to.equal(false);
      upstream.socket.end();
      await Promise.all([client.closed, upstream.closed]);
      const { summary } = await outcome.done;
      expect(summary?.closedBy).to.equal('client');
    });

    it('a close frame is sent at most once per side: crossing closes, then close()', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.send(closeFrame(1000, 'from client'));
      upstream.send(closeFrame(1001, 'from upstream'));
      await Promise.all([client.waitClose(), upstream.waitClose()]);
      outcome.proxy.close(4000, 'again');
      upstream.socket.end();
      await Promise.all([client.closed, upstream.closed]);
      expect(closesOf(client).map(text)).to.deep.equal([{ type: 'close', fin: true, data: 'from upstream', code: 1001 }]);
      expect(closesOf(upstream).map(text)).to.deep.equal([{ type: 'close', fin: true, data: 'from client', code: 1000 }]);
      const { summary, error } = await outcome.done;
      expect(error).to.equal(undefined);
      expect(summary?.client.closeSent).to.deep.equal({ code: 1001, reason: 'from upstream' });
      expect(summary?.upstream.closeSent).to.deep.equal({ code: 1000, reason: 'from client' });
    });

    it('messages in flight when a close arrives are not lost (both directions)', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      const sent = Array.from({ length: 200 }, (_, i) => `message ${i} ${'x'.repeat(i * 50)}`);
      for (const message of sent) client.ws.send(message);
      client.ws.close(1000, 'after 200');
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'after 200' });
      expect(upstream.messages).to.deep.equal(sent);
      // The echoes sent before the upstream's close reply reached the client.
      expect(client.messages).to.deep.equal(sent);
      await outcome.done;
    });

    it('messages the upstream sends right before its close all reach the client', async () => {
      const sent = Array.from({ length: 100 }, (_, i) => `u${i}`);
      const rig = await wsRig((ws) => {
        for (const message of sent) ws.send(message);
        ws.close(4000, 'done sending');
      });
      const client = await rig.client();
      expect(await client.closed).to.deep.equal({ code: 4000, reason: 'done sending' });
      expect(client.messages).to.deep.equal(sent);
    });

    it('lingeringTimeout: a side that never replies -> both connections end, no timer left', async () => {
      const logger = recordingLogger();
      const rig = await rawRig({ lingeringTime: 3000, lingeringTimeout: 1000, logger });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], shouldAdvanceTime: false });
      client.send(closeFrame(1000, 'bye'));
      await upstream.waitClose();
      // The upstream neither replies nor closes TCP.
      await clock.tickAsync(999);
      await turns();
      expect(client.frames).to.deep.equal([]);
      expect(client.isClosed).to.equal(false);
      await clock.tickAsync(1);
      const close = await client.waitClose();
      expect(text(close)).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
      await client.closed;
      // The proxy is the upstream's client: it waits lingeringTimeout for the server's TCP close, then cuts it.
      await turns();
      expect(upstream.isClosed).to.equal(false);
      await clock.tickAsync(1000);
      await upstream.closed;
      const { summary, error } = await outcome.done;
      expect(error).to.equal(undefined);
      expect(summary?.closedBy).to.equal('client');
      expect(summary?.upstream.closeSent).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(summary?.upstream.closeReceived).to.equal(undefined);
      expect(summary?.client.closeSent).to.deep.equal({ code: 1001, reason: '' });
      expect(logger.at('info')).to.include('linger timeout: no frame in 1000 ms while waiting for a close reply');
      expect(closesOf(upstream)).to.have.length(1);
      expect(clock.countTimers()).to.equal(0);
    });

    it('lingeringTime: a side that keeps sending but never replies is cut after lingeringTime in all', async () => {
      const logger = recordingLogger();
      const rig = await rawRig({ lingeringTime: 3000, lingeringTimeout: 1000, logger });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], shouldAdvanceTime: false });
      client.send(closeFrame(1000, 'bye'));
      await upstream.waitClose();
      // A frame every 600 ms keeps lingeringTimeout from expiring; they are relayed to the client.
      for (let i = 1; i <= 4; i++) {
        await clock.tickAsync(600);
        upstream.send(textFrame(`still talking ${i}`));
        await client.waitFrames(i);
      }
      await clock.tickAsync(599);
      await turns();
      expect(closesOf(client)).to.have.length(0);
      await clock.tickAsync(1);
      expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
      expect(client.frames.slice(0, 4).map((f) => f.payload.toString())).to.deep.equal(['still talking 1', 'still talking 2', 'still talking 3', 'still talking 4']);
      await clock.tickAsync(1000);
      await Promise.all([client.closed, upstream.closed]);
      await outcome.done;
      expect(logger.at('info')).to.include('linger expired: no close reply in 3000 ms');
      expect(clock.countTimers()).to.equal(0);
    });
  });

  describe('abnormal ends', () => {
    it('client TCP loss -> the upstream gets close 1001', async () => {
      const logger = recordingLogger();
      const rig = await wsRig(echo, { logger });
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      client.ws.send('hello');
      await client.waitMessages(1);
      client.ws.terminate();
      expect(await upstream.closed).to.deep.equal([1001, '']);
      const { summary, error } = await outcome.done;
      expect(error).to.equal(undefined);
      expect(summary?.closedBy).to.equal('client');
      expect(summary?.client).to.deep.include({ aborted: true, closeReceived: undefined, closeSent: undefined });
      expect(summary?.upstream).to.deep.include({ aborted: false, closeSent: { code: 1001, reason: '' } });
      expect(logger.at('info').some((l) => l.startsWith('client connection lost: '))).to.equal(true);
      expect(logger.at('error')).to.deep.equal([]);
    });

    it('upstream TCP loss -> the client gets close 1001', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      rig.upstreamSockets[0]!.terminate();
      expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
      const { summary, error } = await outcome.done;
      expect(error).to.equal(undefined);
      expect(summary?.closedBy).to.equal('upstream');
      expect(summary?.upstream.aborted).to.equal(true);
      expect(summary?.client.closeSent).to.deep.equal({ code: 1001, reason: '' });
    });

    it('an upstream that sends its 101, a text, a close and FIN in one write: all reach the client', async () => {
      const upstreamServer = http.createServer();
      upstreamServer.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
        const key = req.headers['sec-websocket-key'] as string;
        socket.end(Buffer.concat([
          Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`),
          ...encodeFrame(textFrame('hello and goodbye')),
          ...encodeFrame(closeFrame(4000, 'short visit')),
        ]));
      });
      upstreamServer.listen(0, '127.0.0.1');
      await once(upstreamServer, 'listening');
      onCleanup(() => new Promise<void>((resolve) => {
        upstreamServer.closeAllConnections();
        upstreamServer.close(() => resolve());
      }));
      const proxy = await startProxy({ upstream: `ws://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}/` });
      onCleanup(() => proxy.close());
      const client = await wsClient(proxy.url);
      onCleanup(() => client.ws.terminate());
      expect(await client.closed).to.deep.equal({ code: 4000, reason: 'short visit' });
      expect(client.messages).to.deep.equal(['hello and goodbye']);
      const { summary, error } = await (await proxy.nextOutcome()).done;
      expect(error).to.equal(undefined);
      expect(summary?.closedBy).to.equal('upstream');
      expect(summary?.upstream.closeReceived).to.deep.equal({ code: 4000, reason: 'short visit' });
    });

    it('upstream TCP loss in the middle of a frame -> the client gets close 1001', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      // A header announcing 100 bytes, 3 of them, then the connection is gone.
      upstream.sendRaw(Buffer.from([0x81, 100, 0x61, 0x62, 0x63]));
      await new Promise((resolve) => setTimeout(resolve, 20));
      upstream.destroy();
      expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
      await client.closed;
      const { summary } = await outcome.done;
      expect(summary?.upstream.aborted).to.equal(true);
    });

    const violations: { name: string; bytes: () => Buffer; code: string; closeCode: number }[] = [
      { name: 'an unmasked frame', bytes: () => Buffer.from([0x81, 0x02, 0x68, 0x69]), code: 'WSP_ERR_MASK_REQUIRED', closeCode: 1002 },
      { name: 'invalid UTF-8 in a text frame', bytes: () => Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28]), code: 'WSP_ERR_INVALID_UTF8', closeCode: 1007 },
      { name: 'a reserved opcode (3)', bytes: () => Buffer.from([0x83, 0x80, 0, 0, 0, 0]), code: 'WSP_ERR_INVALID_OPCODE', closeCode: 1002 },
      { name: 'an RSV bit', bytes: () => Buffer.from([0xc1, 0x80, 0, 0, 0, 0]), code: 'WSP_ERR_UNEXPECTED_RSV', closeCode: 1002 },
      { name: 'a fragmented ping', bytes: () => Buffer.from([0x09, 0x80, 0, 0, 0, 0]), code: 'WSP_ERR_FRAGMENTED_CONTROL', closeCode: 1002 },
    ];
    for (const violation of violations) {
      it(`a client sending ${violation.name} gets ${violation.closeCode}, the upstream 1001; execute() rejects ${violation.code}`, async () => {
        const logger = recordingLogger();
        const rig = await rawRig({ logger });
        const client = await rig.rawClient();
        const upstream = await rig.upstream();
        const outcome = await rig.proxy.nextOutcome();
        client.send(textFrame('fine'));
        await upstream.waitFrames(1);
        client.sendRaw(violation.bytes());
        // The upstream is sent 1001 at once; the client, no longer read, is sent its close only once
        // the upstream's reply came (what the upstream sent before it would still reach the client).
        expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
        await turns();
        expect(client.frames.filter((f) => f.type === 'close')).to.deep.equal([]);
        upstream.send(closeFrame(1001));
        const close = await client.waitClose();
        expect(close.code).to.equal(violation.closeCode);
        client.send(closeFrame(violation.closeCode));
        upstream.socket.end();
        await Promise.all([client.closed, upstream.closed]);
        expect(upstream.frames.map(text)).to.deep.equal([
          { type: 'text', fin: true, data: 'fine' },
          { type: 'close', fin: true, data: '', code: 1001 },
        ]);
        const { error: rejected, summary } = await outcome.done;
        expect(rejected).to.equal(undefined);
        const error = summary?.error;
        expect(error).to.deep.include({ code: violation.code, closeCode: violation.closeCode });
        expect(summary?.closedBy).to.equal('proxy');
        expect(close.payload.toString()).to.equal(error?.message);
        expect(logger.at('error')).to.deep.equal([`client protocol error: ${error?.message}`]);
      });
    }

    it('an upstream sending a masked frame gets 1002, the client 1001; summary.error is WSP_ERR_MASK_FORBIDDEN', async () => {
      const rig = await rawRig();
      const client = await rig.client();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      upstream.sendRaw(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]));
      expect(text(await upstream.waitClose())).to.deep.include({ type: 'close', code: 1002 });
      expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
      upstream.send(closeFrame(1002));
      upstream.socket.end();
      const { error, summary } = await outcome.done;
      expect(error).to.equal(undefined);
      expect(summary?.error).to.deep.include({ code: 'WSP_ERR_MASK_FORBIDDEN', closeCode: 1002 });
      await upstream.closed;
    });
  });

  describe('close()', () => {
    it('from outside: each side gets its code and reason, replies, and execute() resolves', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      outcome.proxy.close(4000, 'client bye', 4001, 'upstream bye');
      expect(await client.closed).to.deep.equal({ code: 4000, reason: 'client bye' });
      expect(await upstream.closed).to.deep.equal([4001, 'upstream bye']);
      const { summary } = await outcome.done;
      expect(summary?.closedBy).to.equal('proxy');
      expect(summary?.client).to.deep.include({ closeSent: { code: 4000, reason: 'client bye' }, closeReceived: { code: 4000, reason: 'client bye' } });
      expect(summary?.upstream).to.deep.include({ closeSent: { code: 4001, reason: 'upstream bye' }, closeReceived: { code: 4001, reason: 'upstream bye' } });
    });

    it('defaults: 1000 to both, the upstream code following the client code', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      outcome.proxy.close();
      expect(await client.closed).to.deep.equal({ code: 1000, reason: '' });
      expect(await upstream.closed).to.deep.equal([1000, '']);
      await outcome.done;
      const rig2 = await wsRig(echo);
      const client2 = await rig2.client();
      const outcome2 = await rig2.proxy.nextOutcome();
      const upstream2 = watch(rig2.upstreamSockets[0]!);
      outcome2.proxy.close(4005, 'to client only');
      expect(await client2.closed).to.deep.equal({ code: 4005, reason: 'to client only' });
      expect(await upstream2.closed).to.deep.equal([4005, '']);
    });

    it('with a code that may not be sent: throws WSP_ERR_INVALID_FRAME and sends nothing', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const { proxy } = await rig.proxy.nextOutcome();
      expect(() => proxy.close(1005)).to.throw().with.property('code', 'WSP_ERR_INVALID_FRAME');
      expect(() => proxy.close(1000, '', 999)).to.throw().with.property('code', 'WSP_ERR_INVALID_FRAME');
      client.ws.send('still open');
      await client.waitMessages(1);
      expect(client.events).to.deep.equal(['message:still open']);
      proxy.close(1000, 'now');
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'now' });
    });

    it('from inside onFrame: the frame it returns is delivered before the close frame (both directions)', async () => {
      const rig = await rawRig({
        onFrame: (proxy, role, type, payload) => {
          if (type === 'text' && payload.toString() === 'last') {
            proxy.close(4002, 'after your last', 4003, 'after their last');
            return `${payload.toString()} (from ${role})`;
          }
          return payload;
        },
      });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.send(textFrame('first'), textFrame('last'));
      const upstreamClose = await upstream.waitClose();
      expect(upstream.frames.map(text)).to.deep.equal([
        { type: 'text', fin: true, data: 'first' },
        { type: 'text', fin: true, data: 'last (from client)' },
        { type: 'close', fin: true, data: 'after their last', code: 4003 },
      ]);
      expect(text(upstreamClose).code).to.equal(4003);
      expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'after your last', code: 4002 });
      client.send(closeFrame(4002));
      upstream.send(closeFrame(4003));
      upstream.socket.end();
      await Promise.all([client.closed, upstream.closed]);
      const { summary } = await outcome.done;
      expect(summary?.closedBy).to.equal('proxy');
    });

    it('from inside onFrame for an upstream frame: the client gets the frame, then the close', async () => {
      const rig = await rawRig({
        onFrame: (proxy, _role, type, payload) => {
          if (type === 'binary') {
            proxy.close(4010, 'done');
            return Buffer.concat([payload, Buffer.from('!')]);
          }
          return payload;
        },
      });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      upstream.send({ type: 'binary', fin: true, rsv1: false, payload: Buffer.from('final') }, textFrame('never'));
      await client.waitClose();
      expect(client.frames.map(text)).to.deep.equal([
        { type: 'binary', fin: true, data: 'final!' },
        { type: 'close', fin: true, data: 'done', code: 4010 },
      ]);
      client.send(closeFrame(4010));
      await upstream.waitClose();
      upstream.send(closeFrame(4010));
      upstream.socket.end();
      await Promise.all([client.closed, upstream.closed]);
    });

    it('from inside an async onFrame: the frame still goes first', async () => {
      const rig = await rawRig({
        onFrame: async (proxy, _role, type, payload) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (type === 'text') proxy.close(4020);
          return payload;
        },
      });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      client.send(textFrame('payload then close'));
      await upstream.waitClose();
      expect(upstream.frames.map(text)).to.deep.equal([
        { type: 'text', fin: true, data: 'payload then close' },
        { type: 'close', fin: true, data: '', code: 4020 },
      ]);
    });
  });

  describe('send()', () => {
    it('injects frames in FIFO order with forwarded frames', async () => {
      const rig = await rawRig({
        onFrame: (proxy, role, _type, payload) => {
          if (role === 'upstream' && payload.toString() === 'u2') proxy.send('client', textFrame('injected before u2'));
          return payload;
        },
      });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const { proxy } = await rig.proxy.nextOutcome();
      upstream.send(textFrame('u1'));
      await client.waitFrames(1);
      proxy.send('client', textFrame('injected after u1'));
      proxy.send('upstream', textFrame('to upstream'));
      upstream.send(textFrame('u2'), textFrame('u3'));
      await client.waitFrames(5);
      expect(client.frames.map((f) => f.payload.toString())).to.deep.equal(['u1', 'injected after u1', 'injected before u2', 'u2', 'u3']);
      await upstream.waitFrames(1);
      expect(upstream.frames.map(text)).to.deep.equal([{ type: 'text', fin: true, data: 'to upstream' }]);
    });

    it('holds an injected data message while a forwarded fragmented message is open; a ping goes at once', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const { proxy } = await rig.proxy.nextOutcome();
      upstream.send(textFrame('part 1', false));
      await client.waitFrames(1);
      proxy.send('client', textFrame('injected'));
      proxy.send('client', pingFrame('now'));
      await client.waitFrames(2);
      upstream.send(continuationFrame('part 2', false));
      await client.waitFrames(3);
      expect(client.frames.map(text)).to.deep.equal([
        { type: 'text', fin: false, data: 'part 1' },
        { type: 'ping', fin: true, data: 'now' },
        { type: 'continuation', fin: false, data: 'part 2' },
      ]);
      upstream.send(continuationFrame('end'), textFrame('after'));
      await client.waitFrames(6);
      expect(client.frames.slice(3).map(text)).to.deep.equal([
        { type: 'continuation', fin: true, data: 'end' },
        { type: 'text', fin: true, data: 'injected' },
        { type: 'text', fin: true, data: 'after' },
      ]);
    });

    it('after a close frame was sent to a side: WSP_ERR_WRITE_AFTER_CLOSE', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const { proxy } = outcome;
      proxy.close(1000, 'bye');
      expect(() => proxy.send('client', textFrame('late'))).to.throw().with.property('code', 'WSP_ERR_WRITE_AFTER_CLOSE');
      expect(() => proxy.send('upstream', pingFrame())).to.throw().with.property('code', 'WSP_ERR_WRITE_AFTER_CLOSE');
      expect(() => proxy.send('client', closeFrame(1000))).to.throw().with.property('code', 'WSP_ERR_WRITE_AFTER_CLOSE');
      await client.closed;
      await outcome.done;
      expect(() => proxy.send('client', textFrame('after the end'))).to.throw().with.property('code', 'WSP_ERR_WRITE_AFTER_CLOSE');
    });

    it('a close frame sent with send() counts as the side\'s close frame', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      outcome.proxy.send('client', closeFrame(4004, 'via send'));
      expect(await client.closed).to.deep.equal({ code: 4004, reason: 'via send' });
      // The client's reply is forwarded to the upstream.
      const upstream = rig.upstreamSockets[0]!;
      await until(() => upstream.readyState === upstream.CLOSED);
      const { summary } = await outcome.done;
      expect(summary?.client.closeSent).to.deep.equal({ code: 4004, reason: 'via send' });
      expect(summary?.upstream.closeSent).to.deep.equal({ code: 4004, reason: 'via send' });
    });

    it('rejects frames that cannot be sent: fragments, oversized pings, invalid close codes', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const { proxy } = await rig.proxy.nextOutcome();
      expect(() => proxy.send('client', textFrame('part', false))).to.throw().with.property('code', 'WSP_ERR_INVALID_FRAME');
      expect(() => proxy.send('client', continuationFrame('x'))).to.throw().with.property('code', 'WSP_ERR_INVALID_FRAME');
      expect(() => proxy.send('client', pingFrame(Buffer.alloc(126)))).to.throw().with.property('code', 'WSP_ERR_INVALID_FRAME');
      expect(() => proxy.send('client', closeFrame(1005))).to.throw().with.property('code', 'WSP_ERR_INVALID_FRAME');
      expect(() => proxy.send('upstream', closeFrame(undefined, 'reason without a code'))).to.throw().with.property('code', 'WSP_ERR_INVALID_FRAME');
      expect(() => proxy.send('nobody' as 'client', textFrame('x'))).to.throw().with.property('code', 'WSP_ERR_NOT_CONNECTED');
      // The connection is still usable.
      client.ws.send('still fine');
      await client.waitMessages(1);
      expect(client.messages).to.deep.equal(['still fine']);
      client.ws.close();
      await client.closed;
    });
  });

  it('a WebSocketProxy that never connected can be closed without effect', () => {
    const proxy = new WebSocketProxy();
    expect(() => proxy.close()).not.to.throw();
  });
});
