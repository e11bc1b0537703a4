/**
 * Regression tests of a proxied connection's life over real sockets (section 1 of the lifecycle
 * issue): whatever the peers, the stages or `onFrame` do, the process does not crash, each side is
 * sent the close code the ending table gives, both sockets close, `execute()` resolves with the
 * coded `summary.error`, and no timer is left.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  Duplex as NodeDuplex, PassThrough as NodePassThrough, Transform as NodeTransform, pipeline as nodePipeline,
} from 'node:stream';
import { expect } from 'chai';
import { Duplex, Transform, pipeline } from 'readable-stream';
import sinon from 'sinon';
import type { WebSocket } from 'ws';
import {
  type Frame, type ProxyOptions, type ProxySummary, type Stage, type StageContext, WebSocketProxy, WebSocketProxyError, aggregate, binaryFrame,
  closeFrame, kStageContext, map, pingFrame, textFrame,
} from '../../src/index.js';
import { RESPONSE_FLUSH_TIMEOUT } from '../../src/handshake/client.js';
import { type ProxyOutcome, echo, startProxy, startUpstream } from '../helpers/proxy-harness.js';
import { type RawPeer, type RecordingClient, portOf, rawClient, text, until, wsClient } from '../helpers/proxy-peers.js';
import { onCleanup, rawRig, releaseAll, turns, wsRig, fakeTimers } from './rig.js';

/** What a `ws` upstream connection received, and how it closed. */
function watch(ws: WebSocket): { messages: string[]; closed: Promise<[number, string]> } {
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
  return { messages, closed };
}

function closesOf(peer: RawPeer): Frame[] {
  return peer.frames.filter((f) => f.type === 'close');
}

/**
 * The connection's end: execute() resolved (never rejected, and the handshakes succeeded), with a
 * summary whose `error` has this code and close code.
 */
async function endedWith(outcome: ProxyOutcome, code: string, closeCode: number): Promise<ProxySummary> {
  const { summary, error, connectError } = await outcome.done;
  expect(connectError, 'connect() error').to.equal(undefined);
  expect(error, 'execute() rejection').to.equal(undefined);
  expect(summary).to.not.equal(undefined);
  expect(summary!.error, 'summary.error').to.be.instanceOf(WebSocketProxyError);
  expect(summary!.error).to.deep.include({ code, closeCode });
  return summary!;
}

/** The connection's clean end: execute() resolved with no `summary.error`. */
async function endedCleanly(outcome: ProxyOutcome): Promise<ProxySummary> {
  const { summary, error, connectError } = await outcome.done;
  expect(connectError, 'connect() error').to.equal(undefined);
  expect(error, 'execute() rejection').to.equal(undefined);
  expect(summary).to.not.equal(undefined);
  expect(summary!.error, 'summary.error').to.equal(undefined);
  return summary!;
}

/** Installs a spy on a process event for the rest of the test. */
function processSpy(event: 'unhandledRejection' | 'uncaughtException' | 'warning'): sinon.SinonSpy {
  const spy = sinon.spy();
  process.on(event, spy);
  onCleanup(() => process.off(event, spy));
  return spy;
}

/** A plain object-mode Transform (readable-stream) running `fn` for each frame. */
function plain(fn: (this: Transform, frame: Frame, callback: (error?: Error | null, frame?: Frame) => void) => void): Transform {
  return new Transform({
    objectMode: true,
    transform(frame: Frame, _encoding, callback) {
      fn.call(this as unknown as Transform, frame, callback);
    },
  });
}

/** The socket under a `ws` WebSocket (not in its public types). */
function socketOf(ws: WebSocket): net.Socket {
  return (ws as unknown as { _socket: net.Socket })._socket;
}

