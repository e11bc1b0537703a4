/**
 * Fixtures of the adversarial specs (test/adversarial/*): a proxy in front of a raw upstream, as a
 * bare `WebSocketProxy` or through `createProxyServer`; peers that count what they receive without
 * keeping it (a recording peer would itself be the heap growth measured); floods that respect
 * backpressure (the attacker's own buffers stay small); heap and CPU measures.
 *
 * Everything on 127.0.0.1, ephemeral ports, released by `releaseAll()` (test/proxy/rig.ts).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Frame } from '../../src/frame.js';
import { closeFrame, pongFrame } from '../../src/frame.js';
import { type ProxyOptions, type ProxySummary, type WebSocketProxy, createProxyServer } from '../../src/index.js';
import { encodeFrame } from '../../src/protocol/encode.js';
import { FrameReadable } from '../../src/streams/frame-readable.js';
import { startProxy } from './proxy-harness.js';
import { acceptKey, rawUpgradeClient, tick } from './sockets.js';
import { onCleanup } from '../proxy/rig.js';

/** How the proxy under attack runs: a bare `WebSocketProxy` in an upgrade handler, or a `ProxyServer`. */
export type FrontKind = 'bare' | 'server';

/** Both fronts, with aggregation on and off. */
const ALL_VARIANTS: readonly { front: FrontKind; aggregateFragments: boolean; name: string }[] = [
  { front: 'bare', aggregateFragments: false, name: 'bare WebSocketProxy, per frame' },
  { front: 'server', aggregateFragments: true, name: 'createProxyServer, aggregating' },
  { front: 'bare', aggregateFragments: true, name: 'bare WebSocketProxy, aggregating' },
  { front: 'server', aggregateFragments: false, name: 'createProxyServer, per frame' },
];

/**
 * The variants each attack runs in: by default two (a bare proxy per frame, a server aggregating: each
 * front and each aggregation mode once, within the time `npm test` gives these specs); with
 * ADVERSARIAL_FULL=1 in the environment, all four combinations.
 */
export const VARIANTS = process.env.ADVERSARIAL_FULL === undefined ? ALL_VARIANTS.slice(0, 2) : ALL_VARIANTS;

/** Options of {@link CountingPeer}. */
export interface CountingPeerOptions {
  /** Answer each ping with a pong of the same payload, as an endpoint does. @defaultValue false */
  answerPings?: boolean;
  /** Answer a close frame with the same code, as an endpoint does. @defaultValue true */
  answerClose?: boolean;
  /** Never read: the socket stays paused from the start (a slow reader). @defaultValue false */
  neverRead?: boolean;
  /**
   * End its side of TCP once the proxy's frames ended (after a close frame), as an endpoint does;
   * false keeps it open for writing (an attacker flooding on after its close). @defaultValue true
   */
  endAfterClose?: boolean;
}

/**
 * A raw WebSocket peer that counts what it receives and keeps none of it, answers pings and closes
 * like an endpoint, and stops reading while its own writes wait (a well-behaved peer: backpressure
 * goes back through it).
 */
export class CountingPeer {
  /** Frames received, by type. */
  readonly counts: Record<string, number> = { text: 0, binary: 0, continuation: 0, ping: 0, pong: 0, close: 0 };
  /** Payload bytes received. */
  bytes = 0;
  /** The first close frame's code (0 for an empty close), once one came. */
  closeCode: number | undefined;
  /** The reader's failure (a protocol error by the proxy), if any. */
  error: Error | undefined;
  /** Whether the socket closed. */
  isClosed = false;
  readonly closed: Promise<void>;
  private readonly reader: FrameReadable;
  private readonly key: Buffer | undefined;

