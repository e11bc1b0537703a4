/**
 * Fixtures of the seed test ports (lua-resty-websocket-proxy's t/01..t/08): the seed's upstream
 * fixtures (`/echo`, `/pong`) as `ws` servers, raw-frame peers for exact fragment sequences, `ws`
 * clients that record what they see in order, a spy logger, and a per-test fixture that releases
 * every handle it opened.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import sinon from 'sinon';
import { WebSocket } from 'ws';
import { FrameParser, encodeFrame, type Frame, type FrameType, type Logger, type ProxySummary } from '../../../src/index.js';
import { startProxy, startUpstream, type ProxyOutcome, type ProxyServer, type StartProxyOptions } from '../../helpers/proxy-harness.js';
import { rawUpgradeClient, rawUpgradeServer } from '../../helpers/sockets.js';

/** The fixture certificate and key (test/fixtures/tls), for localhost, 127.0.0.1 and ::1. */
export const tlsFixture = {
  cert: readFileSync(new URL('../../../../test/fixtures/tls/cert.pem', import.meta.url)),
  key: readFileSync(new URL('../../../../test/fixtures/tls/key.pem', import.meta.url)),
};

/** A FIFO whose `next()` waits for the next item. */
export class Queue<T> {
  /** Every item pushed so far, in order (taken or not). */
  readonly all: T[] = [];
  private taken = 0;
  private readonly waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    this.all.push(item);
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.taken++;
      waiter(item);
    }
  }

  /** The next item not taken yet. */
  next(): Promise<T> {
    if (this.taken < this.all.length) return Promise.resolve(this.all[this.taken++]!);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next `n` items. */
  async take(n: number): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next());
    return out;
  }
}

/**
 * What a peer saw, comparable with deep equality: the type, the payload decoded as UTF-8 (for a
 * close, the reason), `fin` for raw frames, `code` for closes (for a `ws` peer, its close code:
 * 1005 for an empty close, 1006 for none).
 */
export interface Seen {
  type: FrameType;
  payload: string;
  fin?: boolean;
  code?: number;
}

/** Binary messages larger than this are recorded in {@link Seen} as `[N bytes]` (the bytes are in `messages`). */
const BIG = 1024 * 1024;

/** A `ws` peer (client or upstream connection) and what it saw, in order. */
export interface WsPeer {
  ws: WebSocket;
  events: Queue<Seen>;
  /** Raw payloads of the messages it received, in order. */
  messages: Buffer[];
  /** Resolves with the close code and reason once the connection closed. */
  closed: Promise<{ code: number; reason: string }>;
}

/** Records everything a `ws` socket receives. */
export function recordWs(ws: WebSocket): WsPeer {
  const events = new Queue<Seen>();
  const messages: Buffer[] = [];
  ws.on('message', (data, isBinary) => {
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    messages.push(bytes);
    // Decoding a huge binary payload costs more than the proxying under test: it is summarized.
    const payload = isBinary && bytes.length > BIG ? `[${bytes.length} bytes]` : bytes.toString('utf8');
    events.push({ type: isBinary ? 'binary' : 'text', payload });
  });
  ws.on('ping', (data) => events.push({ type: 'ping', payload: data.toString('utf8') }));
  ws.on('pong', (data) => events.push({ type: 'pong', payload: data.toString('utf8') }));
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => {
      events.push({ type: 'close', payload: reason.toString('utf8'), code });
      resolve({ code, reason: reason.toString('utf8') });
    });
  });
  return { ws, events, messages, closed };
}

/** A spy logger: one sinon spy per level. */
export type SpyLogger = { [K in keyof Logger]: sinon.SinonSpy<[string], void> };

/** A logger whose four levels are sinon spies. */
export function spyLogger(): SpyLogger {
  const spy = (): sinon.SinonSpy<[string], void> => sinon.spy((_message: string): void => undefined);
  return { debug: spy(), info: spy(), warn: spy(), error: spy() };
}

/** Every message logged at a level, in order. */
export function lines(spy: sinon.SinonSpy<[string], void>): string[] {
  return spy.getCalls().map((call) => call.args[0]);
}

/**
 * A peer speaking raw frames over an upgraded socket: it parses every frame it receives (without
 * validating UTF-8, so that it sees exactly what arrived) and sends exactly the frames it is given,
 * masked when it is the client.
 */
export class RawPeer {
  readonly frames = new Queue<Seen>();
  /** Resolves once the socket closed. */
  readonly ended: Promise<void>;
  /** The first parse error, if a frame could not be parsed. */
  parseError: Error | undefined;

