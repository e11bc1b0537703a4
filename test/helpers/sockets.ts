/**
 * Real-socket fixtures for the stream tests: a loopback TCP pair, raw WebSocket upgrades on either
 * side for interop with the `ws` package, a re-chunking TCP relay and small waiting helpers.
 *
 * Everything listens on 127.0.0.1 port 0 and every fixture has a `close()` that releases its handles.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { encodeFrame } from '../../src/protocol/encode.js';
import type { Frame } from '../../src/frame.js';
import type { SeededRandom } from './random.js';

/** Captured at load time, so that sinon's fake timers do not stop {@link settle}. */
const realSetTimeout = globalThis.setTimeout;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 section 4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** Both ends of a loopback TCP connection. */
export interface TcpPair {
  /** The end that called `net.connect`. */
  client: net.Socket;
  /** The end the server accepted. */
  server: net.Socket;
  /** Destroys both ends (idempotent). */
  close(): void;
}

/**
 * Opens a loopback TCP connection. The listening server is closed as soon as the connection is
 * accepted, so only the two sockets remain to be released.
 */
export async function tcpPair(): Promise<TcpPair> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as AddressInfo;
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const client = net.connect(port, '127.0.0.1');
  const [[server]] = await Promise.all([accepted, once(client, 'connect')]);
  listener.close();
  client.setNoDelay(true);
  server.setNoDelay(true);
  return {
    client,
    server,
    close() {
      client.destroy();
      server.destroy();
    },
  };
}

/** A raw HTTP server that answers any WebSocket upgrade with a 101 and hands over the socket. */
export interface RawUpgradeServer {
  port: number;
  /** Resolves with the next upgraded connection. */
  accept(): Promise<{ socket: net.Socket; head: Buffer; req: http.IncomingMessage }>;
  /** Destroys the accepted sockets and closes the server. */
  close(): Promise<void>;
}