  /**
   * @param socket - an upgraded socket
   * @param head - bytes read past the upgrade
   * @param role - `'client'`: masks what it sends; `'server'`: does not
   * @param options - see {@link CountingPeerOptions}
   */
  constructor(readonly socket: net.Socket, head: Buffer, readonly role: 'client' | 'server', options: CountingPeerOptions = {}) {
    this.key = role === 'client' ? randomBytes(4) : undefined;
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.isClosed = true;
      resolve();
    }));
    this.reader = new FrameReadable(socket, { role, head, maxFrameSize: 1024 * 1024 * 1024, allowRsv1: true, validateUtf8: false });
    this.reader.on('error', (err: Error) => {
      this.error = err;
    });
    if (options.endAfterClose ?? true) this.reader.on('end', () => socket.end());
    // Node ends a socket's writing when the other end's FIN comes, unless it allows half-open ones.
    else socket.allowHalfOpen = true;
    if (options.neverRead === true) return;
    const answerPings = options.answerPings ?? false;
    const answerClose = options.answerClose ?? true;
    this.reader.on('data', (frame: Frame) => {
      this.counts[frame.type] = (this.counts[frame.type] ?? 0) + 1;
      this.bytes += frame.payload.length;
      if (frame.type === 'ping' && answerPings) {
        // A peer whose writes wait reads no more until they drain: backpressure passes through it.
        if (!this.send(pongFrame(Buffer.from(frame.payload)))) {
          this.reader.pause();
          socket.once('drain', () => this.reader.resume());
        }
      }
      if (frame.type === 'close' && this.closeCode === undefined) {
        this.closeCode = frame.code ?? 0;
        if (answerClose && !socket.destroyed) this.send(closeFrame(frame.code));
      }
    });
  }

  /** Data frames received (text, binary and continuations). */
  get dataFrames(): number {
    return this.counts.text! + this.counts.binary! + this.counts.continuation!;
  }

  /**
   * Sends one frame, masked when this peer is a client.
   *
   * @returns what the socket's write returned
   */
  send(frame: Frame): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(Buffer.concat(encodeFrame(frame, this.key)));
  }

  /** Encodes frames as this peer sends them, in one buffer (one masking key for all: allowed). */
  encode(frames: readonly Frame[]): Buffer {
    return Buffer.concat(frames.flatMap((frame) => encodeFrame(frame, this.key)));
  }

  /** Resolves once a close frame arrived, or the socket closed. */
  async closeOrEnd(): Promise<number | undefined> {
    while (this.closeCode === undefined && !this.isClosed) await tick();
    return this.closeCode;
  }
}

/**
 * Writes `chunk` again and again, as fast as the socket takes it (waiting for 'drain' whenever its
 * write returns false), until `total` bytes went or the socket closed.
 *
 * @returns the bytes handed to the socket
 */
export async function flood(socket: net.Socket, chunk: Buffer, total: number): Promise<number> {
  let written = 0;
  while (written < total && !socket.destroyed && socket.writable) {
    const ok = socket.write(chunk);
    written += chunk.length;
    if (!ok) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
  return written;
}

/** One attacked connection: both peers, the proxy's sockets, and how the proxy ended it. */
export interface Attacked {
  client: CountingPeer;
  upstream: CountingPeer;
  /** The proxy itself. */
  proxy: WebSocketProxy;
  /** The proxy's end of the client's connection (what it read: `bytesRead`). */
  proxyClientSocket: net.Socket;
  /** Resolves with the proxy's summary once the connection ended (undefined if execute() rejected). */
  summary: Promise<ProxySummary | undefined>;
  /** The proxy's 101 response to the client. */
  response: http.IncomingMessage;
}

/** A proxy under attack, in front of a raw upstream. */
export interface Front {
  kind: FrontKind;
  /**
   * Opens a raw client through the proxy and waits for both sides.
   *
   * @param peers - options of the client and upstream peers
   */
  connect(peers?: { client?: CountingPeerOptions; upstream?: CountingPeerOptions; clientHeaders?: Record<string, string> }): Promise<Attacked>;
}

/**
 * Upgrades a raw client through the proxy at `port`, with extra request headers (e.g. a
 * permessage-deflate offer), and hands over its socket.
 */
async function upgrade(port: number, headers: Record<string, string>): Promise<{ socket: net.Socket; head: Buffer; res: http.IncomingMessage }> {
  if (Object.keys(headers).length === 0) return rawUpgradeClient(port);
  const key = randomBytes(16).toString('base64');
  const req = http.request({
    host: '127.0.0.1', port, path: '/', agent: false,
    headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', ...headers },
  });
  req.end();
  const [res, socket, head] = (await once(req, 'upgrade')) as [http.IncomingMessage, net.Socket, Buffer];
  if (res.headers['sec-websocket-accept'] !== acceptKey(key)) throw new Error('bad Sec-WebSocket-Accept');
  socket.setNoDelay(true);
  return { socket, head, res };
}

/** Upstream connections of a raw upgrade server, handed out in order. */
function rawUpstreams(server: http.Server, answer: (req: http.IncomingMessage) => string): () => Promise<{ socket: net.Socket; head: Buffer }> {
  const ready: { socket: net.Socket; head: Buffer }[] = [];
  const waiting: ((entry: { socket: net.Socket; head: Buffer }) => void)[] = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.write(answer(req));
    const entry = { socket, head };
    const resolve = waiting.shift();
    if (resolve !== undefined) resolve(entry);
    else ready.push(entry);
  });
  return () => {
    const entry = ready.shift();
    return entry !== undefined ? Promise.resolve(entry) : new Promise((resolve) => waiting.push(resolve));
  };
}

/**
 * Starts a raw upstream (it answers any upgrade with a 101, plus the extra header lines of
 * `extraResponse`) and a proxy of the given kind in front of it.
 *
 * @param kind - bare `WebSocketProxy` or `createProxyServer`
 * @param options - the proxy's options (for the server, its proxy options)
 * @param extraResponse - extra response header lines for a request, e.g. a permessage-deflate answer
 */