  constructor(readonly socket: net.Socket, head: Buffer, readonly role: 'client' | 'server') {
    const maxFrameSize = 256 * 1024 * 1024;
    const parser = new FrameParser({ role, maxFrameSize, maxBufferedBytes: maxFrameSize + 14, validateUtf8: false, allowRsv1: false });
    const feed = (chunk: Buffer): void => {
      if (this.parseError !== undefined) return;
      try {
        parser.push(chunk);
        for (let frame = parser.next(); frame !== null; frame = parser.next()) this.frames.push(RawPeer.seen(frame));
      } catch (err) {
        this.parseError = err as Error;
      }
    };
    if (head.length > 0) feed(Buffer.from(head));
    socket.on('data', feed);
    socket.on('error', () => undefined);
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  private static seen(frame: Frame): Seen {
    const out: Seen = { type: frame.type, fin: frame.fin, payload: frame.payload.toString('utf8') };
    if (frame.code !== undefined) out.code = frame.code;
    return out;
  }

  /** Sends frames, in one write. */
  send(...frames: Frame[]): void {
    const buffers = frames.flatMap((frame) => encodeFrame(frame, this.role === 'client' ? randomBytes(4) : undefined));
    this.socket.write(Buffer.concat(buffers));
  }

  /** Ends the TCP connection (FIN). */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A `ws` upstream server and the connections it accepted. */
export interface SeedUpstream {
  url: string;
  connections: Queue<WsPeer>;
  close(): Promise<void>;
}

/** A raw upstream server: each accepted connection is a {@link RawPeer}. */
export interface RawUpstream {
  url: string;
  port: number;
  accept(): Promise<RawPeer>;
  close(): Promise<void>;
}

/** A proxy server with helpers to wait for the outcome of its connections. */
export interface SeedProxy extends ProxyServer {
  /** The outcome of the next connection, resolved (the proxy finished). */
  nextResult(): Promise<{ outcome: ProxyOutcome; summary?: ProxySummary; error?: Error; connectError?: Error }>;
}

/**
 * The seed's `/echo`: text as text, binary as binary, and (`ws` does it) a close as a close with the
 * same code and reason. It handles every frame (the seed's `?repeat=1`).
 */
export function echoBehaviour(peer: WsPeer): void {
  peer.ws.on('message', (data, isBinary) => peer.ws.send(data, { binary: isBinary }));
}

/** The seed's `/pong`: every frame (message or ping) is answered with pong "heartbeat server". Needs `autoPong: false`. */
export function pongBehaviour(peer: WsPeer): void {
  peer.ws.on('message', () => peer.ws.pong('heartbeat server'));
  peer.ws.on('ping', () => peer.ws.pong('heartbeat server'));
}

/**
 * Owns the handles of one test: clients, upstreams and proxies, released in that order by
 * {@link SeedFixture.dispose} (peers first, so that each proxy sees its connections end).
 */
export class SeedFixture {
  private readonly peers: (() => void)[] = [];
  private readonly servers: (() => Promise<void>)[] = [];
  private readonly proxies: ProxyServer[] = [];

  /** A `ws` upstream; `behaviour` runs for each connection (after it is recorded). */
  async upstream(behaviour: (peer: WsPeer, req: http.IncomingMessage) => void = echoBehaviour, options: { autoPong?: boolean } = {}): Promise<SeedUpstream> {
    const connections = new Queue<WsPeer>();
    const server = await startUpstream((ws, req) => {
      const peer = recordWs(ws);
      this.peers.push(() => ws.terminate());
      behaviour(peer, req);
      connections.push(peer);
    }, options);
    this.servers.push(() => server.close());
    return { url: server.url, connections, close: () => server.close() };
  }

  /** The seed's `/echo` upstream. */
  echoUpstream(): Promise<SeedUpstream> {
    return this.upstream(echoBehaviour);
  }

  /** The seed's `/pong` upstream. */
  pongUpstream(): Promise<SeedUpstream> {
    return this.upstream(pongBehaviour, { autoPong: false });
  }

  /** An upstream that answers the upgrade itself and then speaks raw frames. */
  async rawUpstream(): Promise<RawUpstream> {
    const server = await rawUpgradeServer();
    this.servers.push(() => server.close());
    return {
      url: `ws://127.0.0.1:${server.port}`,
      port: server.port,
      accept: async () => {
        const { socket, head } = await server.accept();
        const peer = new RawPeer(socket, head, 'server');
        this.peers.push(() => peer.destroy());
        return peer;
      },
      close: () => server.close(),
    };
  }

  /** A proxy (see `startProxy`). */
  async proxy(options: StartProxyOptions): Promise<SeedProxy> {
    const server = await startProxy(options);
    this.proxies.push(server);
    return {
      ...server,
      async nextResult() {
        const outcome = await server.nextOutcome();
        return { outcome, ...(await outcome.done) };
      },
    };
  }

  /** A `ws` client connected (open) to `url`, recording what it receives. */
  async client(url: string, options: { protocols?: string[] } = {}): Promise<WsPeer> {
    const ws = new WebSocket(url, options.protocols ?? [], { perMessageDeflate: false });
    this.peers.push(() => ws.terminate());
    const peer = recordWs(ws);
    await once(ws, 'open');
    return peer;
  }

  /** A `ws` client whose handshake is expected to fail: resolves with the HTTP response it got. */
  async rejectedClient(url: string): Promise<{ statusCode: number; headers: http.IncomingHttpHeaders; body: string }> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    this.peers.push(() => ws.terminate());
    ws.on('error', () => undefined);
    const [req, res] = (await once(ws, 'unexpected-response')) as [http.ClientRequest, http.IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    req.destroy();
    return { statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
  }

  /** A raw client upgraded through the proxy, speaking raw (masked) frames. */
  async rawClient(url: string): Promise<RawPeer> {
    const { port, pathname } = new URL(url);
    const { socket, head } = await rawUpgradeClient(Number(port), pathname);
    const peer = new RawPeer(socket, head, 'client');
    this.peers.push(() => peer.destroy());
    return peer;
  }

  /** Releases everything: peers, then upstream servers, then proxies (waiting for their outcomes). */
  async dispose(): Promise<void> {
    for (const destroy of this.peers.splice(0)) destroy();
    for (const close of this.servers.splice(0)) await close();
    for (const proxy of this.proxies.splice(0)) await proxy.close();
  }
}
