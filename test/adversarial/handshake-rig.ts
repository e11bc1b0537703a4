/**
 * Fixtures of the handshake and upstream adversarial specs: a `ws` upstream behind a plain Node
 * HTTP server with default limits that counts the TCP connections it gets, the two front ends an
 * attack goes through (a bare `WebSocketProxy` on an HTTP server, and `createProxyServer`), raw
 * HTTP requests written byte for byte, and the measure of what an attack cost the process (heap
 * and array buffers retained after full collections, CPU time).
 *
 * Everything listens on 127.0.0.1, port 0, and is released by `releaseAll()` (test/proxy/rig.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  type ConnectOptions,
  type ProxyOptions,
  type ProxyServerOptions,
  type ProxySummary,
  WebSocketProxy,
  createProxyServer,
} from '../../src/index.js';
import { settle, waitFor } from '../helpers/sockets.js';
import { onCleanup } from '../proxy/rig.js';

/** `globalThis.gc`, which .mocharc.json's --expose-gc provides. */
function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run mocha with --expose-gc');
  gc();
}

/**
 * Bytes the process holds after full collections: JS heap plus array buffers (Buffers live there).
 * Two collections a turn apart: V8 frees the memory of dead array buffers after a collection, not
 * during it.
 */
export async function retained(): Promise<number> {
  collect();
  await new Promise((resolve) => setImmediate(resolve));
  collect();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** What an attack cost: retained bytes it added and CPU time of the whole process over it. */
export interface Cost<T> {
  result: T;
  /** Growth of {@link retained} from before the attack to after it settled. */
  heapGrowth: number;
  /** User + system CPU milliseconds of the process while the attack ran. */
  cpuMs: number;
}

/** Runs `attack` and measures it (see {@link Cost}). */
export async function measured<T>(attack: () => Promise<T>): Promise<Cost<T>> {
  const before = await retained();
  const cpu = process.cpuUsage();
  const result = await attack();
  const used = process.cpuUsage(cpu);
  await settle(20);
  const cost = { result, heapGrowth: (await retained()) - before, cpuMs: (used.user + used.system) / 1000 };
  logBounds({ heapGrowth: cost.heapGrowth, cpuMs: cost.cpuMs });
  return cost;
}

/**
 * With `WSP_LOG_BOUNDS=1` in the environment, prints measured values next to the running test's
 * title: the figures behind the bounds, for docs/security.md.
 */
export function logBounds(values: Record<string, number>): void {
  if (process.env.WSP_LOG_BOUNDS !== '1') return;
  const shown = Object.entries(values).map(([name, value]) => `${name}=${Number.isInteger(value) ? value : value.toFixed(1)}`);
  process.stdout.write(`        [bounds] ${shown.join(' ')}\n`);
}

/** 1 MiB, for readable bounds. */
export const MiB = 1024 * 1024;

/** A `ws` echo upstream behind a Node HTTP server with default limits. */
export interface Upstream {
  url: string;
  port: number;
  /** TCP connections the upstream's HTTP server accepted. */
  connections(): number;
  /** Upgrade requests it received, in order (headers as Node parsed them). */
  requests: http.IncomingMessage[];
  /** Messages it received, in order: text as string, binary as Buffer. */
  messages: (string | Buffer)[];
  /** One 400 per upgrade request ws refused (its handshake headers were wrong or missing). */
  refused: number[];
}

/** Starts an {@link Upstream}: every accepted WebSocket echoes what it receives. */
export async function wsUpstream(): Promise<Upstream> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  let connections = 0;
  const requests: http.IncomingMessage[] = [];
  const messages: (string | Buffer)[] = [];
  const refused: number[] = [];
  server.on('connection', () => connections++);
  // ws tells a request it cannot accept (no Upgrade, no key...) here instead of answering it.
  wss.on('wsClientError', (_err: Error, socket: Duplex) => {
    refused.push(400);
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    requests.push(req);
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('error', () => undefined);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        messages.push(isBinary ? data : data.toString());
        ws.send(data, { binary: isBinary });
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  onCleanup(async () => {
    for (const ws of wss.clients) ws.terminate();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${port}`, port, connections: () => connections, requests, messages, refused };
}

/** One failed handshake as a front end saw it. */
export interface Failure {
  /** The HTTP status the client was answered, or 'aborted'. */
  status: number | 'aborted' | undefined;
  /** The error code (bare proxy only: the server's 'refuse' event gives no code). */
  code: string | undefined;
  /** The error message, or the refusal's reason. */
  reason: string;
}

/** A front end the attacks go through. */
export interface Front {
  /** `'bare'` (a WebSocketProxy on an HTTP server) or `'server'` (createProxyServer). */
  kind: 'bare' | 'server';
  port: number;
  /** The proxy's end of each upgrade request's connection, in order (with `keepSockets` only). */
  sockets: Duplex[];
  /** Failed handshakes, in order. */
  failures: Failure[];
  /** Summaries of the connections that ran and ended. */
  summaries: ProxySummary[];
}

/** Options of {@link startFront}. */
export interface FrontOptions {
  /** WebSocketProxy options of each connection. */
  proxy?: ProxyOptions<WebSocketProxy>;
  /** Node HTTP server options of the bare front end (createProxyServer makes its own from `server`). */
  http?: http.ServerOptions;
  /** createProxyServer options besides `target` and the proxy options. */
  server?: Omit<ProxyServerOptions, 'target' | 'routes' | keyof ProxyOptions>;
  /** Whether to keep the proxy's end of each connection in `Front.sockets`. @defaultValue false */
  keepSockets?: boolean;
}

/** Starts a front end of `kind` to `target`. */
export function startFront(kind: 'bare' | 'server', target: string, options: FrontOptions = {}): Promise<Front> {
  return kind === 'bare' ? bareFront(target, options) : serverFront(target, options);
}

async function bareFront(target: string, options: FrontOptions): Promise<Front> {
  const front: Front = { kind: 'bare', port: 0, sockets: [], failures: [], summaries: [] };
  const server = http.createServer(options.http ?? {}, (_req, res) => res.writeHead(426).end());
  const running = new Set<Promise<unknown>>();
  const open = new Set<Duplex>();
  const proxies = new Set<WebSocketProxy>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (options.keepSockets === true) front.sockets.push(socket);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    const proxy = new WebSocketProxy(options.proxy);
    proxies.add(proxy);
    const connect: ConnectOptions = {};
    const run = (async () => {
      try {
        await proxy.connect(target, req, socket, head, connect);
      } catch (err) {
        const error = err as Error & { code?: string; statusCode?: number };
        front.failures.push({ status: statusOf(error), code: error.code, reason: error.message });
        return;
      }
      front.summaries.push(await proxy.execute());
    })().finally(() => {
      proxies.delete(proxy);
      running.delete(run);
    });
    running.add(run);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  front.port = (server.address() as AddressInfo).port;
  onCleanup(async () => {
    server.closeAllConnections();
    // A test peer may never answer a close frame: no lingering at the end of a test.
    for (const proxy of proxies) proxy.destroy();
    for (const socket of open) socket.destroy();
    await Promise.all([...running]);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return front;
}

/** The status `connect()` answered its client with, from the error it rejected with. */
function statusOf(error: { code?: string; statusCode?: number }): number | 'aborted' | undefined {
  if (error.statusCode !== undefined) return error.statusCode;
  if (error.code === 'WSP_ERR_UPSTREAM_TIMEOUT') return 504;
  if (error.code === 'WSP_ERR_UPSTREAM_UNREACHABLE' || error.code === 'WSP_ERR_UPSTREAM_HANDSHAKE') return 502;
  return 'aborted';
}

async function serverFront(target: string, options: FrontOptions): Promise<Front> {
  const front: Front = { kind: 'server', port: 0, sockets: [], failures: [], summaries: [] };
  const proxyServer = createProxyServer({ target, ...options.proxy, ...options.server } as ProxyServerOptions);
  // listen() subscribes the bound handleUpgrade it finds then: this one records the socket first.
  const handle = proxyServer.handleUpgrade;
  if (options.keepSockets === true) {
    proxyServer.handleUpgrade = (req, socket, head) => {
      front.sockets.push(socket);
      return handle(req, socket, head);
    };
  }
  proxyServer.on('refuse', (info) => front.failures.push({ status: info.outcome, code: undefined, reason: info.reason }));
  proxyServer.on('close', (summary) => front.summaries.push(summary));
  proxyServer.on('error', () => undefined);
  const { port } = await proxyServer.listen(0, '127.0.0.1');
  front.port = port;
  onCleanup(() => proxyServer.close({ timeout: 200 }));
  return front;
}

/** A raw client's view of its exchange with the proxy. */
export interface RawClient {
  socket: net.Socket;
  /** Resolves with the response head (status and header block) once it arrived. */
  head: Promise<{ status: number; text: string }>;
  /** Bytes received after the response head. */
  rest(): Buffer;
  /** Resolves when the socket closed. */
  closed: Promise<void>;
  /** Whether the socket closed. */
  isClosed(): boolean;
}

/**
 * Opens a TCP connection to the proxy and writes `request` (and `after`, in the same write when
 * given): exactly these bytes, nothing added.
 */
export function rawClient(port: number, request: string | Buffer, after?: Buffer): RawClient {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  track(socket);
  let received = Buffer.alloc(0);
  let headEnd = -1;
  let closedFlag = false;
  let resolveHead: (value: { status: number; text: string }) => void = () => undefined;
  const head = new Promise<{ status: number; text: string }>((resolve) => {
    resolveHead = resolve;
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    closedFlag = true;
    // A connection closed without any response: status 0.
    if (headEnd === -1) resolveHead({ status: 0, text: received.toString('latin1') });
    resolve();
  }));
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    if (headEnd === -1) {
      headEnd = received.indexOf('\r\n\r\n');
      if (headEnd !== -1) {
        const text = received.subarray(0, headEnd).toString('latin1');
        resolveHead({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), text });
      }
    }
  });
  const bytes = typeof request === 'string' ? Buffer.from(request, 'latin1') : request;
  socket.write(after === undefined ? bytes : Buffer.concat([bytes, after]));
  return {
    socket,
    head,
    rest: () => (headEnd === -1 ? Buffer.alloc(0) : received.subarray(headEnd + 4)),
    closed,
    isClosed: () => closedFlag,
  };
}

/** Raw clients not closed yet, destroyed at the end of the test. */
const liveClients = new Set<net.Socket>();

/**
 * Registers a raw client for the end of the test. A closed client is forgotten at once: a test
 * that measures what the process retains must not count its own clients.
 */
function track(socket: net.Socket): void {
  if (liveClients.size === 0) onCleanup(destroyLiveClients);
  liveClients.add(socket);
  socket.once('close', () => liveClients.delete(socket));
}

function destroyLiveClients(): void {
  for (const socket of liveClients) socket.destroy();
  liveClients.clear();
}

/**
 * A valid upgrade request head (HTTP/1.1, Host, Upgrade, Connection, a fresh key, version 13) with
 * `extra` header lines after the handshake's own, and `version` in the request line.
 */
export function upgradeRequest(extra: readonly string[] = [], options: { version?: string; key?: string; path?: string } = {}): string {
  const key = options.key ?? randomBytes(16).toString('base64');
  return [
    `GET ${options.path ?? '/'} HTTP/${options.version ?? '1.1'}`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    ...extra,
    '',
    '',
  ].join('\r\n');
}

/** Waits until every raw client closed (a guard turns a hang into a failure). */
export async function allClosed(clients: readonly RawClient[], guardMs = 10_000): Promise<void> {
  await waitFor(() => clients.every((client) => client.isClosed()), guardMs);
}

/** The number of active handles and requests of the process (sockets, servers, timers...). */
export function activeResources(): number {
  return process.getActiveResourcesInfo().length;
}

/** An upstream whose every upgrade request is answered by the test, byte for byte. */
export interface RawUpstream {
  url: string;
  port: number;
  /** TCP connections accepted. */
  connections(): number;
  /** Upgrade requests received and not answered yet, in order. */
  waiting: { req: http.IncomingMessage; socket: net.Socket; head: Buffer }[];
  /** Accepted connections the proxy has not ended (no FIN nor reset from it yet). */
  open(): number;
}

/**
 * Starts an upstream that hands each upgrade request to `answer` (or, without it, keeps it waiting
 * in `waiting`: the TCP connection is accepted and nothing is ever answered).
 */
export async function rawUpstream(
  answer?: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void,
): Promise<RawUpstream> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const waiting: RawUpstream['waiting'] = [];
  // `open` counts the connections the proxy has not ended: its FIN ('end') or reset ('close').
  const open = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    connections++;
    sockets.add(socket);
    open.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      open.delete(socket);
    });
    // An HTTP server's sockets allow half-open connections: end ours as a plain peer would.
    socket.once('end', () => {
      open.delete(socket);
      socket.end();
    });
    socket.on('error', () => undefined);
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.setNoDelay(true);
    if (answer !== undefined) answer(req, socket, head);
    else waiting.push({ req, socket, head });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  onCleanup(async () => {
    for (const socket of sockets) socket.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${port}`, port, connections: () => connections, waiting, open: () => open.size };
}

/** The 101 head a server answers `req` with; `accept` replaces the right Sec-WebSocket-Accept. */
export function switchingProtocols(req: http.IncomingMessage, accept?: string): string {
  const key = String(req.headers['sec-websocket-key']);
  return 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + `Sec-WebSocket-Accept: ${accept ?? acceptKey(key)}\r\n\r\n`;
}

function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** A frame read by {@link readFrames}: opcode, FIN, payload. */
export interface WireFrame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

/**
 * Reads the complete frames at the start of `bytes` (unmasked or masked; 7- and 16-bit lengths,
 * enough for these tests); an incomplete frame at the end is left out.
 */
export function readFrames(bytes: Buffer): WireFrame[] {
  const frames: WireFrame[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const masked = (bytes[at + 1]! & 0x80) !== 0;
    let length = bytes[at + 1]! & 0x7f;
    let start = at + 2;
    if (length === 126) {
      if (start + 2 > bytes.length) break;
      length = bytes.readUInt16BE(start);
      start += 2;
    } else if (length === 127) {
      throw new Error('readFrames: 64-bit lengths are not used in these tests');
    }
    const key = masked ? bytes.subarray(start, start + 4) : undefined;
    if (masked) start += 4;
    if (start + length > bytes.length) break;
    const payload = Buffer.from(bytes.subarray(start, start + length));
    if (key !== undefined) for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i % 4]!;
    frames.push({ opcode: bytes[at]! & 0x0f, fin: (bytes[at]! & 0x80) !== 0, payload });
    at = start + length;
  }
  return frames;
}