export async function startFront(
  kind: FrontKind,
  options: Omit<ProxyOptions<WebSocketProxy>, 'transforms'>,
  extraResponse: (req: http.IncomingMessage) => string = () => '',
): Promise<Front> {
  const upstreamServer = http.createServer((_req, res) => res.writeHead(426).end());
  const nextUpstream = rawUpstreams(upstreamServer, (req) =>
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(String(req.headers['sec-websocket-key']))}\r\n${extraResponse(req)}\r\n`);
  upstreamServer.listen(0, '127.0.0.1');
  await once(upstreamServer, 'listening');
  onCleanup(async () => {
    upstreamServer.closeAllConnections();
    await new Promise<void>((resolve) => upstreamServer.close(() => resolve()));
  });
  const target = `ws://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}/`;

  let port: number;
  let nextProxy: () => Promise<{ proxy: WebSocketProxy; summary: Promise<ProxySummary | undefined> }>;
  if (kind === 'bare') {
    const front = await startProxy({ upstream: target, proxyOptions: () => ({ ...options }) });
    onCleanup(() => front.close());
    port = Number(new URL(front.url).port);
    nextProxy = async () => {
      const outcome = await front.nextOutcome();
      return { proxy: outcome.proxy, summary: outcome.done.then((r) => r.summary) };
    };
  } else {
    const server = createProxyServer({ ...options, target });
    const summaries = new Map<WebSocketProxy, (summary: ProxySummary) => void>();
    const proxies: WebSocketProxy[] = [];
    const waiting: ((proxy: WebSocketProxy) => void)[] = [];
    const summaryOf = new Map<WebSocketProxy, Promise<ProxySummary>>();
    server.on('connection', (proxy) => {
      summaryOf.set(proxy, new Promise((resolve) => summaries.set(proxy, resolve)));
      const resolve = waiting.shift();
      if (resolve !== undefined) resolve(proxy);
      else proxies.push(proxy);
    });
    server.on('close', (summary, _route, proxy) => summaries.get(proxy)?.(summary));
    server.on('error', () => undefined);
    port = (await server.listen(0, '127.0.0.1')).port;
    onCleanup(() => server.close({ timeout: 200 }));
    nextProxy = async () => {
      const proxy = proxies.shift() ?? await new Promise<WebSocketProxy>((resolve) => waiting.push(resolve));
      return { proxy, summary: summaryOf.get(proxy)! };
    };
  }

  return {
    kind,
    async connect(peers = {}) {
      const pending = nextProxy();
      const [{ socket, head, res }, upstreamEnd] = await Promise.all([upgrade(port, peers.clientHeaders ?? {}), nextUpstream()]);
      const client = new CountingPeer(socket, head, 'client', peers.client);
      const upstream = new CountingPeer(upstreamEnd.socket, upstreamEnd.head, 'server', peers.upstream);
      onCleanup(() => {
        socket.destroy();
        upstreamEnd.socket.destroy();
      });
      const { proxy, summary } = await pending;
      // The side getters build the sides of a connection still dormant (no byte yet).
      const proxyClientSocket = proxy.client!.readable.socket as net.Socket;
      return { client, upstream, proxy, proxyClientSocket, summary, response: res };
    },
  };
}

/**
 * Memory (the JS heap and the memory of Buffers, after full collections) and process CPU time since
 * {@link startMeter}.
 */
export interface Meter {
  /**
   * Growth in bytes since the start of the JS heap plus the memory of ArrayBuffers (Buffers' bytes
   * live outside the heap), measured after two full collections.
   */
  heapGrowth(): number;
  /** Process CPU time (user + system) in ms since the start. */
  cpuMs(): number;
}

function held(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** Collects garbage (twice: weak references and finalizers) and starts measuring heap and CPU. */
export function startMeter(): Meter {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run mocha with --expose-gc (.mocharc.json does)');
  gc();
  gc();
  const heap = held();
  const cpu = process.cpuUsage();
  return {
    heapGrowth() {
      gc();
      gc();
      return held() - heap;
    },
    cpuMs() {
      const used = process.cpuUsage(cpu);
      return (used.user + used.system) / 1000;
    },
  };
}

/**
 * Prints a measure when ADVERSARIAL_VERBOSE is set (the figures behind docs/security.md's bounds).
 *
 * @param what - what was measured
 * @param value - the figure
 */
export function report(what: string, value: string): void {
  if (process.env.ADVERSARIAL_VERBOSE !== undefined) console.log(`      [measured] ${what}: ${value}`);
}

/** Megabytes, for assertion messages. */
export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

export { until } from './proxy-peers.js';