async function listen(server: http.Server | net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

function connections(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
}

describe('WebSocketProxy lifecycle regressions (real sockets)', () => {
  afterEach(releaseAll);

  describe('the README example', () => {
    const garbage = [
      { name: 'bytes that are no frame (0xff 0xfe ...)', bytes: Buffer.from('fffe0badc0ffee0102030405', 'hex'), code: 'WSP_ERR_UNEXPECTED_RSV' },
      { name: 'a frame with a reserved opcode (3)', bytes: Buffer.from([0x83, 0x80, 1, 2, 3, 4]), code: 'WSP_ERR_INVALID_OPCODE' },
    ];
    for (const sent of garbage) {
      it(`its handler, verbatim: a client sending ${sent.name} after the upgrade gets 1002, the upstream 1001; no crash, no unhandled rejection; execute() resolves with summary.error ${sent.code}`, async () => {
        const rejections = processSpy('unhandledRejection');
        const exceptions = processSpy('uncaughtException');
        const upstreams: ReturnType<typeof watch>[] = [];
        const upstream = await startUpstream((ws) => {
          upstreams.push(watch(ws));
          echo(ws);
        });
        onCleanup(() => upstream.close());
        const execute = sinon.spy(WebSocketProxy.prototype, 'execute');
        onCleanup(() => execute.restore());
        // The README's handler ends with console.log(summary...): recorded here, and its call tells
        // that the handler ran to its end.
        const log = sinon.stub(console, 'log');
        onCleanup(() => log.restore());

        const server = http.createServer();
        // ---- README.md, "The proxy", verbatim but for the upstream URL ----
        server.on('upgrade', async (req, socket, head) => {
          const proxy = new WebSocketProxy({
            aggregateFragments: true,
            // @ts-expect-error -- verbatim: proxy, role, fin and code are unused (noUnusedParameters)
            onFrame(proxy, role, type, payload, fin, code) {
              if (type === 'text' && payload.includes('secret')) return null; // drop it
              return payload;                                                  // forward as is
            },
          });
          try {
            await proxy.connect(`${upstream.url}/path`, req, socket, head); // upstream first, then client
          } catch {
            return; // the client was answered: the upstream's own status, 502, 504, or 400
          }
          const summary = await proxy.execute(); // both directions, until both sides are closed
          console.log(summary.closedBy, summary.client.closeReceived, summary.upstream.frames);
        });
        // ---- end of the README's handler ----
        const port = await listen(server);
        onCleanup(() => closeServer(server));

        const client = await rawClient(port);
        onCleanup(() => client.destroy());
        await until(() => upstreams.length === 1 && execute.callCount === 1);
        client.send(textFrame('a secret'), textFrame('hello'));
        await client.waitFrames(1);
        expect(client.frames.map(text)).to.deep.equal([{ type: 'text', fin: true, data: 'hello' }]);
        client.sendRaw(sent.bytes);

        const close = await client.waitClose();
        expect(close.code).to.equal(1002);
        expect(await upstreams[0]!.closed).to.deep.equal([1001, '']);
        await Promise.all([client.closed, until(() => log.callCount === 1)]);
        const summary = await (execute.returnValues[0] as Promise<ProxySummary>);
        expect(summary.error).to.deep.include({ code: sent.code, closeCode: 1002 });
        expect(close.payload.toString()).to.equal(summary.error!.message);
        expect(log.firstCall.args[0]).to.equal('proxy');
        expect(upstreams[0]!.messages).to.deep.equal(['hello']);
        await turns();
        expect(rejections.called, 'unhandledRejection').to.equal(false);
        expect(exceptions.called, 'uncaughtException').to.equal(false);
      });
    }
  });

  describe('a stage that drops close frames', () => {
    /** Forwards text frames only: pings, pongs and close frames are swallowed. */
    function textOnly(seen: string[]): Transform {
      return plain(function (frame, callback) {
        seen.push(frame.type);
        if (frame.type === 'text') this.push(frame);
        callback();
      });
    }

    it('on the client direction: the upstream still gets the client\'s close (1000 "bye"), its reply reaches the client; execute() resolves with no summary.error', async () => {
      const seen: string[] = [];
      const rig = await wsRig(echo, () => ({ transforms: { client: [textOnly(seen)] } }));
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      client.ws.send('hello');
      await client.waitMessages(1);
      client.ws.close(1000, 'bye');
      expect(await upstream.closed).to.deep.equal([1000, 'bye']);
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(upstream.messages).to.deep.equal(['hello']);
      // The stage did swallow the close frame.
      expect(seen).to.deep.equal(['text', 'close']);
      const summary = await endedCleanly(outcome);
      expect(summary.client).to.deep.include({ closeReceived: { code: 1000, reason: 'bye' }, closeSent: { code: 1000, reason: 'bye' }, aborted: false });
      expect(summary.upstream).to.deep.include({ closeReceived: { code: 1000, reason: 'bye' }, closeSent: { code: 1000, reason: 'bye' }, aborted: false });
    });

    it('on the upstream direction: the upstream\'s close reply still reaches the client; execute() resolves with no summary.error', async () => {
      const seen: string[] = [];
      const rig = await wsRig(echo, () => ({ transforms: { upstream: [textOnly(seen)] } }));
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      client.ws.send('hello');
      await client.waitMessages(1);
      client.ws.close(1000, 'bye');
      expect(await upstream.closed).to.deep.equal([1000, 'bye']);
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(client.messages).to.deep.equal(['hello']);
      expect(seen).to.deep.equal(['text', 'close']);
      const summary = await endedCleanly(outcome);
      expect(summary.client.closeSent).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(summary.upstream.closeReceived).to.deep.equal({ code: 1000, reason: 'bye' });
    });
  });

  describe('a stage that never calls back', () => {
    /** Holds the frame "hold" for ever (its callback is never called), and so everything after it. */
    function holding(held: Frame[]): Transform {
      return plain((frame, callback) => {
        if (frame.type === 'text' && frame.payload.toString() === 'hold') {
          held.push(frame);
          return;
        }
        callback(null, frame);
      });
    }

    it('holding a frame and the client\'s close: the connection ends within lingeringTime + lingeringTimeout, the upstream gets the client\'s own close, the client 1001; summary.error WSP_ERR_CLOSE_TIMEOUT, no timer left', async () => {
      const held: Frame[] = [];
      const rig = await rawRig(() => ({ lingeringTime: 3000, lingeringTimeout: 1000, transforms: { client: [holding(held)] } }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const timers = fakeTimers();
      client.send(textFrame('before'), textFrame('hold'), closeFrame(1000, 'bye'));
      await upstream.waitFrames(1);
      await until(() => held.length === 1 && outcome.proxy.client!.readable.closeReceived);
      await timers.tickAsync(2999);
      await turns();
      expect(closesOf(client)).to.deep.equal([]);
      expect(upstream.frames.map(text)).to.deep.equal([{ type: 'text', fin: true, data: 'before' }]);
      await timers.tickAsync(1);
      expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: '', code: 1001 });
      expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'bye', code: 1000 });
      // The proxy ends the client's TCP at once; the upstream (which neither replies nor closes) is
      // cut lingeringTimeout later.
      await client.closed;
      await timers.tickAsync(999);
      await turns();
      expect(upstream.isClosed).to.equal(false);
      await timers.tickAsync(1);
      await upstream.closed;
      const summary = await endedWith(outcome, 'WSP_ERR_CLOSE_TIMEOUT', 1001);
      expect(summary.closedBy).to.equal('client');
      expect(summary.client.closeSent).to.deep.equal({ code: 1001, reason: '' });
      expect(summary.upstream.closeSent).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(upstream.frames.map((f) => f.payload.toString())).to.not.include('hold');
      expect(timers.countTimers()).to.equal(0);
    });

    it('holding both sides\' closes: each side gets its peer\'s own close at lingeringTime, the connection ends lingeringTimeout later; summary.error WSP_ERR_CLOSE_TIMEOUT, no timer left', async () => {
      const held: Frame[] = [];
      const rig = await rawRig(() => ({ lingeringTime: 3000, lingeringTimeout: 1000, transforms: { client: [holding(held)], upstream: [holding(held)] } }));
      const client = await rig.rawClient();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      const timers = fakeTimers();
      client.send(textFrame('hold'), closeFrame(1000, 'bye'));
      upstream.send(textFrame('hold'), closeFrame(4000, 'from upstream'));
      await until(() => held.length === 2 && outcome.proxy.client!.readable.closeReceived && outcome.proxy.upstream!.readable.closeReceived);
      await timers.tickAsync(2999);
      await turns();
      expect(client.frames).to.deep.equal([]);
      expect(upstream.frames).to.deep.equal([]);
      await timers.tickAsync(1);
      expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'from upstream', code: 4000 });
      expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'bye', code: 1000 });
      await client.closed;
      await timers.tickAsync(1000);
      await upstream.closed;
      const summary = await endedWith(outcome, 'WSP_ERR_CLOSE_TIMEOUT', 1001);
      expect(summary.client.closeSent).to.deep.equal({ code: 4000, reason: 'from upstream' });
      expect(summary.upstream.closeSent).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(timers.countTimers()).to.equal(0);
    });
  });

  describe('stages and connections', () => {
    it('a stage array hoisted out of the upgrade handler serves one connection: the next new WebSocketProxy(options) throws a TypeError "already used by another proxy"; no MaxListenersExceededWarning', async () => {
      const warnings = processSpy('warning');
      const upstream = await startUpstream(echo);
      onCleanup(() => upstream.close());
      const stage = plain((frame, callback) => callback(null, frame.type === 'text' ? { ...frame, payload: Buffer.from(`t(${frame.payload.toString()})`) } : frame));
      const options = { transforms: { client: [stage] } };
      const refused: unknown[] = [];
      const runs: Promise<ProxySummary>[] = [];
      const server = http.createServer();
      server.on('upgrade', async (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        let proxy: WebSocketProxy;
        try {
          proxy = new WebSocketProxy(options);
        } catch (err) {
          refused.push(err);
          socket.destroy();
          return;
        }
        try {
          await proxy.connect(upstream.url, req, socket, head);
        } catch {
          return;
        }
        runs.push(proxy.execute());
      });
      const port = await listen(server);
      onCleanup(() => closeServer(server));
      const first = await wsClient(`ws://127.0.0.1:${port}`);
      onCleanup(() => first.ws.terminate());
      first.ws.send('a');
      await first.waitMessages(1);
      expect(first.messages).to.deep.equal(['t(a)']);
      // More connections than the default listener limit (10) would allow on one stage.
      for (let i = 0; i < 12; i++) {
        let failed: unknown;
        try {
          const late: RecordingClient = await wsClient(`ws://127.0.0.1:${port}`);
          late.ws.terminate();
        } catch (err) {
          failed = err;
        }
        expect(failed, `connection ${i + 2}`).to.be.instanceOf(Error);
      }
      expect(refused).to.have.length(12);
      for (const err of refused) {
        expect(err).to.be.instanceOf(TypeError);
        expect((err as Error).message).to.match(/^options\.transforms\.client\[0\] is already used by another proxy/);
      }
      // The first connection is unharmed.
      first.ws.send('b');
      await first.waitMessages(2);
      expect(first.messages).to.deep.equal(['t(a)', 't(b)']);
      first.ws.close(1000);
      await first.closed;
      expect(runs).to.have.length(1);
      expect((await runs[0]!).error).to.equal(undefined);
      await turns();
      expect(warnings.getCalls().map((c) => (c.args[0] as Error).name)).to.not.include('MaxListenersExceededWarning');
    });

    it('the function form serves any number of connections: each call gets ctx.role "client", its own ctx.id and ctx.proxy, and its stages are handed the same context', async () => {
      const calls: StageContext[] = [];
      const handed: StageContext[] = [];
      const options = {
        transforms: {
          client: (ctx: StageContext) => {
            calls.push(ctx);
            const stage = plain((frame, callback) => callback(null, frame.type === 'text' ? { ...frame, payload: Buffer.from(`${ctx.id}:${frame.payload.toString()}`) } : frame));
            return [Object.assign(stage, { [kStageContext]: (context: StageContext) => handed.push(context) })];
          },
        },
      };
      const rig = await wsRig(echo, options);
      const one = await rig.client();
      const outcomeOne = await rig.proxy.nextOutcome();
      const two = await rig.client();
      const outcomeTwo = await rig.proxy.nextOutcome();
      one.ws.send('x');
      two.ws.send('y');
      await Promise.all([one.waitMessages(1), two.waitMessages(1)]);
      const [idOne, idTwo] = [outcomeOne.proxy.id, outcomeTwo.proxy.id];
      expect(idOne).to.not.equal(idTwo);
      expect(one.messages).to.deep.equal([`${idOne}:x`]);
      expect(two.messages).to.deep.equal([`${idTwo}:y`]);
      expect(calls).to.have.length(2);
      expect(calls.map((c) => c.role)).to.deep.equal(['client', 'client']);
      expect(calls.map((c) => c.id)).to.deep.equal([idOne, idTwo]);
      expect(calls[0]!.proxy).to.equal(outcomeOne.proxy);
      expect(calls[1]!.proxy).to.equal(outcomeTwo.proxy);
      expect(handed.map((c) => [c.role, c.id, c.proxy])).to.deep.equal([['client', idOne, outcomeOne.proxy], ['client', idTwo, outcomeTwo.proxy]]);
      one.ws.close();
      two.ws.close();
      await Promise.all([one.closed, two.closed]);
      await endedCleanly(outcomeOne);
      await endedCleanly(outcomeTwo);
    });
  });

  describe('a stage that throws', () => {
    const boom = (): Error => new Error('boom');
    const kinds: { name: string; make: (thrown: Error) => Stage }[] = [
      {
        name: 'a readable-stream Transform throwing synchronously in transform()',
        make: (thrown) => plain((frame, callback) => {
          if (frame.type === 'text' && frame.payload.toString() === 'boom') throw thrown;
          callback(null, frame);
        }),
      },
      {
        name: 'a node:stream Transform throwing synchronously in transform()',
        make: (thrown) => new NodeTransform({
          objectMode: true,
          transform(frame: Frame, _encoding, callback) {
            if (frame.type === 'text' && frame.payload.toString() === 'boom') throw thrown;
            callback(null, frame);
          },
        }),
      },
      {
        name: 'a node:stream Duplex.from(async function* ...) throwing',
        make: (thrown) => NodeDuplex.from(async function* (source: AsyncIterable<Frame>) {
          for await (const frame of source) {
            if (frame.type === 'text' && frame.payload.toString() === 'boom') throw thrown;
            yield frame;
          }
        }),
      },
    ];
    for (const kind of kinds) {
      for (const backlog of [false, true]) {
        const when = backlog ? 'behind a backlog of frames (a slow onFrame)' : 'at once';
        it(`${kind.name}, ${when}: no crash; both sides get 1011 "Internal Error"; execute() resolves with summary.error WSP_ERR_STAGE_FAILED, cause the thrown error`, async () => {
          const exceptions = processSpy('uncaughtException');
          const rejections = processSpy('unhandledRejection');
          const thrown = boom();
          const rig = await wsRig(echo, () => ({
            transforms: { client: [kind.make(thrown)] },
            // A slow onFrame fills the stage's output, so that its next transform() runs when the
            // proxy reads it again, not inside a write().
            onFrame: backlog ? async (_p, _r, _t, payload) => {
              await new Promise((resolve) => setImmediate(resolve));
              return payload;
            } : undefined,
          }));
          const client = await rig.client();
          const outcome = await rig.proxy.nextOutcome();
          const upstream = watch(rig.upstreamSockets[0]!);
          client.ws.send('fine');
          await client.waitMessages(1);
          const before = backlog ? 40 : 0;
          for (let i = 0; i < before; i++) client.ws.send(`queued ${i}`);
          client.ws.send('boom');
          expect(await client.closed).to.deep.equal({ code: 1011, reason: 'Internal Error' });
          expect(await upstream.closed).to.deep.equal([1011, 'Internal Error']);
          expect(upstream.messages).to.not.include('boom');
          expect(upstream.messages[0]).to.equal('fine');
          const summary = await endedWith(outcome, 'WSP_ERR_STAGE_FAILED', 1011);
          expect(summary.error!.cause).to.equal(thrown);
          await turns();
          expect(exceptions.called, 'uncaughtException').to.equal(false);
          expect(rejections.called, 'unhandledRejection').to.equal(false);
        });
      }
    }
  });

  describe('a stage that fails with a WebSocketProxyError', () => {
    const rows: { name: string; code: 'WSP_ERR_POLICY_VIOLATION' | 'WSP_ERR_VALIDATION_FAILED' | 'WSP_ERR_MESSAGE_TOO_LARGE' | 'WSP_ERR_INVALID_FRAME'; closeCode: number; sender: number; senderReason: (e: Error) => string; peer: number; peerReason: string; direction: 'client' | 'upstream'; how: 'callback' | 'throw' }[] = [
      { name: 'WSP_ERR_POLICY_VIOLATION (1008)', code: 'WSP_ERR_POLICY_VIOLATION', closeCode: 1008, sender: 1008, senderReason: (e) => e.message, peer: 1001, peerReason: '', direction: 'client', how: 'callback' },
      { name: 'WSP_ERR_POLICY_VIOLATION (1008), thrown synchronously', code: 'WSP_ERR_POLICY_VIOLATION', closeCode: 1008, sender: 1008, senderReason: (e) => e.message, peer: 1001, peerReason: '', direction: 'client', how: 'throw' },
      { name: 'WSP_ERR_POLICY_VIOLATION (1008) on the upstream direction', code: 'WSP_ERR_POLICY_VIOLATION', closeCode: 1008, sender: 1008, senderReason: (e) => e.message, peer: 1001, peerReason: '', direction: 'upstream', how: 'callback' },
      { name: 'WSP_ERR_VALIDATION_FAILED (1007)', code: 'WSP_ERR_VALIDATION_FAILED', closeCode: 1007, sender: 1007, senderReason: (e) => e.message, peer: 1001, peerReason: '', direction: 'client', how: 'callback' },
      { name: 'WSP_ERR_MESSAGE_TOO_LARGE (1009)', code: 'WSP_ERR_MESSAGE_TOO_LARGE', closeCode: 1009, sender: 1009, senderReason: () => 'Payload Too Large', peer: 1001, peerReason: '', direction: 'client', how: 'callback' },
      { name: 'WSP_ERR_INVALID_FRAME (1011)', code: 'WSP_ERR_INVALID_FRAME', closeCode: 1011, sender: 1011, senderReason: () => 'Internal Error', peer: 1011, peerReason: 'Internal Error', direction: 'client', how: 'callback' },
    ];
    for (const row of rows) {
      it(`${row.name}: the sender gets ${row.sender}, its peer ${row.peer}; execute() resolves with summary.error that very error`, async () => {
        const refusal = new WebSocketProxyError(row.code, 'no');
        const refuse = plain((frame, callback) => {
          if (frame.type === 'text' && frame.payload.toString() === 'refuse me') {
            if (row.how === 'throw') throw refusal;
            callback(refusal);
            return;
          }
          callback(null, frame);
        });
        const rig = await wsRig(echo, () => ({ transforms: { [row.direction]: [refuse] } }));
        const client = await rig.client();
        const outcome = await rig.proxy.nextOutcome();
        const upstream = watch(rig.upstreamSockets[0]!);
        client.ws.send('fine');
        await client.waitMessages(1);
        // The upstream echoes it: on the upstream direction, the upstream is the sender.
        client.ws.send('refuse me');
        const [senderClosed, peerClosed] = row.direction === 'client'
          ? [client.closed.then((c) => [c.code, c.reason]), upstream.closed]
          : [upstream.closed, client.closed.then((c) => [c.code, c.reason])];
        expect(await senderClosed).to.deep.equal([row.sender, row.senderReason(refusal)]);
        expect(await peerClosed).to.deep.equal([row.peer, row.peerReason]);
        const summary = await endedWith(outcome, row.code, row.closeCode);
        expect(summary.error).to.equal(refusal);
        if (row.direction === 'client') expect(upstream.messages).to.deep.equal(['fine']);
        else expect(client.messages).to.deep.equal(['fine']);
      });
    }
  });

  describe('frames user code made that cannot be sent', () => {
    const rows: { name: string; trigger: Frame; options: () => ProxyOptions<WebSocketProxy> }[] = [
      {
        name: 'onFrame returning invalid UTF-8 for a text frame',
        trigger: textFrame('make it invalid'),
        options: () => ({ onFrame: (_p, _r, type, payload) => (type === 'text' && payload.toString() === 'make it invalid' ? Buffer.from([0xff]) : payload) }),
      },
      {
        name: 'a stage rewriting a text payload to invalid UTF-8',
        trigger: textFrame('make it invalid'),
        options: () => ({
          transforms: { client: [plain((frame, callback) => callback(null, frame.type === 'text' && frame.payload.toString() === 'make it invalid' ? { ...frame, payload: Buffer.from([0x61, 0xc3]) } : frame))] },
        }),
      },
      {
        name: 'onFrame giving a close frame a reason that is not UTF-8',
        trigger: closeFrame(1000, 'bye'),
        options: () => ({ onFrame: (_p, _r, type, payload) => (type === 'close' ? { payload: Buffer.from([0xff, 0xfe]) } : payload) }),
      },
      {
        name: 'onFrame giving a close frame the unsendable code 1005',
        trigger: closeFrame(1000, 'bye'),
        options: () => ({ onFrame: (_p, _r, type, payload) => (type === 'close' ? { code: 1005 } : payload) }),
      },
      {
        name: 'a stage making a ping payload of 126 bytes',
        trigger: pingFrame('p'),
        options: () => ({
          transforms: { client: [plain((frame, callback) => callback(null, frame.type === 'ping' ? { ...frame, payload: Buffer.alloc(126, 0x70) } : frame))] },
        }),
      },
    ];
    for (const row of rows) {
      it(`${row.name}: never forwarded; both sides get 1011; execute() resolves with summary.error WSP_ERR_INVALID_FRAME`, async () => {
        const rig = await rawRig(row.options);
        const client = await rig.rawClient();
        const upstream = await rig.upstream();
        const outcome = await rig.proxy.nextOutcome();
        client.send(textFrame('fine'));
        await upstream.waitFrames(1);
        client.send(row.trigger);
        expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'Internal Error', code: 1011 });
        expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'Internal Error', code: 1011 });
        upstream.socket.end();
        await Promise.all([client.closed, upstream.closed]);
        // Nothing but the first text and the proxy's close reached the upstream.
        expect(upstream.frames.map(text)).to.deep.equal([
          { type: 'text', fin: true, data: 'fine' },
          { type: 'close', fin: true, data: 'Internal Error', code: 1011 },
        ]);
        expect(closesOf(client)).to.have.length(1);
        await endedWith(outcome, 'WSP_ERR_INVALID_FRAME', 1011);
      });
    }
  });

  it('a stage that ends its output early (push(null) on the second frame): both sides get 1011; execute() resolves with summary.error WSP_ERR_STAGE_FAILED', async () => {
    let count = 0;
    const ender = plain(function (frame, callback) {
      if (++count === 2) this.push(null);
      else this.push(frame);
      callback();
    });
    const rig = await rawRig(() => ({ transforms: { client: [ender] } }));
    const client = await rig.rawClient();
    const upstream = await rig.upstream();
    const outcome = await rig.proxy.nextOutcome();
    client.send(textFrame('one'));
    await upstream.waitFrames(1);
    client.send(textFrame('two'), textFrame('three'));
    expect(text(await client.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'Internal Error', code: 1011 });
    expect(text(await upstream.waitClose())).to.deep.equal({ type: 'close', fin: true, data: 'Internal Error', code: 1011 });
    upstream.socket.end();
    await Promise.all([client.closed, upstream.closed]);
    expect(upstream.frames.map(text)).to.deep.equal([
      { type: 'text', fin: true, data: 'one' },
      { type: 'close', fin: true, data: 'Internal Error', code: 1011 },
    ]);
    await endedWith(outcome, 'WSP_ERR_STAGE_FAILED', 1011);
  });

  describe('handshake hygiene: a rejected client that never reads nor closes is let go', () => {
    /** A raw client that sends `request` and then neither reads nor closes its end. */
    async function silentClient(port: number, request: string): Promise<net.Socket> {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      onCleanup(() => socket.destroy());
      await once(socket, 'connect');
      socket.pause();
      socket.write(request);
      return socket;
    }

    function request(headers: Record<string, string>): string {
      return `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    }

    const valid = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' };

    /** The proxy-side socket of each connection the proxy's server accepted. */
    function accepted(server: net.Server): net.Socket[] {
      const sockets: net.Socket[] = [];
      server.on('connection', (socket: net.Socket) => sockets.push(socket));
      return sockets;
    }

    /** Reads what the client was sent, now that it reads: resolves at its 'end' or 'close'. */
    async function readRest(socket: net.Socket): Promise<string> {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      const done = new Promise<void>((resolve) => {
        socket.once('end', resolve);
        socket.once('close', resolve);
      });
      socket.resume();
      await done;
      return Buffer.concat(chunks).toString('latin1');
    }

    const rejected = [
      { name: 'an unsupported Sec-WebSocket-Version (426)', headers: { ...valid, 'Sec-WebSocket-Version': '8' }, status: 426 },
      { name: 'no Sec-WebSocket-Key (400)', headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' }, status: 400 },
    ];
    for (const row of rejected) {
      it(`${row.name}: the proxy-side socket is destroyed at once while the client keeps its end open`, async () => {
        const upstream = await startUpstream(echo);
        onCleanup(() => upstream.close());
        const proxy = await startProxy({ upstream: upstream.url });
        onCleanup(() => proxy.close());
        const sockets = accepted(proxy.server);
        // Fake timers: the response's flush timeout cannot be what lets the socket go.
        fakeTimers();
        const client = await silentClient(portOf(proxy.url), request(row.headers));
        const { connectError } = await (await proxy.nextOutcome()).done;
        expect(connectError).to.deep.include({ code: 'WSP_ERR_CLIENT_HANDSHAKE', statusCode: row.status });
        await until(() => sockets.length === 1 && sockets[0]!.destroyed);
        expect(await connections(proxy.server)).to.equal(0);
        expect(client.destroyed).to.equal(false);
        expect(await readRest(client)).to.match(new RegExp(`^HTTP/1\\.1 ${row.status} `));
      });
    }

    it('an upstream that is down (502): the proxy-side socket is destroyed at once while the client keeps its end open', async () => {
      const down = net.createServer();
      const port = await listen(down);
      await new Promise<void>((resolve) => down.close(() => resolve()));
      const proxy = await startProxy({ upstream: `ws://127.0.0.1:${port}/` });
      onCleanup(() => proxy.close());
      const sockets = accepted(proxy.server);
      fakeTimers();
      const client = await silentClient(portOf(proxy.url), request(valid));
      const { connectError } = await (await proxy.nextOutcome()).done;
      expect(connectError).to.have.property('code', 'WSP_ERR_UPSTREAM_UNREACHABLE');
      await until(() => sockets.length === 1 && sockets[0]!.destroyed);
      expect(await connections(proxy.server)).to.equal(0);
      expect(client.destroyed).to.equal(false);
      expect(await readRest(client)).to.match(/^HTTP\/1\.1 502 /);
    });

    /** An upstream that answers every upgrade 403 with a 64 KiB body (what the proxy relays at most). */
    async function rejectingUpstream(): Promise<string> {
      const body = Buffer.alloc(64 * 1024, 0x78);
      const rejecting = http.createServer();
      // Upgraded sockets are not the http server's any more: closeAllConnections() does not reach them.
      const upgraded: net.Socket[] = [];
      rejecting.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
        upgraded.push(socket);
        socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
      });
      const port = await listen(rejecting);
      onCleanup(() => {
        for (const socket of upgraded) socket.destroy();
        return closeServer(rejecting);
      });
      return `ws://127.0.0.1:${port}/`;
    }

    it('an upstream answering 403 with a 64 KiB body: the proxy-side socket is destroyed within RESPONSE_FLUSH_TIMEOUT while the client never reads; the client gets the whole response when it does', async () => {
      const proxy = await startProxy({ upstream: await rejectingUpstream() });
      onCleanup(() => proxy.close());
      const sockets = accepted(proxy.server);
      const timers = fakeTimers();
      const client = await silentClient(portOf(proxy.url), request(valid));
      const { connectError } = await (await proxy.nextOutcome()).done;
      expect(connectError).to.deep.include({ code: 'WSP_ERR_UPSTREAM_REJECTED', statusCode: 403 });
      await until(() => sockets.length === 1);
      await timers.tickAsync(RESPONSE_FLUSH_TIMEOUT);
      await until(() => sockets[0]!.destroyed);
      expect(await connections(proxy.server)).to.equal(0);
      expect(client.destroyed).to.equal(false);
      expect(timers.countTimers()).to.equal(0);
      const response = await readRest(client);
      expect(response).to.match(/^HTTP\/1\.1 403 /);
      expect(response.endsWith(`\r\n\r\n${'x'.repeat(64 * 1024)}`)).to.equal(true);
    });

    it('an upstream answering 403 with a 64 KiB body to a client socket that takes no bytes at all: that socket is destroyed RESPONSE_FLUSH_TIMEOUT ms after the response, not before; no timer left', async () => {
      const upstreamUrl = await rejectingUpstream();
      // Stands for a client whose kernel buffers are full: its writes never complete.
      const stalled = new NodeDuplex({ read() {}, write() {} });
      const failures: unknown[] = [];
      const server = http.createServer();
      const real: net.Socket[] = [];
      server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        // The real socket is left alone (and released at the end of the test).
        real.push(socket);
        new WebSocketProxy().connect(upstreamUrl, req, stalled, head).catch((err: unknown) => failures.push(err));
      });
      const port = await listen(server);
      onCleanup(() => {
        for (const socket of real) socket.destroy();
        stalled.destroy();
        return closeServer(server);
      });
      const timers = fakeTimers();
      await silentClient(port, request(valid));
      await until(() => failures.length === 1);
      expect(failures[0]).to.deep.include({ code: 'WSP_ERR_UPSTREAM_REJECTED', statusCode: 403 });
      await timers.tickAsync(RESPONSE_FLUSH_TIMEOUT - 1);
      await turns();
      expect(stalled.destroyed).to.equal(false);
      await timers.tickAsync(1);
      expect(stalled.destroyed).to.equal(true);
      expect(timers.countTimers()).to.equal(0);
    });
  });

  describe('a client that leaves while its upstream is being connected', () => {
    it('a reset is no uncaught error; the wait for the upstream ends at once (not at connectTimeout) and its connection is closed', async () => {
      // An upstream that accepts TCP and never answers the upgrade.
      const upstreamSockets: net.Socket[] = [];
      const silent = net.createServer((socket) => {
        upstreamSockets.push(socket);
        socket.on('error', () => undefined);
        // Read, so that the proxy's end of this connection is seen.
        socket.resume();
      });
      const upstreamPort = await listen(silent);
      onCleanup(() => {
        for (const socket of upstreamSockets) socket.destroy();
        return new Promise<void>((resolve) => silent.close(() => resolve()));
      });
      const uncaught = sinon.spy();
      process.on('uncaughtException', uncaught);
      onCleanup(() => process.off('uncaughtException', uncaught));
      const proxy = await startProxy({ upstream: `ws://127.0.0.1:${upstreamPort}/`, proxyOptions: { connectTimeout: 60000 } });
      onCleanup(() => proxy.close());
      const client = net.connect(portOf(proxy.url), '127.0.0.1');
      client.on('error', () => undefined);
      await once(client, 'connect');
      client.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      const outcome = await proxy.nextOutcome();
      await until(() => upstreamSockets.length === 1);
      client.resetAndDestroy();
      const { connectError } = await outcome.done;
      expect(connectError).to.deep.include({ code: 'WSP_ERR_CLIENT_HANDSHAKE' });
      await until(() => upstreamSockets[0]!.destroyed || upstreamSockets[0]!.readableEnded);
      expect(uncaught.called).to.equal(false);
    });
  });

  describe('send() backpressure against a client that stops reading', () => {
    const FRAME = 64 * 1024;
    const MAX = 1024 * 1024;
    /** Frames sent in one synchronous loop at most: 64 MiB, far more than loopback buffers hold. */
    const LIMIT = 1024;

    function frameOf(i: number): Frame {
      const payload = Buffer.alloc(FRAME, i & 0xff);
      payload.writeUInt32BE(i, 0);
      return binaryFrame(payload);
    }

    /** A proxy with maxSendQueueSize 1 MiB and a `ws` client whose socket is paused. */
    async function stalledClient(): Promise<{ client: RecordingClient; outcome: ProxyOutcome; queued: () => number }> {
      const rig = await wsRig(echo, { maxSendQueueSize: MAX });
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      socketOf(client.ws).pause();
      const writable = outcome.proxy.client!.writable;
      const socket = writable.socket as net.Socket;
      // Bytes waiting in the proxy for the client: frames not yet handed to its socket, and what its
      // socket holds.
      return { client, outcome, queued: () => writable.writableLength * FRAME + socket.writableLength };
    }

    it('a caller that sends in a loop while send() returns true gets false (the side is full), never WSP_ERR_SEND_QUEUE_FULL', async () => {
      const { client, outcome } = await stalledClient();
      const results: (boolean | string)[] = [];
      for (let i = 0; i < LIMIT; i++) {
        try {
          const ok = outcome.proxy.send('client', frameOf(i));
          results.push(ok);
          if (!ok) break;
        } catch (err) {
          results.push((err as WebSocketProxyError).code);
          break;
        }
      }
      expect(results.at(-1), `send() results: ${results.length - 1} x true, then ${String(results.at(-1))}`).to.equal(false);
      socketOf(client.ws).resume();
      await outcome.proxy.drain('client');
      await client.waitMessages(results.length);
      client.ws.close(1000);
      await client.closed;
      await endedCleanly(outcome);
    });

    it('past the bound send() throws WSP_ERR_SEND_QUEUE_FULL, the queue never above maxSendQueueSize plus one frame; drain() resolves once the client reads, and it gets every frame send() accepted, in order', async () => {
      const { client, outcome, queued } = await stalledClient();
      const accepted: number[] = [];
      let peak = 0;
      let refusal: unknown;
      for (let i = 0; i < LIMIT && refusal === undefined; i++) {
        // A turn of the event loop between sends: the proxy's socket takes what the kernel takes.
        await new Promise((resolve) => setImmediate(resolve));
        try {
          outcome.proxy.send('client', frameOf(i));
          accepted.push(i);
        } catch (err) {
          refusal = err;
        }
        peak = Math.max(peak, queued());
      }
      expect(refusal).to.be.instanceOf(WebSocketProxyError);
      expect(refusal).to.have.property('code', 'WSP_ERR_SEND_QUEUE_FULL');
      // One frame's header is at most 14 bytes.
      expect(peak).to.be.at.most(MAX + FRAME + 14);
      expect(accepted.length * FRAME).to.be.at.least(MAX);
      socketOf(client.ws).resume();
      await outcome.proxy.drain('client');
      await client.waitMessages(accepted.length);
      expect(client.messages.map((m) => (m as Buffer).readUInt32BE(0))).to.deep.equal(accepted);
      expect(client.messages.every((m) => (m as Buffer).length === FRAME)).to.equal(true);
      client.ws.close(1000);
      await client.closed;
      await endedCleanly(outcome);
    });
  });

  it('the upstream\'s TCP destroyed mid-connection: the client gets 1001; execute() resolves with summary.error WSP_ERR_CONNECTION_LOST, summary.upstream.aborted', async () => {
    const rig = await wsRig(echo);
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    client.ws.send('hello');
    await client.waitMessages(1);
    socketOf(rig.upstreamSockets[0]!).destroy();
    expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
    const summary = await endedWith(outcome, 'WSP_ERR_CONNECTION_LOST', 1001);
    expect(summary.upstream.aborted).to.equal(true);
    expect(summary.client.aborted).to.equal(false);
    expect(summary.closedBy).to.equal('upstream');
  });

  describe('clean closes and the idle timeout', () => {
    it('a close handshake started by the client: both sides exchange 1000 "bye"; summary.error undefined', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      client.ws.close(1000, 'bye');
      expect(await upstream.closed).to.deep.equal([1000, 'bye']);
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
      const summary = await endedCleanly(outcome);
      expect(summary.closedBy).to.equal('client');
    });

    it('a close handshake started by the upstream: both sides exchange 4000 "done"; summary.error undefined', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      rig.upstreamSockets[0]!.close(4000, 'done');
      expect(await client.closed).to.deep.equal({ code: 4000, reason: 'done' });
      expect(await upstream.closed).to.deep.equal([4000, 'done']);
      const summary = await endedCleanly(outcome);
      expect(summary.closedBy).to.equal('upstream');
    });

    it('idleTimeout: both sides get 1001; execute() resolves with summary.error WSP_ERR_IDLE_TIMEOUT; no timer left', async () => {
      // Installed first: the idle timer is armed when execute() starts.
      const timers = fakeTimers();
      const rig = await wsRig(echo, { idleTimeout: 1000 });
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = watch(rig.upstreamSockets[0]!);
      await timers.tickAsync(999);
      await turns();
      expect(client.events).to.deep.equal([]);
      await timers.tickAsync(1);
      expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
      expect(await upstream.closed).to.deep.equal([1001, '']);
      const summary = await endedWith(outcome, 'WSP_ERR_IDLE_TIMEOUT', 1001);
      expect(summary.closedBy).to.equal('proxy');
      expect(timers.countTimers()).to.equal(0);
    });
  });

  it('transforms accepts every kind of stage, and FrameReadable/FrameWritable end both pipeline()s (tsc --strict checks this file)', () => {
    const echoFrame = (frame: Frame, _encoding: BufferEncoding, callback: (error?: Error | null, frame?: Frame) => void): void => callback(null, frame);
    const duplex: Duplex = new Duplex({
      objectMode: true,
      read() {},
      write(frame: Frame, _encoding, callback) {
        duplex.push(frame);
        callback();
      },
    });
    const proxies = [
      new WebSocketProxy({ transforms: { client: [new Transform({ objectMode: true, transform: echoFrame })] } }),
      new WebSocketProxy({ transforms: { client: [new NodeTransform({ objectMode: true, transform: echoFrame })] } }),
      new WebSocketProxy({ transforms: { client: [new NodePassThrough({ objectMode: true })] } }),
      new WebSocketProxy({
        transforms: {
          client: [NodeDuplex.from(async function* (frames: AsyncIterable<Frame>) {
            for await (const frame of frames) yield frame;
          })],
        },
      }),
      new WebSocketProxy({ transforms: { client: [duplex] } }),
      new WebSocketProxy({ transforms: { client: (ctx: StageContext) => [new Transform({ objectMode: true, transform: echoFrame })].filter(() => ctx.role === 'client') } }),
    ];
    // Run: each constructor accepted its stage.
    expect(proxies.every((p) => p instanceof WebSocketProxy)).to.equal(true);
    // Never called: what matters is that tsc accepts these calls.
    const wire = (proxy: WebSocketProxy): void => {
      const clientFrames = proxy.client!.readable;
      const upstreamFrames = proxy.upstream!.writable;
      pipeline(clientFrames, aggregate(), map((frame) => ({ ...frame })), upstreamFrames, () => {});
      nodePipeline(clientFrames, aggregate(), map((frame) => ({ ...frame })), upstreamFrames, () => {});
    };
    expect(wire).to.be.a('function');
  });
});