/** Starts a {@link RawUpgradeServer} on 127.0.0.1, port 0. */
export async function rawUpgradeServer(): Promise<RawUpgradeServer> {
  const server = http.createServer((_req, res) => {
    res.writeHead(426).end();
  });
  const sockets = new Set<net.Socket>();
  const waiting: ((value: { socket: net.Socket; head: Buffer; req: http.IncomingMessage }) => void)[] = [];
  const ready: { socket: net.Socket; head: Buffer; req: http.IncomingMessage }[] = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
    );
    const entry = { socket, head, req };
    const resolve = waiting.shift();
    if (resolve !== undefined) resolve(entry);
    else ready.push(entry);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accept() {
      const entry = ready.shift();
      if (entry !== undefined) return Promise.resolve(entry);
      return new Promise((resolve) => waiting.push(resolve));
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Upgrades a raw HTTP request to a WebSocket server and hands over the socket (client side).
 *
 * @param port - the server's port on 127.0.0.1
 * @param path - the request path
 */
export async function rawUpgradeClient(
  port: number,
  path = '/',
): Promise<{ socket: net.Socket; head: Buffer; res: http.IncomingMessage }> {
  const key = randomBytes(16).toString('base64');
  const req = http.request({
    host: '127.0.0.1',
    port,
    path,
    agent: false,
    headers: {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Key': key,
      'Sec-WebSocket-Version': '13',
    },
  });
  req.end();
  const [res, socket, head] = (await once(req, 'upgrade')) as [http.IncomingMessage, net.Socket, Buffer];
  if (res.headers['sec-websocket-accept'] !== acceptKey(key)) {
    socket.destroy();
    throw new Error('bad Sec-WebSocket-Accept');
  }
  socket.setNoDelay(true);
  return { socket, head, res };
}

/** A `ws` WebSocketServer on 127.0.0.1, port 0, without permessage-deflate. */
export async function wsServer(): Promise<{ wss: WebSocketServer; port: number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  return {
    wss,
    port: (wss.address() as AddressInfo).port,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * A loopback TCP connection through a relay in the middle that re-writes what it reads in random
 * pieces, one piece per event-loop turn, so the far end sees its own chunking. The relay forwards
 * FIN after the last piece.
 *
 * @param random - chooses the split points
 * @param maxPieces - most pieces one read chunk is cut into
 * @returns `client` (writes into the relay) and `server` (reads what the relay forwards)
 */
export async function relayedPair(random: SeededRandom, maxPieces = 6): Promise<TcpPair> {
  const target = net.createServer();
  target.listen(0, '127.0.0.1');
  const relay = net.createServer();
  relay.listen(0, '127.0.0.1');
  await Promise.all([once(target, 'listening'), once(relay, 'listening')]);
  const targetPort = (target.address() as AddressInfo).port;
  const accepted = once(relay, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((relay.address() as AddressInfo).port, '127.0.0.1');
  const [[inbound]] = await Promise.all([accepted, once(client, 'connect')]);
  relay.close();
  const reached = once(target, 'connection') as Promise<[net.Socket]>;
  const outbound = net.connect(targetPort, '127.0.0.1');
  const [[server]] = await Promise.all([reached, once(outbound, 'connect')]);
  target.close();
  for (const socket of [client, inbound, outbound, server]) socket.setNoDelay(true);

  const queue: Buffer[] = [];
  let ended = false;
  let scheduled = false;
  const schedule = (): void => {
    if (!scheduled && (queue.length > 0 || ended)) {
      scheduled = true;
      setImmediate(pump);
    }
  };
  const pump = (): void => {
    scheduled = false;
    const piece = queue.shift();
    if (piece !== undefined) {
      if (!outbound.destroyed) outbound.write(piece);
      schedule();
    } else if (ended) {
      outbound.end();
    }
  };
  inbound.on('data', (chunk: Buffer) => {
    queue.push(...random.split(chunk, maxPieces));
    schedule();
  });
  inbound.on('end', () => {
    ended = true;
    schedule();
  });
  // The way back is relayed as it comes, FIN included.
  outbound.on('data', (chunk: Buffer) => {
    if (!inbound.destroyed) inbound.write(chunk);
  });
  outbound.on('end', () => inbound.end());
  inbound.on('error', () => undefined);
  outbound.on('error', () => undefined);
  return {
    client,
    server,
    close() {
      for (const socket of [client, inbound, outbound, server]) socket.destroy();
    },
  };
}

/** Resolves on a later turn of the event loop. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Polls `condition` once per event-loop turn until it holds. Not a timed assertion: the guard only
 * turns a hang (a broken stream) into a failure instead of a process that never exits.
 *
 * @param condition - checked once per turn
 * @param guardMs - real time after which the wait gives up with an error
 */
export async function waitFor(condition: () => boolean, guardMs = 15000): Promise<void> {
  const deadline = performance.now() + guardMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('waitFor: the condition never held');
    await tick();
  }
}

/**
 * Lets I/O settle: waits `turns` event-loop turns (each at least a poll phase) and a short real
 * delay. Used only before asserting bounds that must hold whatever the timing.
 */
export async function settle(ms = 50, turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await tick();
  await new Promise((resolve) => realSetTimeout(resolve, ms));
  for (let i = 0; i < turns; i++) await tick();
}

/** Encodes frames as one buffer, masked with `key` when given (what a client sends). */
export function wire(frames: readonly Frame[], key?: Buffer): Buffer {
  return Buffer.concat(frames.flatMap((frame) => encodeFrame(frame, key)));
}

/** Collects every byte a socket receives; `done` resolves at its 'end' or 'close'. */
export function sink(socket: net.Socket): { bytes(): Buffer; done: Promise<Buffer> } {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve) => {
    const finish = (): void => resolve(Buffer.concat(chunks));
    socket.once('end', finish);
    socket.once('close', finish);
  });
  return { bytes: () => Buffer.concat(chunks), done };
}
