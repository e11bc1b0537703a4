import { expect } from 'chai';
import { Transform, pipeline } from 'readable-stream';
import type { Frame } from '../../src/frame.js';
import {
  FrameReadable, FrameWritable, WebSocketProxy, aggregate, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame,
  type OnFrame, type ProxyRole,
} from '../../src/index.js';
import { echo } from '../helpers/proxy-harness.js';
import { RawPeer, recordingLogger, text, until } from '../helpers/proxy-peers.js';
import { rawUpgradeClient } from '../helpers/sockets.js';
import { encodeFrame } from '../../src/protocol/encode.js';
import { randomFrames } from '../helpers/frames.js';
import { SeededRandom } from '../helpers/random.js';
import { onCleanup, rawRig, releaseAll, turns, wsRig } from './rig.js';

type Call = [ProxyRole, string, string, boolean, number | undefined];

/** An onFrame that records its calls as [role, type, payload, fin, code] and returns `result`. */
function recorder(result: (role: ProxyRole, type: string, payload: Buffer) => ReturnType<OnFrame<WebSocketProxy>> = (_r, _t, p) => p) {
  const calls: Call[] = [];
  const onFrame: OnFrame<WebSocketProxy> = (_proxy, role, type, payload, fin, code) => {
    calls.push([role, type, payload.toString(), fin, code]);
    return result(role, type, payload);
  };
  return { calls, onFrame };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('WebSocketProxy', () => {
  afterEach(releaseAll);

  describe('API', () => {
    it('execute() before the handshakes rejects WSP_ERR_NOT_CONNECTED', async () => {
      const proxy = new WebSocketProxy();
      const err = await proxy.execute().then(() => undefined, (e: unknown) => e as { code: string; message: string });
      expect(err).to.deep.include({ code: 'WSP_ERR_NOT_CONNECTED', message: 'not connected: client handshake not complete' });
    });

    it('send() before the handshakes throws WSP_ERR_NOT_CONNECTED', () => {
      const proxy = new WebSocketProxy();
      expect(() => proxy.send('client', textFrame('x'))).to.throw().with.property('code', 'WSP_ERR_NOT_CONNECTED');
      expect(() => proxy.send('upstream', pingFrame())).to.throw().with.property('code', 'WSP_ERR_NOT_CONNECTED');
    });

    it('client and upstream are undefined before their handshakes, then { readable, writable }', async () => {
      let before: [unknown, unknown] = [null, null];
      const rig = await wsRig(echo, undefined, {
        handshake: async (proxy, url, req, socket, head) => {
          before = [proxy.client, proxy.upstream];
          await proxy.connect(url, req, socket, head);
        },
      });
      const client = await rig.client();
      const { proxy } = await rig.proxy.nextOutcome();
      expect(before).to.deep.equal([undefined, undefined]);
      expect(proxy.client?.readable).to.be.instanceOf(FrameReadable);
      expect(proxy.client?.writable).to.be.instanceOf(FrameWritable);
      expect(proxy.upstream?.readable).to.be.instanceOf(FrameReadable);
      expect(proxy.upstream?.writable).to.be.instanceOf(FrameWritable);
      expect(proxy.client?.readable).not.to.equal(proxy.upstream?.readable);
      client.ws.close();
      await client.closed;
    });

    it('relays text and binary both ways and resolves execute() with a summary', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcomeP = rig.proxy.nextOutcome();
      client.ws.send('hello world!');
      client.ws.send(Buffer.from('你好, WebSocket!'));
      await client.waitMessages(2);
      expect(client.messages[0]).to.equal('hello world!');
      expect(Buffer.isBuffer(client.messages[1])).to.equal(true);
      expect((client.messages[1] as Buffer).toString()).to.equal('你好, WebSocket!');
      client.ws.close(1000, 'done');
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'done' });
      const { summary, error } = await (await outcomeP).done;
      expect(error).to.equal(undefined);
      const binaryLength = Buffer.byteLength('你好, WebSocket!');
      expect(summary).to.deep.equal({
        closedBy: 'client',
        error: undefined,
        client: {
          closeReceived: { code: 1000, reason: 'done' }, closeSent: { code: 1000, reason: 'done' },
          frames: 3, bytes: 12 + binaryLength + 4, aborted: false,
        },
        upstream: {
          closeReceived: { code: 1000, reason: 'done' }, closeSent: { code: 1000, reason: 'done' },
          frames: 3, bytes: 12 + binaryLength + 4, aborted: false,
        },
      });
    });

    it('execute() called twice returns the same promise', async () => {
      const rig = await wsRig(echo, undefined, { execute: false });
      const client = await rig.client();
      const { proxy } = await rig.proxy.nextOutcome();
      const first = proxy.execute();
      expect(proxy.execute()).to.equal(first);
      client.ws.close();
      await client.closed;
      await first;
    });
  });

  describe('onFrame', () => {
    it('is called with (proxy, role, type, payload Buffer, fin, code) for every frame, close reason as payload', async () => {
      let self: unknown;
      const payloads: unknown[] = [];
      const { calls, onFrame } = recorder();
      // ws answers pings by itself (autoPong).
      const rig = await wsRig(echo, () => ({
        onFrame: (proxy, ...rest) => {
          self = proxy;
          payloads.push(rest[2]);
          return onFrame(proxy, ...rest);
        },
      }));
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      client.ws.send('hi');
      await client.waitMessages(1);
      client.ws.ping('p1');
      await until(() => client.events.includes('pong:p1'));
      client.ws.close(4000, 'bye');
      await client.closed;
      await outcome.done;
      expect(self).to.equal(outcome.proxy);
      expect(payloads.every((p) => Buffer.isBuffer(p))).to.equal(true);
      expect(calls).to.deep.equal([
        ['client', 'text', 'hi', true, undefined],
        ['upstream', 'text', 'hi', true, undefined],
        ['client', 'ping', 'p1', true, undefined],
        ['upstream', 'pong', 'p1', true, undefined],
        ['client', 'close', 'bye', true, 4000],
        ['upstream', 'close', 'bye', true, 4000],
      ]);
    });

    it('async: order is kept per direction even when an earlier frame resolves later', async () => {
      const started: string[] = [];
      const rig = await wsRig(echo, {
        onFrame: async (_p, role, type, payload) => {
          if (type !== 'text') return payload;
          const name = `${role}:${payload.toString()}`;
          started.push(name);
          // The first message of each direction takes longer than the ones after it.
          if (payload.toString() === 'm0') await delay(40);
          else if (payload.toString() === 'm1') await delay(5);
          return Buffer.from(`${payload.toString()}/${role[0]}`);
        },
      });
      const client = await rig.client();
      const upstreamGot: string[] = [];
      const ready = until(() => rig.upstreamSockets.length === 1);
      await ready;
      rig.upstreamSockets[0]!.on('message', (data) => upstreamGot.push(data.toString()));
      for (let i = 0; i < 5; i++) client.ws.send(`m${i}`);
      await client.waitMessages(5);
      expect(upstreamGot).to.deep.equal(['m0/c', 'm1/c', 'm2/c', 'm3/c', 'm4/c']);
      expect(client.messages).to.deep.equal(['m0/c/u', 'm1/c/u', 'm2/c/u', 'm3/c/u', 'm4/c/u']);
      // One frame at a time per direction: the next call starts only after the previous settled.
      expect(started.filter((s) => s.startsWith('client:'))).to.deep.equal(['client:m0', 'client:m1', 'client:m2', 'client:m3', 'client:m4']);
      client.ws.close();
      await client.closed;
    });

    it('a string or a Buffer replaces the payload, keeping the opcode', async () => {
      const rig = await wsRig((ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })), {
        onFrame: (_p, role, type, payload) => {
          if (type === 'close') return payload;
          return role === 'client' ? `updated ${role} frame (${type})` : Buffer.from(`${payload.toString()} + ${role}`);
        },
      });
      const client = await rig.client();
      client.ws.send('a');
      client.ws.send(Buffer.from('b'));
      await client.waitMessages(2);
      expect(client.messages[0]).to.equal('updated client frame (text) + upstream');
      expect(client.messages[1]).to.be.instanceOf(Buffer);
      expect((client.messages[1] as Buffer).toString()).to.equal('updated client frame (binary) + upstream');
      client.ws.close();
      await client.closed;
    });

    it('null and undefined drop the frame', async () => {
      const rig = await rawRig({
        onFrame: (_p, _r, type, payload) => {
          if (payload.toString() === 'drop null') return null;
          if (payload.toString() === 'drop undefined') return undefined;
          return type === 'ping' && payload.toString() === 'drop ping' ? null : payload;
        },
      });
      const client = await rig.client();
      const upstream = await rig.upstream();
      upstream.send(textFrame('a'), textFrame('drop null'), textFrame('b'), textFrame('drop undefined'), pingFrame('drop ping'), textFrame('c'),
        closeFrame(1000, 'server close'));
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'server close' });
      expect(client.events).to.deep.equal(['message:a', 'message:b', 'message:c', 'close:1000:server close']);
    });

    it('{ payload, code } replaces a close frame\'s reason and code; { code } alone keeps the reason', async () => {
      const rig = await rawRig({
        onFrame: (_p, role, type, payload, _fin, code) => {
          if (type !== 'close') return payload;
          return role === 'upstream' ? { payload: `was ${code}: ${payload.toString()}`, code: 4001 } : { code: 4002 };
        },
      });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      upstream.send(closeFrame(1000, 'server close'));
      const close = await client.waitClose();
      expect(text(close)).to.deep.equal({ type: 'close', fin: true, data: 'was 1000: server close', code: 4001 });
      client.send(closeFrame(1000, 'client reply'));
      const reply = await upstream.waitClose();
      expect(text(reply)).to.deep.equal({ type: 'close', fin: true, data: 'client reply', code: 4002 });
      // The server closes TCP first (RFC 6455 section 7.1.1).
      upstream.socket.end();
      await Promise.all([client.closed, upstream.closed]);
    });

    it('a close frame cannot be dropped: it is forwarded unchanged, with a warning', async () => {
      const logger = recordingLogger();
      const rig = await wsRig(echo, { logger, onFrame: (_p, _r, type, payload) => (type === 'close' ? null : payload) });
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      client.ws.close(1000, 'goodbye');
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'goodbye' });
      const { summary } = await outcome.done;
      expect(summary?.upstream.closeSent).to.deep.equal({ code: 1000, reason: 'goodbye' });
      expect(logger.at('warn')).to.deep.equal([
        'client close frame cannot be dropped; forwarding it unchanged',
        'upstream close frame cannot be dropped; forwarding it unchanged',
      ]);
    });

    for (const mode of ['throws', 'rejects'] as const) {
      it(`an onFrame that ${mode} closes both sides with 1011 and summary.error carries that very error`, async () => {
        const boom = new Error(`boom (${mode})`);
        const logger = recordingLogger();
        const rig = await wsRig(echo, {
          logger,
          onFrame: (_p, role, _t, payload) => {
            if (role === 'client' && payload.toString() === 'bad') {
              if (mode === 'throws') throw boom;
              return Promise.reject(boom);
            }
            return payload;
          },
        });
        const client = await rig.client();
        const outcome = await rig.proxy.nextOutcome();
        const upstreamClosed = new Promise<[number, string]>((resolve) => rig.upstreamSockets[0]!.on('close', (code, reason) => resolve([code, reason.toString()])));
        const upstreamGot: string[] = [];
        rig.upstreamSockets[0]!.on('message', (data) => upstreamGot.push(data.toString()));
        client.ws.send('good');
        await client.waitMessages(1);
        client.ws.send('bad');
        expect(await client.closed).to.deep.equal({ code: 1011, reason: 'Internal Error' });
        expect(await upstreamClosed).to.deep.equal([1011, 'Internal Error']);
        expect(upstreamGot).to.deep.equal(['good']);
        const { error, summary } = await outcome.done;
        expect(error).to.equal(undefined);
        expect(summary?.error).to.deep.include({ code: 'WSP_ERR_STAGE_FAILED', closeCode: 1011 });
        expect(summary?.error?.cause).to.equal(boom);
        expect(logger.at('error')).to.deep.equal([`proxy failed: boom (${mode})`]);
      });
    }

    it('an invalid return value closes both sides with 1011 and summary.error carries the TypeError', async () => {
      const rig = await wsRig(echo, { onFrame: () => 42 as unknown as string });
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstreamClosed = new Promise<number>((resolve) => rig.upstreamSockets[0]!.on('close', (code) => resolve(code)));
      client.ws.send('x');
      expect((await client.closed).code).to.equal(1011);
      expect(await upstreamClosed).to.equal(1011);
      const { error: rejected, summary } = await outcome.done;
      expect(rejected).to.equal(undefined);
      const error = summary?.error?.cause as Error | undefined;
      expect(summary?.error?.code).to.equal('WSP_ERR_STAGE_FAILED');
      expect(error).to.be.instanceOf(TypeError);
      expect(error?.message).to.equal('options.onFrame return value must be a string, a Buffer, null, undefined or { payload, code }');
    });
  });

  describe('aggregation', () => {
    it('forwards a fragmented message as one frame of the first fragment\'s type, FIN set; interleaved pings at once', async () => {
      const { calls, onFrame } = recorder();
      const rig = await rawRig({ aggregateFragments: true, onFrame });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      client.send(textFrame('hel', false), pingFrame('1'), continuationFrame('lo ', false), pongFrame('2'), continuationFrame('world'));
      upstream.send(binaryFrame('', false), continuationFrame('ab', false), pingFrame('3'), continuationFrame('cd', false), continuationFrame(''));
      await upstream.waitFrames(3);
      await client.waitFrames(2);
      expect(upstream.frames.map(text)).to.deep.equal([
        { type: 'ping', fin: true, data: '1' },
        { type: 'pong', fin: true, data: '2' },
        { type: 'text', fin: true, data: 'hello world' },
      ]);
      expect(client.frames.map(text)).to.deep.equal([
        { type: 'ping', fin: true, data: '3' },
        { type: 'binary', fin: true, data: 'abcd' },
      ]);
      // onFrame saw whole messages only.
      const byRole = (role: ProxyRole) => calls.filter((c) => c[0] === role);
      expect(byRole('client')).to.deep.equal([
        ['client', 'ping', '1', true, undefined],
        ['client', 'pong', '2', true, undefined],
        ['client', 'text', 'hello world', true, undefined],
      ]);
      expect(byRole('upstream')).to.deep.equal([
        ['upstream', 'ping', '3', true, undefined],
        ['upstream', 'binary', 'abcd', true, undefined],
      ]);
      client.send(closeFrame(1000));
      await upstream.waitClose();
      upstream.send(closeFrame(1000));
      upstream.socket.end();
      await Promise.all([client.closed, upstream.closed]);
    });

    it('consecutive aggregated messages start afresh', async () => {
      const rig = await rawRig({ aggregateFragments: true });
      const client = await rig.client();
      const upstream = await rig.upstream();
      upstream.send(textFrame('', false), continuationFrame('hello', false), continuationFrame('world', false), continuationFrame(''));
      upstream.send(binaryFrame('good', false), continuationFrame('bye'));
      upstream.send(textFrame('single'));
      await client.waitMessages(3);
      expect(client.messages[0]).to.equal('helloworld');
      expect((client.messages[1] as Buffer).toString()).to.equal('goodbye');
      expect(client.messages[2]).to.equal('single');
    });

    it('without aggregation every fragment passes with its own opcode and FIN, controls in place', async () => {
      const { calls, onFrame } = recorder();
      const rig = await rawRig({ onFrame });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      client.send(textFrame('hel', false), pingFrame('1'), continuationFrame('lo', false), continuationFrame(' world'));
      await upstream.waitFrames(4);
      expect(upstream.frames.map(text)).to.deep.equal([
        { type: 'text', fin: false, data: 'hel' },
        { type: 'ping', fin: true, data: '1' },
        { type: 'continuation', fin: false, data: 'lo' },
        { type: 'continuation', fin: true, data: ' world' },
      ]);
      expect(calls).to.deep.equal([
        ['client', 'text', 'hel', false, undefined],
        ['client', 'ping', '1', true, undefined],
        ['client', 'continuation', 'lo', false, undefined],
        ['client', 'continuation', ' world', true, undefined],
      ]);
    });
  });

  describe('transforms option', () => {
    it('runs the user\'s stages after aggregation and before onFrame, per direction', async () => {
      const seen: string[] = [];
      const tag = (label: string) => new Transform({
        objectMode: true,
        transform(frame: Frame, _e, cb) {
          cb(null, frame.type === 'text' ? { ...frame, payload: Buffer.from(`${label}(${frame.payload.toString()})`) } : frame);
        },
      });
      const rig = await rawRig(() => ({
        aggregateFragments: true,
        transforms: { client: [tag('c1'), tag('c2')], upstream: [tag('u1')] },
        onFrame: (_p, role, type, payload) => {
          if (type === 'text') seen.push(`${role}:${payload.toString()}`);
          return payload;
        },
      }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      client.send(textFrame('he', false), continuationFrame('llo'));
      upstream.send(textFrame('hi'));
      await upstream.waitFrames(1);
      await client.waitFrames(1);
      expect(text(upstream.frames[0]!)).to.deep.equal({ type: 'text', fin: true, data: 'c2(c1(hello))' });
      expect(text(client.frames[0]!)).to.deep.equal({ type: 'text', fin: true, data: 'u1(hi)' });
      expect(seen.sort()).to.deep.equal(['client:c2(c1(hello))', 'upstream:u1(hi)']);
    });

    it('a transform that fails closes both sides with 1011 and summary.error carries its error', async () => {
      const broken = new Error('transform broke');
      const rig = await wsRig(echo, () => ({
        transforms: {
          client: [new Transform({
            objectMode: true,
            transform(frame: Frame, _e, cb) {
              cb(frame.payload.toString() === 'break' ? broken : null, frame);
            },
          })],
        },
      }));
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstreamClosed = new Promise<number>((resolve) => rig.upstreamSockets[0]!.on('close', (code) => resolve(code)));
      client.ws.send('fine');
      await client.waitMessages(1);
      client.ws.send('break');
      expect(await client.closed).to.deep.equal({ code: 1011, reason: 'Internal Error' });
      expect(await upstreamClosed).to.equal(1011);
      const { error, summary } = await outcome.done;
      expect(error).to.equal(undefined);
      expect(summary?.error?.code).to.equal('WSP_ERR_STAGE_FAILED');
      expect(summary?.error?.cause).to.equal(broken);
    });
  });

  describe('masking', () => {
    it('masks frames to the upstream with a fresh key each; frames to the client are not masked', async () => {
      const rig = await rawRig();
      const { socket: clientSocket, head: clientHead } = await rawUpgradeClient(Number(new URL(rig.proxy.url).port));
      onCleanup(() => clientSocket.destroy());
      const { socket: upstreamSocket } = await rig.server.accept();
      const fromProxy: Buffer[] = [];
      upstreamSocket.on('data', (chunk: Buffer) => fromProxy.push(chunk));
      const toClient: Buffer[] = [clientHead];
      clientSocket.on('data', (chunk: Buffer) => toClient.push(chunk));
      // The raw client sends two masked text frames.
      const key = Buffer.from([1, 2, 3, 4]);
      for (const word of ['one', 'two']) {
        const payload = Buffer.from(word).map((b, i) => b ^ key[i % 4]!);
        clientSocket.write(Buffer.concat([Buffer.from([0x81, 0x80 | 3]), key, payload]));
      }
      await until(() => Buffer.concat(fromProxy).length >= 2 * (2 + 4 + 3));
      const bytes = Buffer.concat(fromProxy);
      const frames = [bytes.subarray(0, 9), bytes.subarray(9, 18)];
      const keys: Buffer[] = [];
      const words: string[] = [];
      for (const frame of frames) {
        expect(frame[0]).to.equal(0x81);
        expect(frame[1]! & 0x80, 'mask bit').to.equal(0x80);
        expect(frame[1]! & 0x7f).to.equal(3);
        const frameKey = frame.subarray(2, 6);
        keys.push(Buffer.from(frameKey));
        words.push(Buffer.from(frame.subarray(6, 9).map((b, i) => b ^ frameKey[i % 4]!)).toString());
      }
      expect(words).to.deep.equal(['one', 'two']);
      expect(keys[0]!.equals(keys[1]!), 'two frames, two keys').to.equal(false);
      expect(keys[0]!.equals(key)).to.equal(false);
      // The upstream answers unmasked; the client gets it unmasked.
      upstreamSocket.write(Buffer.from([0x82, 2, 0x68, 0x69]));
      await until(() => Buffer.concat(toClient).length >= 4);
      expect([...Buffer.concat(toClient)]).to.deep.equal([0x82, 2, 0x68, 0x69]);
    });
  });

  describe('masking in place', () => {
    // 256 KiB: many socket chunks, so the parser assembles the payload by copying; above MASK_IN_PLACE_MIN.
    const big = (seed: number): Buffer => Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 13 + seed) & 0xff));

    it('without user code, large messages cross both ways intact (payloads masked in place on the way up)', async () => {
      for (const aggregateFragments of [false, true]) {
        const rig = await wsRig(echo, { aggregateFragments });
        const client = await rig.client();
        const sent = [big(1), big(2), big(3)];
        for (const payload of sent) client.ws.send(payload);
        await client.waitMessages(3);
        expect(client.messages.map((m, i) => (m as Buffer).equals(sent[i]!))).to.deep.equal([true, true, true]);
      }
    });

    it('never masks a payload onFrame saw: what it kept stays unmasked after the frame went upstream', async () => {
      const kept: Buffer[] = [];
      const rig = await wsRig(echo, {
        onFrame: (_proxy, role, type, payload) => {
          if (role === 'client' && type === 'binary') kept.push(payload);
          return payload;
        },
      });
      const client = await rig.client();
      const sent = [big(4), big(5)];
      for (const payload of sent) client.ws.send(payload);
      await client.waitMessages(2);
      expect(kept).to.have.length(2);
      expect(kept.map((payload, i) => payload.equals(sent[i]!))).to.deep.equal([true, true]);
      expect(client.messages.map((m, i) => (m as Buffer).equals(sent[i]!))).to.deep.equal([true, true]);
    });
  });

  describe('cut-through', () => {
    /** A masked 1 MiB binary frame as a client sends it, and its payload. */
    function bigFrame(): { bytes: Buffer; payload: Buffer } {
      const payload = Buffer.from(Array.from({ length: 1024 * 1024 }, (_, i) => (i * 7) & 0xff));
      return { bytes: Buffer.concat(encodeFrame(binaryFrame(payload), Buffer.from([1, 2, 3, 4]))), payload };
    }

    it('relays a large frame as it arrives (no stages): the upstream has most of the sent part before the rest is sent', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const { bytes, payload } = bigFrame();
      client.sendRaw(bytes.subarray(0, 300 * 1024));
      await until(() => upstream.socket.bytesRead >= 200 * 1024);
      expect(upstream.frames).to.deep.equal([]);
      client.sendRaw(bytes.subarray(300 * 1024));
      client.send(pingFrame('after'));
      await upstream.waitFrames(2);
      expect(upstream.frames[0]!.payload.equals(payload)).to.equal(true);
      expect(upstream.frames.map((f) => f.type)).to.deep.equal(['binary', 'ping']);
      // And back: the upstream's unmasked 1 MiB frame reaches the client whole.
      upstream.send(binaryFrame(payload));
      await client.waitFrames(1);
      expect(client.frames[0]!.payload.equals(payload)).to.equal(true);
    });

    for (const seed of [1, 2, 3]) {
      it(`relays random frame sequences written in random chunks, both ways, unchanged (seed ${seed})`, async () => {
        const rng = new SeededRandom(seed);
        const rig = await rawRig();
        const client = await rig.rawClient();
        const upstream = await rig.upstream();
        for (const [from, to, key] of [[client, upstream, Buffer.from([5, 6, 7, 8])], [upstream, client, undefined]] as const) {
          const frames = randomFrames(rng, 12, 200_000).filter((f) => f.type !== 'close');
          const bytes = Buffer.concat(frames.map((f) => Buffer.concat(encodeFrame(f, key))));
          const before = to.frames.length;
          // Chunks of up to 40 KiB with a pause now and then, so that large frames arrive in parts.
          for (let at = 0; at < bytes.length;) {
            const n = Math.min(bytes.length - at, rng.int(1, 40_000));
            from.sendRaw(bytes.subarray(at, at + n));
            at += n;
            if (rng.chance(0.3)) await turns(2);
          }
          await to.waitFrames(before + frames.length);
          const got = to.frames.slice(before).map((f) => `${f.type}:${f.fin}:${f.payload.toString('hex')}`);
          expect(got).to.deep.equal(frames.map((f) => `${f.type}:${f.fin}:${f.payload.toString('hex')}`));
        }
      });
    }

    it('waits for the whole frame when a stage needs it (aggregateFragments)', async () => {
      const rig = await rawRig({ aggregateFragments: true });
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      // What the upstream read so far: its upgrade request.
      const handshake = upstream.socket.bytesRead;
      const { bytes, payload } = bigFrame();
      client.sendRaw(bytes.subarray(0, 300 * 1024));
      await until(() => outcome.proxy.client!.readable.bytesReceived >= 300 * 1024);
      await turns();
      expect(upstream.socket.bytesRead).to.equal(handshake);
      client.sendRaw(bytes.subarray(300 * 1024));
      await upstream.waitFrames(1);
      expect(upstream.frames[0]!.payload.equals(payload)).to.equal(true);
    });

    it('drops the upstream when the client vanishes mid-frame: no close can follow a cut frame', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = rig.proxy.nextOutcome();
      const { bytes } = bigFrame();
      client.sendRaw(bytes.subarray(0, 300 * 1024));
      await until(() => upstream.socket.bytesRead >= 200 * 1024);
      client.destroy();
      await upstream.closed;
      expect(upstream.frames.filter((f) => f.type === 'close')).to.deep.equal([]);
      const { summary } = await (await outcome).done;
      expect(summary?.upstream.closeSent).to.equal(undefined);
    });

    it('sends the proxy\'s own close after the frame being relayed, not inside it', async () => {
      const rig = await rawRig();
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const { bytes, payload } = bigFrame();
      client.sendRaw(bytes.subarray(0, 300 * 1024));
      await until(() => upstream.socket.bytesRead >= 200 * 1024);
      outcome.proxy.close(1001, 'bye');
      client.sendRaw(bytes.subarray(300 * 1024));
      await upstream.waitFrames(2);
      expect(upstream.frames[0]!.payload.equals(payload)).to.equal(true);
      expect([upstream.frames[1]!.type, upstream.frames[1]!.code]).to.deep.equal(['close', 1001]);
    });
  });

  describe('debug logging', () => {
    it('with debug: one line per frame both ways, handshake and close events; the URL query is not logged', async () => {
      const logger = recordingLogger();
      const rig = await wsRig(echo, { debug: true, logger }, { path: '/chat?token=secret' });
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      client.ws.send('hello world!');
      await client.waitMessages(1);
      client.ws.send('a fairly long message that is cut in the log\n');
      await client.waitMessages(2);
      client.ws.close(1000, 'bye');
      await client.closed;
      await outcome.done;
      const port = new URL(rig.upstreamUrl).port;
      const debug = logger.at('debug');
      expect(logger.lines.join('\n')).not.to.contain('secret');
      expect(debug.slice(0, 4)).to.deep.equal([
        `connecting to "ws://127.0.0.1:${port}/chat" upstream`,
        `connected to "ws://127.0.0.1:${port}/chat" upstream`,
        'completing client handshake',
        'completed client handshake',
      ]);
      const frames = debug.filter((l) => l.startsWith('[frame]'));
      expect(frames).to.deep.equal([
        '[frame] client --> upstream text len=12 fin=true aggregating=false "hello world!"',
        '[frame] client <-- upstream text len=12 fin=true aggregating=false "hello world!"',
        '[frame] client --> upstream text len=45 fin=true aggregating=false "a fairly long message th"[...]',
        '[frame] client <-- upstream text len=45 fin=true aggregating=false "a fairly long message th"[...]',
        '[frame] client --x upstream close code=1000 len=3 fin=true aggregating=false "bye"',
        '[frame] client x-- upstream close code=1000 len=3 fin=true aggregating=false "bye"',
      ]);
      expect(debug).to.include('upstream closing: code: 1000 reason: "bye"');
      expect(debug).to.include('client closing: code: 1000 reason: "bye"');
      expect(debug[debug.length - 1]).to.equal('proxy finished');
      // The close and its reply, each forwarded.
      expect(logger.at('info')).to.deep.equal(['forwarding close with code: 1000, payload: "bye"', 'forwarding close with code: 1000, payload: "bye"']);
      expect(logger.at('warn')).to.deep.equal([]);
      expect(logger.at('error')).to.deep.equal([]);
    });

    it('without debug: no per-frame lines, no debug lines at all', async () => {
      const logger = recordingLogger();
      const rig = await wsRig(echo, { logger });
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      client.ws.send('hello');
      await client.waitMessages(1);
      client.ws.close(1000, 'bye');
      await client.closed;
      await outcome.done;
      expect(logger.at('debug')).to.deep.equal([]);
      expect(logger.lines).to.deep.equal(['info: forwarding close with code: 1000, payload: "bye"', 'info: forwarding close with code: 1000, payload: "bye"']);
    });
  });

  describe('proxy.client / proxy.upstream in a custom pipeline', () => {
    it('pipeline(client.readable, aggregate(), transform, upstream.writable) works without execute()', async () => {
      const rig = await wsRig(echo, undefined, { execute: false });
      const raw = await rawUpgradeClient(Number(new URL(rig.proxy.url).port));
      onCleanup(() => raw.socket.destroy());
      const client = new RawPeer(raw.socket, raw.head, 'client');
      const { proxy } = await rig.proxy.nextOutcome();
      const upper = new Transform({
        objectMode: true,
        transform(frame: Frame, _e, cb) {
          cb(null, frame.type === 'text' ? { ...frame, payload: Buffer.from(frame.payload.toString().toUpperCase()) } : frame);
        },
      });
      const ended: (Error | undefined)[] = [];
      const toUpstream = [proxy.client!.readable, aggregate(), upper, proxy.upstream!.writable] as unknown as NodeJS.ReadWriteStream[];
      const toClient = [proxy.upstream!.readable, proxy.client!.writable] as unknown as NodeJS.ReadWriteStream[];
      pipeline(toUpstream, (err) => ended.push(err ?? undefined));
      pipeline(toClient, (err) => ended.push(err ?? undefined));
      client.send(textFrame('hel', false), continuationFrame('lo', false), continuationFrame(' pipeline'));
      await client.waitFrames(1);
      expect(text(client.frames[0]!)).to.deep.equal({ type: 'text', fin: true, data: 'HELLO PIPELINE' });
      client.send(closeFrame(1000, 'bye'));
      const close = await client.waitClose();
      expect(text(close)).to.deep.equal({ type: 'close', fin: true, data: 'bye', code: 1000 });
      await client.closed;
      await until(() => ended.length === 2);
      expect(ended).to.deep.equal([undefined, undefined]);
    });
  });
});
