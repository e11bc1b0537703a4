/**
 * `WebSocketProxy.destroy()` in every phase, over real sockets: both connections cut at once, the
 * handshakes under way aborted, the summary it leaves, and nothing left open.
 */
import { once } from 'node:events';
import type http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { expect } from 'chai';
import { WebSocket } from 'ws';
import { HandshakeError } from '../../src/errors.js';
import { closeFrame, textFrame } from '../../src/frame.js';
import { type ProxySummary, WebSocketProxy } from '../../src/index.js';
import { type ProxyOutcome, echo, startProxy, startUpstream } from '../helpers/proxy-harness.js';
import { portOf, recordClient, recordingLogger, until } from '../helpers/proxy-peers.js';
import { onCleanup, rawRig, releaseAll, turns, wsRig, fakeTimers } from './rig.js';

async function summaryOf(outcome: ProxyOutcome): Promise<ProxySummary> {
  const { summary, error, connectError } = await outcome.done;
  expect(error, 'execute() rejected').to.equal(undefined);
  expect(connectError, 'connect() rejected').to.equal(undefined);
  return summary!;
}

function expectDestroyed(err: unknown): void {
  expect(err).to.be.instanceOf(HandshakeError);
  expect(err).to.deep.include({ code: 'WSP_ERR_DESTROYED', closeCode: 1006 });
}

/** A TCP server that accepts connections and never answers: an upstream handshake that hangs. */
async function silentServer(): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    // Reads into the void, so that the proxy's end of the connection is seen.
    socket.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  }));
  return { port: (server.address() as AddressInfo).port, sockets };
}

