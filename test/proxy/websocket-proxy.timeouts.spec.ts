import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { echo, startProxy } from '../helpers/proxy-harness.js';
import { portOf, recordingLogger, upgradeHeaders, upgradeRequest, until, wsClient } from '../helpers/proxy-peers.js';
import { rawUpgradeServer } from '../helpers/sockets.js';
import { onCleanup, releaseAll, turns, wsRig, fakeTimers } from './rig.js';

function watchClose(ws: WebSocket): Promise<[number, string]> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
}

describe('WebSocketProxy timeouts', () => {
  afterEach(releaseAll);

  it('connectTimeout: an upstream that accepts TCP but never answers -> WSP_ERR_UPSTREAM_TIMEOUT, the client gets 504', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    onCleanup(() => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      silent.close(() => resolve());
    }));
    const proxy = await startProxy({ upstream: `ws://127.0.0.1:${(silent.address() as AddressInfo).port}/`, proxyOptions: { connectTimeout: 100 } });
    onCleanup(() => proxy.close());
    const response = await upgradeRequest(portOf(proxy.url), upgradeHeaders());
    expect(response.statusCode).to.equal(504);
    expect(response.body).to.equal('Gateway Timeout');
    const { connectError } = await (await proxy.nextOutcome()).done;
    expect(connectError).to.have.property('code', 'WSP_ERR_UPSTREAM_TIMEOUT');
    expect(sockets.size).to.equal(1);
  });

  it('connectTimeout with fake timers: nothing before it, 504 at it', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    onCleanup(() => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      silent.close(() => resolve());
    }));
    const proxy = await startProxy({ upstream: `ws://127.0.0.1:${(silent.address() as AddressInfo).port}/`, proxyOptions: { connectTimeout: 5000 } });
    onCleanup(() => proxy.close());
    const timers = fakeTimers();
    let answered = false;
    const response = upgradeRequest(portOf(proxy.url), upgradeHeaders()).then((r) => {
      answered = true;
      return r;
    });
    await until(() => sockets.size === 1);
    await timers.tickAsync(4999);
    await turns();
    expect(answered).to.equal(false);
    await timers.tickAsync(1);
    expect((await response).statusCode).to.equal(504);
  });

  it('sendTimeout: an upstream that stops reading is treated as gone after sendTimeout (the client gets 1001)', async function () {
    this.timeout(15000);
    const logger = recordingLogger();
    const server = await rawUpgradeServer();
    onCleanup(() => server.close());
    const proxy = await startProxy({
      upstream: `ws://127.0.0.1:${server.port}/`,
      proxyOptions: { sendTimeout: 200, lingeringTime: 1000, lingeringTimeout: 300, logger },
    });
    onCleanup(() => proxy.close());
    const client = await wsClient(proxy.url);
    onCleanup(() => client.ws.terminate());
    const { socket: upstreamSocket } = await server.accept();
    // The upstream never reads a byte.
    upstreamSocket.pause();
    const outcome = await proxy.nextOutcome();
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < 64; i++) client.ws.send(chunk);
    expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
    const { summary, error } = await outcome.done;
    expect(error).to.equal(undefined);
    expect(summary?.closedBy).to.equal('upstream');
    expect(summary?.upstream.aborted).to.equal(true);
    expect(summary?.client.closeSent).to.deep.equal({ code: 1001, reason: '' });
    expect(logger.at('info')).to.include('upstream connection lost: send timed out: the upstream accepted no bytes for 200 ms');
    // execute() settles only once both of the proxy's sockets are closed: it let go of the upstream too.
  });

  it('idleTimeout: no frame in either direction for idleTimeout -> both sides get 1001; any frame restarts it', async () => {
    const logger = recordingLogger();
    const timers = fakeTimers();
    const rig = await wsRig(echo, { idleTimeout: 1000, logger });
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    const upstreamClosed = watchClose(rig.upstreamSockets[0]!);
    await timers.tickAsync(600);
    client.ws.send('activity');
    await client.waitMessages(1);
    await timers.tickAsync(999);
    await turns();
    expect(client.events).to.deep.equal(['message:activity']);
    await timers.tickAsync(1);
    expect(await client.closed).to.deep.equal({ code: 1001, reason: '' });
    expect(await upstreamClosed).to.deep.equal([1001, '']);
    const { summary } = await outcome.done;
    expect(summary?.closedBy).to.equal('proxy');
    expect(summary?.client).to.deep.include({ closeSent: { code: 1001, reason: '' }, closeReceived: { code: 1001, reason: '' } });
    expect(summary?.upstream).to.deep.include({ closeSent: { code: 1001, reason: '' }, closeReceived: { code: 1001, reason: '' } });
    expect(logger.at('info')).to.include('no frame for 1000 ms, closing both sides');
    expect(timers.countTimers()).to.equal(0);
  });

  it('recvTimeout: only a log line per side, never a close', async () => {
    const logger = recordingLogger();
    const timers = fakeTimers();
    const rig = await wsRig(echo, { recvTimeout: 80, logger });
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    await timers.tickAsync(79);
    expect(logger.at('info')).to.deep.equal([]);
    await timers.tickAsync(1);
    expect(logger.at('info')).to.deep.equal(['timeout receiving frame from client, reopening', 'timeout receiving frame from upstream, reopening']);
    await timers.tickAsync(160);
    expect(logger.at('info').length).to.equal(6);
    client.ws.send('hello world!');
    await client.waitMessages(1);
    expect(client.messages).to.deep.equal(['hello world!']);
    expect(client.events).to.deep.equal(['message:hello world!']);
    client.ws.close(1000);
    await client.closed;
    await outcome.done;
    expect(timers.countTimers()).to.equal(0);
  });
});
