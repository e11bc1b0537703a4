/**
 * Peers for the WebSocketProxy integration tests: a recording `ws` client, raw WebSocket peers that
 * send exact (or invalid) frames and record every frame they receive, a recording logger, and a raw
 * HTTP upgrade request for failed handshakes.
 *
 * Everything is on 127.0.0.1; every peer has a way to be closed.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import type { Frame } from '../../src/frame.js';
import type { Logger } from '../../src/proxy/options.js';
import { encodeFrame } from '../../src/protocol/encode.js';
import { FrameReadable } from '../../src/streams/frame-readable.js';
import { rawUpgradeClient, tick } from './sockets.js';

/** Polls `condition` once per event-loop turn until it holds (the mocha timeout is the failure). */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await tick();
}

/** What a `ws` client saw. */
export interface RecordingClient {
  ws: WebSocket;
  /** Messages in order: text as string, binary as Buffer. */
  messages: (string | Buffer)[];
  /** Every event in order, e.g. `message:hello`, `ping:1`, `close:1000:bye`. */
  events: string[];
  /** Resolves with the close code and reason at 'close'. */
  closed: Promise<{ code: number; reason: string }>;
  /** Errors emitted by the client. */
  errors: Error[];
  /** Resolves once `n` messages arrived. */
  waitMessages(n: number): Promise<void>;
}

/** Opens a `ws` client (no compression) and records what it receives; resolves once open. */
export async function wsClient(url: string, protocols?: string | string[], options: ClientOptions = {}): Promise<RecordingClient> {
  const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
  const client = recordClient(ws);
  await once(ws, 'open');
  return client;
}

/** Records what a `ws` socket (client or server side) receives. */
export function recordClient(ws: WebSocket): RecordingClient {
  const messages: (string | Buffer)[] = [];
  const events: string[] = [];
  const errors: Error[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    messages.push(isBinary ? data : data.toString());
    events.push(`message:${isBinary ? `binary:${data.length}` : data.toString()}`);
  });
  ws.on('ping', (data: Buffer) => events.push(`ping:${data.toString()}`));
  ws.on('pong', (data: Buffer) => events.push(`pong:${data.toString()}`));
  ws.on('error', (err: Error) => errors.push(err));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code: number, reason: Buffer) => {
      events.push(`close:${code}:${reason.toString()}`);
      resolve({ code, reason: reason.toString() });
    });
  });
  return {
    ws, messages, events, closed, errors,
    waitMessages: (n) => until(() => messages.length >= n),
  };
}

/** Frame as plain data for deep equality: payload as text. */
export interface FrameText {
  type: Frame['type'];
  fin: boolean;
  data: string;
  code?: number;
}

/** The plain view of a frame, payload decoded as UTF-8. */
export function text(frame: Frame): FrameText {
  const out: FrameText = { type: frame.type, fin: frame.fin, data: frame.payload.toString() };
  if (frame.code !== undefined) out.code = frame.code;
  return out;
}

/**
 * A raw WebSocket peer on an upgraded socket: reads frames with a `FrameReadable` (recording them,
 * and the error that ended them), writes frames encoded by hand (masked with a fresh key when it is
 * the client), or any bytes at all.
 */
export class RawPeer {
  /** Frames received, in order. */
  readonly frames: Frame[] = [];
  /** The error the reader failed with (a protocol violation by the other end), if any. */
  error: Error | undefined;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  /** Whether the other end ended its side of TCP ('end'). */
  gotEnd = false;
  /** Whether the socket has closed. */
  isClosed = false;
  private readonly reader: FrameReadable;

  /**
   * @param socket - the upgraded socket
   * @param head - bytes read past the upgrade
   * @param role - `'client'`: masks what it sends, reads unmasked frames; `'server'`: the reverse
   */
  constructor(readonly socket: net.Socket, head: Buffer, readonly role: 'client' | 'server') {
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.isClosed = true;
      resolve();
    }));
    socket.on('end', () => {
      this.gotEnd = true;
      // As a plain TCP peer does (an http server's sockets allow half-open connections).
      socket.end();
    });
    this.reader = new FrameReadable(socket, { role, head, maxFrameSize: 256 * 1024 * 1024 });
    this.reader.on('data', (frame: Frame) => this.frames.push({ ...frame, payload: Buffer.from(frame.payload) }));
    this.reader.on('error', (err: Error) => {
      this.error = err;
    });
    socket.on('error', () => undefined);
  }

  /** Sends frames, each in its own write (masked with a fresh key for a client). */
  send(...frames: Frame[]): void {
    for (const frame of frames) {
      const key = this.role === 'client' ? randomBytes(4) : undefined;
      this.socket.write(Buffer.concat(encodeFrame(frame, key)));
    }
  }

  /** Writes raw bytes. */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Resolves once `n` frames were received. */
  async waitFrames(n: number): Promise<Frame[]> {
    await until(() => this.frames.length >= n);
    return this.frames;
  }

  /** Resolves with the first close frame received. */
  async waitClose(): Promise<Frame> {
    await until(() => this.frames.some((f) => f.type === 'close'));
    return this.frames.find((f) => f.type === 'close')!;
  }

  /** Destroys the socket. */
  destroy(): void {
    this.socket.destroy();
  }
}

/** Upgrades a raw client through the proxy at `port` and wraps it in a {@link RawPeer}. */
export async function rawClient(port: number, path = '/'): Promise<RawPeer> {
  const { socket, head } = await rawUpgradeClient(port, path);
  return new RawPeer(socket, head, 'client');
}

/** The port of a `ws://127.0.0.1:port` URL. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** A logger recording each line with its level, e.g. `info: forwarding close...`. */
export function recordingLogger(): Logger & { lines: string[]; at(level: string): string[] } {
  const lines: string[] = [];
  const at = (level: string) => lines.filter((l) => l.startsWith(`${level}: `)).map((l) => l.slice(level.length + 2));
  return {
    lines,
    at,
    debug: (m: string) => lines.push(`debug: ${m}`),
    info: (m: string) => lines.push(`info: ${m}`),
    warn: (m: string) => lines.push(`warn: ${m}`),
    error: (m: string) => lines.push(`error: ${m}`),
  };
}

/** An HTTP response to an upgrade request that was not upgraded. */
export interface PlainResponse {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * Sends an upgrade request with exactly `headers` (no defaults added but Host) and resolves with the
 * response if it is not a 101; rejects if the request was upgraded (the socket is destroyed).
 */
export async function upgradeRequest(port: number, headers: Record<string, string>, method = 'GET', path = '/'): Promise<PlainResponse> {
  const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, headers });
  req.end();
  return new Promise<PlainResponse>((resolve, reject) => {
    req.on('upgrade', (_res, socket: net.Socket) => {
      socket.destroy();
      reject(new Error('unexpectedly upgraded'));
    });
    req.on('error', reject);
    req.on('response', (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
}

/** Valid WebSocket upgrade request headers with a fresh key. */
export function upgradeHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
}
