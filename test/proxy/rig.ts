/**
 * Per-test fixture of the WebSocketProxy specs: a proxy in front of a `ws` or raw upstream, clients,
 * and a cleanup list that releases every handle, newest first, after each test.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import sinon from 'sinon';
import { type ClientOptions, type PerMessageDeflateOptions, type WebSocket, WebSocketServer } from 'ws';
import type { ProxyOptions, WebSocketProxy } from '../../src/index.js';
import { type ProxyServer, type StartProxyOptions, startProxy, startUpstream } from '../helpers/proxy-harness.js';
import { RawPeer, type RecordingClient, portOf, rawClient, wsClient } from '../helpers/proxy-peers.js';
import { type RawUpgradeServer, rawUpgradeServer } from '../helpers/sockets.js';

/** Lets real I/O run for `n` event-loop turns (fake timers do not stop setImmediate). */
export async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Cleanups of the running test, run newest first by {@link releaseAll}. */
const cleanups: (() => unknown)[] = [];

/** Registers a cleanup for the end of the test. */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** The fake clock of the running test, if it made one: restored before anything is released. */
let clock: sinon.SinonFakeTimers | undefined;

/**
 * Fakes, from now on, the timers the proxy's deadlines use (setTimeout/clearTimeout,
 * setInterval/clearInterval and Date; not nextTick, queueMicrotask nor setImmediate, so real I/O
 * still runs) until {@link releaseAll}. Servers already listening keep their real timers.
 */
export function fakeTimers(): sinon.SinonFakeTimers {
  // From the real now: a clock at the epoch would make timestamps 0, which reads as "never".
  clock = sinon.useFakeTimers({ now: Date.now(), toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'], shouldAdvanceTime: false });
  return clock;
}

/** Restores the clock, then runs the registered cleanups, newest first (clients, then upstreams, then proxies). */
export async function releaseAll(): Promise<void> {
  clock?.restore();
  clock = undefined;
  for (const fn of cleanups.splice(0).reverse()) await fn();
}

/** A proxy in front of a `ws` upstream. */
export interface WsRig {
  proxy: ProxyServer;
  upstreamUrl: string;
  /** The upstream's WebSocketServer. */
  upstreamServer: WebSocketServer;
  /** Connections the upstream accepted, in order. */
  upstreamSockets: WebSocket[];
  upstreamRequests: http.IncomingMessage[];
  client(protocols?: string | string[], options?: ClientOptions): Promise<RecordingClient>;
}

/**
 * Starts a `ws` upstream running `onConnection`, and a proxy in front of it.
 *
 * @param onConnection - the upstream's behaviour per connection
 * @param proxyOptions - the proxy's options
 * @param extra - more startProxy options, and the upstream's handleProtocols
 */
export async function wsRig(
  onConnection: (ws: WebSocket, req: http.IncomingMessage) => void,
  proxyOptions?: ProxyOptions<WebSocketProxy> | (() => ProxyOptions<WebSocketProxy>),
  extra: Omit<StartProxyOptions, 'upstream' | 'proxyOptions'> & { handleProtocols?: (protocols: Set<string>) => string | false; path?: string } = {},
): Promise<WsRig> {
  const upstreamSockets: WebSocket[] = [];
  const upstreamRequests: http.IncomingMessage[] = [];
  const upstream = await startUpstream((ws, req) => {
    upstreamSockets.push(ws);
    upstreamRequests.push(req);
    ws.on('error', () => undefined);
    onConnection(ws, req);
  }, extra.handleProtocols === undefined ? {} : { handleProtocols: extra.handleProtocols });
  const upstreamUrl = upstream.url + (extra.path ?? '/');
  const proxy = await startProxy({ ...extra, upstream: upstreamUrl, ...(proxyOptions === undefined ? {} : { proxyOptions }) });
  onCleanup(() => proxy.close());
  onCleanup(() => upstream.close());
  return {
    proxy, upstreamUrl, upstreamSockets, upstreamRequests, upstreamServer: upstream.wss,
    async client(protocols, options) {
      const client = await wsClient(proxy.url, protocols, options);
      onCleanup(() => client.ws.terminate());
      return client;
    },
  };
}

/** A proxy in front of a raw upstream that answers any upgrade and hands over its socket. */
export interface RawRig {
  proxy: ProxyServer;
  server: RawUpgradeServer;
  /** A `ws` client through the proxy. */
  client(): Promise<RecordingClient>;
  /** A raw client through the proxy. */
  rawClient(): Promise<RawPeer>;
  /** The next upstream connection, as a raw peer. */
  upstream(): Promise<RawPeer>;
}

/**
 * Starts a raw upstream and a proxy in front of it.
 *
 * @param proxyOptions - the proxy's options
 * @param extra - more startProxy options
 */
export async function rawRig(
  proxyOptions?: ProxyOptions<WebSocketProxy> | (() => ProxyOptions<WebSocketProxy>),
  extra: Omit<StartProxyOptions, 'upstream' | 'proxyOptions'> = {},
): Promise<RawRig> {
  const server = await rawUpgradeServer();
  const proxy = await startProxy({ ...extra, upstream: `ws://127.0.0.1:${server.port}/`, ...(proxyOptions === undefined ? {} : { proxyOptions }) });
  onCleanup(() => proxy.close());
  onCleanup(() => server.close());
  return {
    proxy, server,
    async client() {
      const client = await wsClient(proxy.url);
      onCleanup(() => client.ws.terminate());
      return client;
    },
    async rawClient() {
      const peer = await rawClient(portOf(proxy.url));
      onCleanup(() => peer.destroy());
      return peer;
    },
    async upstream() {
      const { socket, head } = await server.accept();
      const peer = new RawPeer(socket, head, 'server');
      onCleanup(() => peer.destroy());
      return peer;
    },
  };
}

/**
 * A `ws` upstream echoing every message (or answering it with `reply`), compressing as `deflate`
 * says; it keeps its requests, its sockets and the close code each socket ended with (in the order
 * they closed).
 */
export async function compressingUpstream(
  deflate: boolean | PerMessageDeflateOptions,
  reply: (ws: WebSocket, data: Buffer, isBinary: boolean) => void = (ws, data, isBinary) => ws.send(data, { binary: isBinary }),
): Promise<{ url: string; requests: http.IncomingMessage[]; sockets: WebSocket[]; closeCodes: number[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const requests: http.IncomingMessage[] = [];
  const sockets: WebSocket[] = [];
  const closeCodes: number[] = [];
  wss.on('connection', (ws, req) => {
    requests.push(req);
    sockets.push(ws);
    ws.on('error', () => undefined);
    ws.on('close', (code) => closeCodes.push(code));
    ws.on('message', (data: Buffer, isBinary) => reply(ws, data, isBinary));
  });
  onCleanup(() => new Promise<void>((resolve) => {
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => resolve());
  }));
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, requests, sockets, closeCodes };
}