/** A raw client that sends a valid upgrade request and records every byte it is sent. */
async function rawUpgrader(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  onCleanup(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await once(socket, 'connect');
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  return { socket, received: () => Buffer.concat(chunks).toString('latin1'), closed };
}

describe('WebSocketProxy#destroy', () => {
  afterEach(releaseAll);

  describe('after execute()', () => {
    it('open: both sockets are destroyed at once (1006 at both peers); execute() resolves with WSP_ERR_DESTROYED, closedBy proxy, both aborted; idempotent; no timer left', async () => {
      const rig = await wsRig(echo);
      const timers = fakeTimers();
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      const upstream = recordClient(rig.upstreamSockets[0]!);
      client.ws.send('hello');
      await client.waitMessages(1);
      const proxy = outcome.proxy;
      const sockets = [proxy.client!.readable.socket, proxy.upstream!.readable.socket];
      proxy.destroy();
      proxy.destroy();
      expect(sockets.map((socket) => socket.destroyed)).to.deep.equal([true, true]);
      expect((await client.closed).code).to.equal(1006);
      expect((await upstream.closed).code).to.equal(1006);
      const summary = await summaryOf(outcome);
      expect(summary.error?.code).to.equal('WSP_ERR_DESTROYED');
      expect(summary.error?.closeCode).to.equal(1006);
      expect(summary.closedBy).to.equal('proxy');
      expect(summary.client).to.deep.include({ aborted: true, closeSent: undefined, closeReceived: undefined, frames: 1 });
      expect(summary.upstream).to.deep.include({ aborted: true, closeSent: undefined, closeReceived: undefined, frames: 1 });
      // Nothing more can be sent; close() and destroy() are no-ops now.
      expect(() => proxy.send('client', textFrame('late'))).to.throw().with.property('code', 'WSP_ERR_WRITE_AFTER_CLOSE');
      expect(() => proxy.close()).not.to.throw();
      expect(() => proxy.destroy()).not.to.throw();
      expect(await proxy.execute()).to.equal(summary);
      expect(timers.countTimers()).to.equal(0);
    });

    it('closing (close() sent, the upstream never replies): the sockets go now, not at lingeringTime; closedBy stays proxy; only the upstream is aborted', async () => {
      const logger = recordingLogger();
      const rig = await rawRig({ debug: true, logger });
      const timers = fakeTimers();
      const client = await rig.client();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      outcome.proxy.close(1001, 'bye', 1001, 'bye');
      await upstream.waitClose();
      // The client answers (its reply reaches the proxy's last stage); the upstream does not.
      await until(() => logger.at('debug').some((line) => line.startsWith('[frame] client --x upstream close code=1001')));
      outcome.proxy.destroy();
      await upstream.closed;
      await client.closed;
      const summary = await summaryOf(outcome);
      expect(summary.error?.code).to.equal('WSP_ERR_DESTROYED');
      expect(summary.closedBy).to.equal('proxy');
      expect(summary.client).to.deep.include({ aborted: false, closeSent: { code: 1001, reason: 'bye' }, closeReceived: { code: 1001, reason: 'bye' } });
      expect(summary.upstream).to.deep.include({ aborted: true, closeSent: { code: 1001, reason: 'bye' }, closeReceived: undefined });
      expect(timers.countTimers()).to.equal(0);
    });

    it('ending after a limit (the proxy waits for the upstream\'s TCP close): the error already recorded stays; the sockets go now', async () => {
      const rig = await rawRig({ clientMaxFrameSize: 10 });
      const timers = fakeTimers();
      const client = await rig.client();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.ws.send('eleven byte');
      expect((await upstream.waitClose()).code).to.equal(1001);
      // The client gets its 1009 once the upstream replied; then only the TCP close is left.
      upstream.send(closeFrame(1001));
      expect((await client.closed).code).to.equal(1009);
      await turns();
      // The upstream keeps its TCP open; only lingeringTimeout (fake, never reached) would end it.
      expect(upstream.isClosed).to.equal(false);
      outcome.proxy.destroy();
      await upstream.closed;
      const summary = await summaryOf(outcome);
      expect(summary.error?.code).to.equal('WSP_ERR_FRAME_TOO_LARGE');
      expect(summary.closedBy).to.equal('proxy');
      expect(timers.countTimers()).to.equal(0);
    });

    it('ending after a clean close handshake: the TCP close is cut short, and the summary says so (WSP_ERR_DESTROYED, closedBy unchanged, nobody aborted)', async () => {
      const rig = await rawRig();
      const timers = fakeTimers();
      const client = await rig.client();
      const upstream = await rig.upstream();
      const outcome = await rig.proxy.nextOutcome();
      client.ws.close(1000, 'done');
      await upstream.waitClose();
      upstream.send(closeFrame(1000, 'done'));
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'done' });
      await turns();
      expect(upstream.isClosed).to.equal(false);
      outcome.proxy.destroy();
      await upstream.closed;
      const summary = await summaryOf(outcome);
      expect(summary.error?.code).to.equal('WSP_ERR_DESTROYED');
      expect(summary.closedBy).to.equal('client');
      expect(summary.client.aborted).to.equal(false);
      expect(summary.upstream.aborted).to.equal(false);
      expect(timers.countTimers()).to.equal(0);
    });

    it('after execute() resolved: nothing changes, nothing throws', async () => {
      const rig = await wsRig(echo);
      const client = await rig.client();
      const outcome = await rig.proxy.nextOutcome();
      client.ws.close(1000);
      await client.closed;
      const summary = await summaryOf(outcome);
      outcome.proxy.destroy();
      expect(summary.error).to.equal(undefined);
      expect(await outcome.proxy.execute()).to.equal(summary);
      expect((await outcome.proxy.execute()).error).to.equal(undefined);
    });
  });

  describe('before execute()', () => {
    it('after connect(): both sockets go (1006 at both peers); a later execute() resolves with the destroyed summary', async () => {
      const upstreamServer = await startUpstream(echo);
      onCleanup(() => upstreamServer.close());
      const upstreams: WebSocket[] = [];
      upstreamServer.wss.on('connection', (ws) => upstreams.push(ws));
      const proxyServer = await startProxy({ upstream: upstreamServer.url, execute: false });
      onCleanup(() => proxyServer.close());
      const timers = fakeTimers();
      const ws = new WebSocket(proxyServer.url);
      onCleanup(() => ws.terminate());
      const client = recordClient(ws);
      await once(ws, 'open');
      const outcome = await proxyServer.nextOutcome();
      expect(await outcome.done).to.deep.equal({});
      await until(() => upstreams.length === 1);
      const upstream = recordClient(upstreams[0]!);
      outcome.proxy.destroy();
      expect((await client.closed).code).to.equal(1006);
      expect((await upstream.closed).code).to.equal(1006);
      const summary = await outcome.proxy.execute();
      expect(summary.error?.code).to.equal('WSP_ERR_DESTROYED');
      expect(summary.closedBy).to.equal('proxy');
      expect(summary.client.aborted).to.equal(true);
      expect(summary.upstream.aborted).to.equal(true);
      expect(outcome.proxy.execute()).to.equal(outcome.proxy.execute());
      expect(timers.countTimers()).to.equal(0);
    });

    it('during connect()\'s upstream handshake: it is aborted (not left to connectTimeout), the client is not answered and its socket destroyed; connect() rejects with HandshakeError WSP_ERR_DESTROYED; no timer left', async () => {
      const silent = await silentServer();
      const proxyServer = await startProxy({ upstream: `ws://127.0.0.1:${silent.port}/` });
      onCleanup(() => proxyServer.close());
      const timers = fakeTimers();
      const client = await rawUpgrader(portOf(proxyServer.url));
      const outcome = await proxyServer.nextOutcome();
      await until(() => silent.sockets.length === 1);
      outcome.proxy.destroy();
      const { connectError, summary } = await outcome.done;
      expectDestroyed(connectError);
      expect(summary).to.equal(undefined);
      await client.closed;
      expect(client.received()).to.equal('');
      // The aborted request closed the upstream connection.
      await until(() => silent.sockets[0]!.destroyed);
      // connect()'s own rejection, then execute(): the destroyed summary.
      const later = await outcome.proxy.execute();
      expect(later.error?.code).to.equal('WSP_ERR_DESTROYED');
      expect(later.client.aborted).to.equal(false);
      expect(timers.countTimers()).to.equal(0);
    });

    it('during connectUpstream(): it rejects with WSP_ERR_DESTROYED at once (not at connectTimeout); a later connectClient() rejects too and destroys its socket', async () => {
      const silent = await silentServer();
      const errors: unknown[] = [];
      let clientSocket: Duplex | undefined;
      const proxyServer = await startProxy({
        upstream: `ws://127.0.0.1:${silent.port}/`,
        async handshake(proxy: WebSocketProxy, url: string, req: http.IncomingMessage, socket: Duplex, head: Buffer) {
          clientSocket = socket;
          const pending = proxy.connectUpstream(url);
          await until(() => silent.sockets.length === 1);
          proxy.destroy();
          await pending.catch((err: unknown) => errors.push(err));
          await proxy.connectClient(req, socket, head);
        },
      });
      onCleanup(() => proxyServer.close());
      const timers = fakeTimers();
      const client = await rawUpgrader(portOf(proxyServer.url));
      const outcome = await proxyServer.nextOutcome();
      const { connectError } = await outcome.done;
      expect(errors).to.have.length(1);
      expectDestroyed(errors[0]);
      expectDestroyed(connectError);
      expect(clientSocket!.destroyed).to.equal(true);
      await client.closed;
      expect(client.received()).to.equal('');
      expect(timers.countTimers()).to.equal(0);
    });

    it('during connectClient() (the 101 being written): it rejects with WSP_ERR_DESTROYED; the upstream already connected is cut (1006)', async () => {
      const rig = await wsRig(echo, undefined, {
        execute: false,
        async handshake(proxy: WebSocketProxy, url: string, req: http.IncomingMessage, socket: Duplex, head: Buffer) {
          await proxy.connectUpstream(url);
          const pending = proxy.connectClient(req, socket, head);
          proxy.destroy();
          await pending;
        },
      });
      const ws = new WebSocket(rig.proxy.url);
      onCleanup(() => ws.terminate());
      const client = recordClient(ws);
      const outcome = await rig.proxy.nextOutcome();
      const { connectError } = await outcome.done;
      expectDestroyed(connectError);
      expect((await client.closed).code).to.equal(1006);
      await until(() => rig.upstreamSockets.length === 1);
      const upstream = recordClient(rig.upstreamSockets[0]!);
      await until(() => rig.upstreamSockets[0]!.readyState === WebSocket.CLOSED);
      expect(upstream.events).to.deep.equal([]);
      expect(outcome.proxy.client).to.equal(undefined);
      expect((await outcome.proxy.execute()).error?.code).to.equal('WSP_ERR_DESTROYED');
    });

    it('connect() after destroy(): rejects with WSP_ERR_DESTROYED, destroys the socket it was given, never contacts the upstream', async () => {
      const rig = await wsRig(echo, undefined, {
        async handshake(proxy: WebSocketProxy, url: string, req: http.IncomingMessage, socket: Duplex, head: Buffer) {
          proxy.destroy();
          await proxy.connect(url, req, socket, head);
        },
      });
      const client = await rawUpgrader(portOf(rig.proxy.url));
      const outcome = await rig.proxy.nextOutcome();
      const { connectError } = await outcome.done;
      expectDestroyed(connectError);
      await client.closed;
      expect(client.received()).to.equal('');
      await turns();
      expect(rig.upstreamRequests).to.have.length(0);
    });

    it('before any handshake: execute() resolves with the destroyed summary; connectUpstream() rejects without connecting', async () => {
      const proxy = new WebSocketProxy();
      proxy.destroy();
      const summary = await proxy.execute();
      expect(summary.error?.code).to.equal('WSP_ERR_DESTROYED');
      expect(summary.closedBy).to.equal('proxy');
      expect(summary.client).to.deep.include({ aborted: false, frames: 0 });
      let thrown: unknown;
      await proxy.connectUpstream('ws://127.0.0.1:1/').catch((err: unknown) => {
        thrown = err;
      });
      expectDestroyed(thrown);
    });
  });
});
