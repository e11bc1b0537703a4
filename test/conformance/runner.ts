/**
 * The conformance runner: plays each case of a group, in the manner of the Autobahn testsuite's
 * fuzzing client, against a `ws` echo server directly and through the proxy (default options, and
 * `aggregateFragments: true`), records what the client observes and asserts that the proxy is
 * transparent.
 *
 * A case's client is a raw socket after a raw HTTP upgrade (the request written by hand, optionally
 * with frames in the same write). It writes exact masked bytes (valid frames through src's
 * `encodeFrame(frame, key)`, invalid ones built by hand here) and reads what the server sends with a
 * tolerant reader of its own, so that it can observe anything, even frames a conforming server would
 * never send (masked, RSV bits, unknown opcodes are recorded as "odd" events and fail the case). Like a
 * well-behaved client it answers a ping with a pong and a server's close frame with a close frame, and
 * closes TCP after the server did.
 *
 * The echo server is a `ws` WebSocketServer (perMessageDeflate: false) echoing each message with its
 * type; a text message starting with NUL "cmd " is a command instead (see {@link command}) so that
 * cases can make the server close, ping, fragment or drop TCP first.
 *
 * What is compared, direct against proxied:
 * - every frame received before the close frame (opcode, FIN, RSV, mask bit, payload), in order;
 * - the close frame's code; its reason too, except when the server failed the connection (a case
 *   marked `violation`): `ws` sends its failure closes without a reason while the proxy names the
 *   error (allowance: the reason text of a failure close is free, RFC 6455 section 7.1.6);
 * - that the server closed the TCP connection;
 * - what the echo server received: its messages always; the close code it saw except after a
 *   violation: then the echo server, directly, fails the connection itself, while through the proxy
 *   it is sent 1001 (the rule: the violating side gets its close code, its peer 1001).
 *
 * After a violation the frames the client received before its close are compared like any others:
 * an echo still on its way when the proxy parsed the violation must reach the client before the
 * close frame, as it does from `ws` directly (the proxy stops reading the client, sends the upstream
 * 1001 and relays the upstream's frames until its close reply before it sends the client its close).
 *
 * Where `ws` and the proxy legitimately differ, a case carries an {@link Allowance} saying why, and the
 * proxy's documented behaviour is asserted instead. Each proxied run also checks the proxy's
 * `execute()` outcome: a client violation rejects with a coded error whose `closeCode` is the code the
 * client saw (1002 or 1007), and the echo server was sent 1001; every other case resolves with a
 * summary whose close sent to the client is the code the client saw (for a limit, 1009, with 1001 to
 * the upstream); for a handshake relayed end to end, the summary's received closes are the client's
 * and the upstream's, and neither side is marked aborted.
 *
 * Nothing is timed: a per-connection deadline only ends a case that would otherwise wait for ever,
 * which then records "no close seen" and fails its outcome assertions.
 *
 * `CONFORMANCE_REPORT=<file>` appends a markdown results table per group to that file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import type { RawData, WebSocket } from 'ws';
import { type Frame, isValidCloseCode } from '../../src/frame.js';
import { encodeFrame } from '../../src/protocol/encode.js';
import { type ProxySummary, type WebSocketProxy, isWebSocketProxyError } from '../../src/index.js';
import { type ProxyServer, startProxy, startUpstream } from '../helpers/proxy-harness.js';

/** Where a case is played: against the echo server, or through the proxy with or without aggregation. */
export type Mode = 'direct' | 'proxied' | 'aggregated';
/** The two proxied modes. */
export type ProxiedMode = Exclude<Mode, 'direct'>;
export const MODES: readonly Mode[] = ['direct', 'proxied', 'aggregated'];

/** A deterministic payload of `length` bytes: printable ASCII for text, every byte value for binary. */
export function payload(length: number, kind: 'text' | 'binary' = 'binary'): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = kind === 'text' ? 0x20 + ((i * 7 + (i >> 8)) % 95) : (i * 31 + (i >> 8) + 7) & 0xff;
  return out;
}

/** Opcodes, numerically (the runner speaks raw frames). */
export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** Most milliseconds one connection of a case may take before it is cut and recorded as such. */
const DEADLINE = 10_000;
/** Most milliseconds a violation waits for the server to fail the connection before the client closes. */
const VIOLATION_DEADLINE = 4_000;
/** Case runs (a case in one mode) in flight at once. */
const CONCURRENCY = 12;

// ---------------------------------------------------------------------------------------------------
// Frames the client sends

/** A fresh masking key. */
function maskKey(): Buffer {
  return randomBytes(4);
}

function bytes(data: string | Buffer | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** A valid frame as a client sends it: `encodeFrame(frame, key)` with a fresh key. */
export function wire(frame: Frame): Buffer {
  return Buffer.concat(encodeFrame(frame, maskKey()));
}

/** A hand-built frame, for anything `encodeFrame` refuses to produce. */
export interface RawFrame {
  opcode: number;
  payload?: string | Buffer;
  /** @defaultValue true */
  fin?: boolean;
  /** Reserved bits as Autobahn numbers them: 4 = RSV1, 2 = RSV2, 1 = RSV3. */
  rsv?: number;
  /** @defaultValue true (a client must mask) */
  mask?: boolean;
  /** Force a length form: 7, 16 or 64 bits (non-minimal encodings). */
  lengthForm?: 7 | 16 | 64;
  /** Set the most significant bit of a 64-bit length (RFC 6455 section 5.2 forbids it). */
  lengthMsb?: boolean;
}

/** Encodes a {@link RawFrame} byte by byte. */
export function raw(spec: RawFrame): Buffer {
  const data = bytes(spec.payload);
  const fin = spec.fin ?? true;
  const masked = spec.mask ?? true;
  const length = data.length;
  const form = spec.lengthForm ?? (length < 126 ? 7 : length < 0x10000 ? 16 : 64);
  const header: number[] = [((fin ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode) & 0xff];
  const maskBit = masked ? 0x80 : 0;
  if (form === 7) {
    header.push(maskBit | length);
  } else if (form === 16) {
    header.push(maskBit | 126, (length >> 8) & 0xff, length & 0xff);
  } else {
    const high = Math.floor(length / 0x100000000) | (spec.lengthMsb === true ? 0x80000000 : 0);
    const len64 = Buffer.alloc(8);
    len64.writeUInt32BE(high >>> 0, 0);
    len64.writeUInt32BE(length >>> 0, 4);
    header.push(maskBit | 127, ...len64);
  }
  if (!masked) return Buffer.concat([Buffer.from(header), data]);
  const key = maskKey();
  const body = Buffer.alloc(length);
  for (let i = 0; i < length; i++) body[i] = data[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from(header), key, body]);
}

/** A close body: the 2-byte code and the reason bytes (any code, any bytes). */
export function closeBody(code: number, reason: string | Buffer = ''): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(code, 0);
  return Buffer.concat([out, bytes(reason)]);
}

/** Splits bytes into pieces of `size` (the last one shorter). */
export function chunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  if (out.length === 0) out.push(data);
  return out;
}

/**
 * A message as a sequence of fragments, wired: the first of `type`, the rest continuations, FIN on
 * the last one only.
 */
export function fragments(type: 'text' | 'binary', parts: readonly Buffer[]): Buffer[] {
  return parts.map((part, i) => raw({ opcode: i === 0 ? (type === 'text' ? OP.TEXT : OP.BINARY) : OP.CONT, payload: part, fin: i === parts.length - 1 }));
}

// ---------------------------------------------------------------------------------------------------
// What the client observes

/** A frame as received, unvalidated. */
export interface ObservedFrame {
  opcode: number;
  fin: boolean;
  rsv: number;
  masked: boolean;
  payload: Buffer;
}

/** What the client saw, in order: reassembled data messages, pings, pongs and oddities. */
export type ObservedEvent =
  | { kind: 'message'; type: 'text' | 'binary'; data: Buffer; frames: number }
  | { kind: 'ping' | 'pong'; data: Buffer }
  | { kind: 'odd'; what: string };

/** A close frame as received. */
export interface ObservedClose {
  /** Undefined for an empty body. */
  code: number | undefined;
  reason: Buffer;
  /** The close body's length (1 would be a malformed body). */
  bodyLength: number;
}

/** What the echo server saw of one connection. */
export interface EchoRecord {
  messages: string[];
  closeCode: number | undefined;
  error: string | undefined;
  closed: Promise<void>;
}

/** The proxy's outcome of one connection (see the harness's `ProxyOutcome.done`). */
export interface ProxyResult {
  summary?: ProxySummary;
  error?: Error;
  connectError?: Error;
}

/** Everything recorded of one case in one mode. */
export interface Observation {
  mode: Mode;
  frames: ObservedFrame[];
  events: ObservedEvent[];
  close: ObservedClose | undefined;
  /** Whether the server closed the TCP connection (before the deadline). */
  tcpClosed: boolean;
  /** Whether the deadline cut the case. */
  expired: boolean;
  /** Socket errors the client saw (ECONNRESET and the like), for the diagnosis only. */
  socketErrors: string[];
  /** A failure of the runner itself (the upgrade failed...). */
  failure: string | undefined;
  /** What the echo server saw. */
  echo: EchoRecord | undefined;
  /** Proxied modes: the proxy's execute() outcome, or undefined if it had not settled in time. */
  outcome: ProxyResult | undefined;
  /** The code of the valid close frame the client sent, if any. */
  sentCode: number | 'empty' | undefined;
  /** Milliseconds the run took (for the report only; never asserted). */
  ms: number;
}

/** Reads frames off a byte stream without judging them (any opcode, bits, mask, length). */
class TolerantReader {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): ObservedFrame[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const out: ObservedFrame[] = [];
    for (;;) {
      const frame = this.next();
      if (frame === undefined) return out;
      out.push(frame);
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const joined = Buffer.concat(this.chunks);
    this.chunks.length = 0;
    this.chunks.push(joined);
    return joined;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.peek(n);
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.length -= n;
    return out;
  }

  private next(): ObservedFrame | undefined {
    if (this.length < 2) return undefined;
    const head = this.peek(Math.min(this.length, 14));
    const b0 = head[0]!;
    const b1 = head[1]!;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const headerLength = 2 + extra + (masked ? 4 : 0);
    if (this.length < headerLength) return undefined;
    const length = len7 === 126 ? head.readUInt16BE(2) : len7 === 127 ? head.readUInt32BE(2) * 0x100000000 + head.readUInt32BE(6) : len7;
    if (this.length < headerLength + length) return undefined;
    const header = Buffer.from(this.take(headerLength));
    const payload = Buffer.from(this.take(length));
    if (masked) {
      const key = header.subarray(headerLength - 4);
      for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    }
    return { opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 0x7, masked, payload };
  }
}

/**
 * The client side of one case: the socket, what it received, and the means for a case to write and
 * wait.
 */
export class CaseClient {
  readonly frames: ObservedFrame[] = [];
  readonly events: ObservedEvent[] = [];
  close: ObservedClose | undefined;
  /** Whether this client sent a close frame (its own or its reply to the server's). */
  closeSent = false;
  /** The code of the valid close frame this client sent (`sendClose` or its reply), if it sent one. */
  sentCode: number | 'empty' | undefined;
  tcpClosed = false;
  expired = false;
  readonly socketErrors: string[] = [];
  private readonly reader = new TolerantReader();
  private partial: { type: 'text' | 'binary'; parts: Buffer[] } | undefined;
  private waiters: { condition: () => boolean; stopOnClose: boolean; resolve: () => void }[] = [];

  constructor(readonly socket: net.Socket, head: Buffer) {
    socket.setNoDelay(true);
    socket.on('error', (err: Error) => this.socketErrors.push((err as NodeJS.ErrnoException).code ?? err.message));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => {
      // The server closed TCP: close ours too (RFC 6455 section 7.1.1: the server goes first).
      if (!socket.destroyed) socket.end();
    });
    socket.on('close', () => {
      this.tcpClosed = true;
      this.notify();
    });
    if (head.length > 0) this.receive(head);
  }

  /** Number of whole data messages received. */
  get messages(): number {
    return this.events.filter((e) => e.kind === 'message').length;
  }

  /** Number of pongs received. */
  get pongs(): number {
    return this.events.filter((e) => e.kind === 'pong').length;
  }

  /** Whether writing is pointless: the connection is going or gone. */
  private get silent(): boolean {
    return this.close !== undefined || this.tcpClosed || this.expired || this.socket.destroyed || !this.socket.writable;
  }

  /**
   * Writes bytes in one socket write (frames given apart are concatenated). Nothing is written once
   * the server sent its close frame: the client has answered it and sends nothing more.
   */
  send(...data: Buffer[]): void {
    if (this.silent) return;
    this.socket.write(data.length === 1 ? data[0]! : Buffer.concat(data));
  }

  /** Writes bytes in pieces of `size`, one socket write per event-loop turn ("chops"). */
  async sendChopped(data: Buffer, size: number): Promise<void> {
    for (const piece of chunks(data, size)) {
      if (this.silent) return;
      this.socket.write(piece);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Writes each buffer in its own socket write, one per event-loop turn. */
  async sendApart(...data: Buffer[]): Promise<void> {
    for (const piece of data) {
      if (this.silent) return;
      this.socket.write(piece);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Sends a valid close frame (code undefined: an empty body) and notes it. */
  sendClose(code?: number, reason?: string | Buffer): void {
    if (!this.silent && !this.closeSent) this.sentCode = code ?? 'empty';
    this.sendCloseBytes(wire({ type: 'close', fin: true, rsv1: false, payload: bytes(reason), ...(code === undefined ? {} : { code }) }));
  }

  /** Sends hand-built close bytes and notes that a close was sent. */
  sendCloseBytes(frame: Buffer): void {
    this.send(frame);
    this.closeSent = true;
  }

  /**
   * Resolves once `condition` holds, the server's close frame arrives (unless `stopOnClose` is false),
   * TCP closes, or the deadline passes.
   */
  until(condition: () => boolean, stopOnClose = true): Promise<void> {
    if (this.settled(condition, stopOnClose)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ condition, stopOnClose, resolve }));
  }

  /** Waits for `n` data messages in all (or the end). */
  awaitMessages(n: number): Promise<void> {
    return this.until(() => this.messages >= n);
  }

  /** Waits for `n` pongs in all (or the end). */
  awaitPongs(n: number): Promise<void> {
    return this.until(() => this.pongs >= n);
  }

  /** @internal the deadline passed */
  expire(): void {
    this.expired = true;
    this.notify();
  }

  private settled(condition: () => boolean, stopOnClose: boolean): boolean {
    return condition() || this.tcpClosed || this.expired || (stopOnClose && this.close !== undefined);
  }

  private notify(): void {
    const ready = this.waiters.filter((w) => this.settled(w.condition, w.stopOnClose));
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  private receive(chunk: Buffer): void {
    for (const frame of this.reader.push(chunk)) this.onFrame(frame);
    this.notify();
  }

  private onFrame(frame: ObservedFrame): void {
    this.frames.push(frame);
    if (this.close !== undefined) {
      this.events.push({ kind: 'odd', what: `frame with opcode ${frame.opcode} after the close frame` });
      return;
    }
    if (frame.masked) this.events.push({ kind: 'odd', what: 'masked frame from the server' });
    if (frame.rsv !== 0) this.events.push({ kind: 'odd', what: `RSV ${frame.rsv} from the server` });
    switch (frame.opcode) {
      case OP.CONT:
        if (this.partial === undefined) {
          this.events.push({ kind: 'odd', what: 'continuation without a message' });
          return;
        }
        this.partial.parts.push(frame.payload);
        break;
      case OP.TEXT:
      case OP.BINARY:
        if (this.partial !== undefined) this.events.push({ kind: 'odd', what: 'data frame inside an open message' });
        this.partial = { type: frame.opcode === OP.TEXT ? 'text' : 'binary', parts: [frame.payload] };
        break;
      case OP.CLOSE:
        this.onClose(frame.payload);
        return;
      case OP.PING:
      case OP.PONG:
        if (!frame.fin) this.events.push({ kind: 'odd', what: 'fragmented control frame' });
        this.events.push({ kind: frame.opcode === OP.PING ? 'ping' : 'pong', data: frame.payload });
        // "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response" (5.5.2).
        if (frame.opcode === OP.PING && !this.closeSent) this.send(wire({ type: 'pong', fin: true, rsv1: false, payload: frame.payload }));
        return;
      default:
        this.events.push({ kind: 'odd', what: `opcode ${frame.opcode}` });
        return;
    }
    if (frame.fin) {
      const { type, parts } = this.partial;
      this.partial = undefined;
      this.events.push({ kind: 'message', type, data: Buffer.concat(parts), frames: parts.length });
    }
  }

  private onClose(body: Buffer): void {
    const code = body.length >= 2 ? body.readUInt16BE(0) : undefined;
    this.close = { code, reason: body.subarray(Math.min(2, body.length)), bodyLength: body.length };
    if (!this.closeSent) {
      // Answer as a client does: echo a valid code, else an empty body.
      const reply = wire({ type: 'close', fin: true, rsv1: false, payload: Buffer.alloc(0), ...(code !== undefined && isValidCloseCode(code) ? { code } : {}) });
      if (!this.socket.destroyed && this.socket.writable) this.socket.write(reply);
      this.closeSent = true;
      this.sentCode = code !== undefined && isValidCloseCode(code) ? code : 'empty';
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Cases

/** An expected event: a data message, a pong, or a ping (only when the case makes the server ping). */
export interface ExpectedEvent {
  kind: 'text' | 'binary' | 'pong' | 'ping';
  data: Buffer;
}

export const text = (data: string | Buffer): ExpectedEvent => ({ kind: 'text', data: bytes(data) });
export const binary = (data: string | Buffer): ExpectedEvent => ({ kind: 'binary', data: bytes(data) });
export const pong = (data: string | Buffer = ''): ExpectedEvent => ({ kind: 'pong', data: bytes(data) });
export const ping = (data: string | Buffer = ''): ExpectedEvent => ({ kind: 'ping', data: bytes(data) });

/** The outcome a case expects from a server. */
export interface Expectation {
  /** Data messages (reassembled) and pongs, in order. */
  events: ExpectedEvent[];
  /** The server's close frame: its code, `'empty'` for an empty body, `'none'` for no close frame. */
  close: number | 'empty' | 'none';
  /** The messages the echo server received, when the case checks them (see {@link describeEcho}). */
  echoReceived?: string[];
}

/**
 * A documented difference between the `ws` echo server and the proxy for one case and mode.
 */
export interface Allowance {
  /** Why the proxy legitimately differs from `ws` here. */
  why: string;
  /** The proxy's own documented outcome, asserted instead of equality with the direct run. */
  expect?: Expectation;
  /**
   * The proxied client may see a prefix of what the direct client sees, and the echo server a prefix
   * of what it receives directly. Only for a violation parsed while valid messages before it still
   * wait in the proxy's pipeline (backpressure): those are dropped with the failed direction, so their
   * echoes never come. An echo already on its way is never an excuse: it must reach the client.
   */
  prefix?: boolean;
  /**
   * Frames may be re-fragmented (aggregation): compare what the client saw as events (messages
   * reassembled, control frames) rather than frame by frame.
   */
  refragmented?: boolean;
}

/** One conformance case. */
export interface ConformanceCase {
  /** Autobahn-style number, e.g. '5.6'. */
  id: string;
  title: string;
  /** Bytes written in the same write as the upgrade request, before the 101 arrives. */
  early?(): Buffer;
  /** Whether `early` holds a close frame. */
  earlyClose?: boolean;
  /** What the client does; it may wait for the server (`client.awaitMessages(n)`, ...). */
  play(client: CaseClient): Promise<void> | void;
  /** What the `ws` echo server does, and, unless allowed otherwise, what the proxy does. */
  expect: Expectation;
  /** The client breaks the protocol: the server must fail the connection (1002, 1007, 1009). */
  violation?: boolean;
  /** Documented differences per proxied mode. */
  allow?: Partial<Record<ProxiedMode, Allowance>>;
  /** Extra assertions on the proxy's outcome. */
  checkOutcome?(result: ProxyResult, observation: Observation): void;
}

// ---------------------------------------------------------------------------------------------------
// Servers

/** The echo server and the two proxies in front of it. */
interface Environment {
  urls: Record<Mode, string>;
  echo: Map<string, EchoRecord>;
  proxies: Record<ProxiedMode, { server: ProxyServer; byPath: Map<string, WebSocketProxy> }>;
  close(): Promise<void>;
}

async function startEnvironment(): Promise<Environment> {
  const echoRecords = new Map<string, EchoRecord>();
  const upstream = await startUpstream((ws: WebSocket, req: http.IncomingMessage) => {
    let resolveClosed!: () => void;
    const record: EchoRecord = {
      messages: [],
      closeCode: undefined,
      error: undefined,
      closed: new Promise<void>((resolve) => (resolveClosed = resolve)),
    };
    echoRecords.set(req.url ?? '/', record);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      record.messages.push(describeData(isBinary ? 'binary' : 'text', buffer));
      if (!isBinary && buffer.subarray(0, COMMAND.length).equals(COMMAND)) runCommand(ws, buffer.subarray(COMMAND.length).toString());
      else ws.send(buffer, { binary: isBinary });
    });
    ws.on('pong', (data: Buffer) => record.messages.push(describeData('pong', data)));
    ws.on('error', (err: Error) => {
      record.error = err.message;
    });
    ws.on('close', (code: number) => {
      record.closeCode = code;
      resolveClosed();
    });
  });
  const proxies = {} as Record<ProxiedMode, { server: ProxyServer; byPath: Map<string, WebSocketProxy> }>;
  for (const mode of ['proxied', 'aggregated'] as const) {
    const byPath = new Map<string, WebSocketProxy>();
    const server = await startProxy({
      upstream: (req) => upstream.url + (req.url ?? '/'),
      proxyOptions: mode === 'aggregated' ? { aggregateFragments: true } : undefined,
      handshake: (proxy, url, req, socket, head) => {
        byPath.set(req.url ?? '/', proxy);
        return proxy.connect(url, req, socket, head);
      },
    });
    proxies[mode] = { server, byPath };
  }
  return {
    urls: { direct: upstream.url, proxied: proxies.proxied.server.url, aggregated: proxies.aggregated.server.url },
    echo: echoRecords,
    proxies,
    async close() {
      await Promise.all([proxies.proxied.server.close(), proxies.aggregated.server.close()]);
      await upstream.close();
    },
  };
}

/** A text message starting with these bytes is a command to the echo server, not echoed. */
const COMMAND = Buffer.from('\u0000cmd ');

/**
 * A command to the echo server, for the cases where the server acts first:
 * - `close [code [reason]]`: the server closes (ws.close);
 * - `ping <data>`: the server pings;
 * - `fragments <text|binary> <n> <data>`: the server sends `data` in `n` fragments, a ping after the
 *   first one;
 * - `terminate`: the server drops TCP without a close frame.
 *
 * @param words - the command and its arguments, separated by single spaces
 */
export function command(...words: (string | number)[]): Buffer {
  return wire({ type: 'text', fin: true, rsv1: false, payload: Buffer.concat([COMMAND, Buffer.from(words.join(' '))]) });
}

function runCommand(ws: WebSocket, line: string): void {
  const [name, ...args] = line.split(' ');
  switch (name) {
    case 'close':
      if (args.length === 0) ws.close();
      else ws.close(Number(args[0]), args.slice(1).join(' '));
      break;
    case 'ping':
      ws.ping(args.join(' '));
      break;
    case 'fragments': {
      const binaryType = args[0] === 'binary';
      const n = Number(args[1]);
      const data = Buffer.from(args.slice(2).join(' '));
      const size = Math.ceil(data.length / n);
      for (let i = 0; i < n; i++) {
        ws.send(data.subarray(i * size, (i + 1) * size), { binary: binaryType, fin: i === n - 1 });
        if (i === 0) ws.ping('between fragments');
      }
      break;
    }
    case 'terminate':
      ws.terminate();
      break;
    default:
      ws.close(1011, `unknown command ${String(name)}`);
  }
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * A raw HTTP upgrade on 127.0.0.1: the request written by hand (followed in the same write by
 * `early`, frames sent before the 101 arrives), the response read up to its blank line and checked;
 * resolves with the socket and the bytes after the response head.
 */
function upgrade(url: string, path: string, early: Buffer | undefined): Promise<{ socket: net.Socket; head: Buffer }> {
  const { port } = new URL(url);
  const key = randomBytes(16).toString('base64');
  const request = Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    let received = Buffer.alloc(0);
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.off('error', fail);
      socket.pause();
      const lines = received.subarray(0, end).toString('latin1').split('\r\n');
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      const headers = new Map(lines.slice(1).map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
      }));
      if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? '')) fail(new Error(`upgrade answered ${lines[0]}`));
      else if (headers.get('sec-websocket-accept') !== accept) fail(new Error('bad Sec-WebSocket-Accept'));
      else resolve({ socket, head: received.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', fail);
    socket.once('connect', () => socket.write(early === undefined ? request : Buffer.concat([request, early])));
  });
}

/** Resolves with `promise`'s value, or `undefined` after `ms` milliseconds; leaves no timer behind. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Plays one case in one mode and records what happened. */
async function play(env: Environment, c: ConformanceCase, mode: Mode): Promise<Observation> {
  const path = `/${mode}/${c.id}`;
  const observation: Observation = {
    mode, frames: [], events: [], close: undefined, tcpClosed: false, expired: false, socketErrors: [],
    failure: undefined, echo: undefined, outcome: undefined, sentCode: undefined, ms: 0,
  };
  const started = Date.now();
  let client: CaseClient | undefined;
  const timer = setTimeout(() => client?.expire(), DEADLINE);
  try {
    const early = c.early?.();
    const { socket, head } = await upgrade(env.urls[mode], path, early);
    client = new CaseClient(socket, head);
    client.closeSent = early !== undefined && c.earlyClose === true;
    socket.resume();
    await c.play(client);
    if (!client.closeSent && client.close === undefined && !client.tcpClosed) {
      // A violation must make the server fail the connection: wait for it, within bounds.
      if (c.violation === true) {
        await within(client.until(() => false), VIOLATION_DEADLINE);
      }
      // Then, or in a valid case once it is played, the client closes normally.
      if (!client.closeSent && client.close === undefined && !client.tcpClosed) client.sendClose(1000);
    }
    await client.until(() => client!.tcpClosed, false);
    Object.assign(observation, {
      frames: client.frames, events: client.events, close: client.close, tcpClosed: client.tcpClosed,
      expired: client.expired, socketErrors: client.socketErrors, sentCode: client.sentCode,
    });
    socket.destroy();
  } catch (err) {
    observation.failure = (err as Error).message;
    client?.socket.destroy();
  } finally {
    clearTimeout(timer);
  }
  const record = env.echo.get(path);
  if (record !== undefined) {
    await within(record.closed, DEADLINE);
    observation.echo = record;
  }
  if (mode !== 'direct') {
    const { server, byPath } = env.proxies[mode];
    const proxy = byPath.get(path);
    const outcome = server.outcomes.find((o) => o.proxy === proxy);
    if (outcome !== undefined) observation.outcome = await within(outcome.done, DEADLINE);
  }
  observation.ms = Date.now() - started;
  return observation;
}

// ---------------------------------------------------------------------------------------------------
// Comparison

function digest(data: Buffer): string {
  return data.length <= 24 ? data.toString('hex') : `sha1:${createHash('sha1').update(data).digest('hex').slice(0, 16)}`;
}

/** A data message or control payload as a short comparable string. */
export function describeData(kind: string, data: Buffer): string {
  return `${kind} len=${data.length} ${digest(data)}`;
}

/** How the echo server records a message: `describeData('text' | 'binary', data)`. */
export function describeEcho(kind: 'text' | 'binary', data: string | Buffer): string {
  return describeData(kind, bytes(data));
}

function describeEvent(event: ObservedEvent): string {
  switch (event.kind) {
    case 'message':
      return describeData(event.type, event.data);
    case 'odd':
      return `odd: ${event.what}`;
    default:
      return describeData(event.kind, event.data);
  }
}

function describeFrame(frame: ObservedFrame): string {
  return `op=${frame.opcode} fin=${frame.fin ? 1 : 0} rsv=${frame.rsv} mask=${frame.masked ? 1 : 0} ${describeData('payload', frame.payload)}`;
}

/** The frames before the close frame. */
function framesBeforeClose(o: Observation): string[] {
  const end = o.frames.findIndex((f) => f.opcode === OP.CLOSE);
  return (end === -1 ? o.frames : o.frames.slice(0, end)).map(describeFrame);
}

function closeCode(o: Observation): number | 'empty' | 'none' {
  if (o.close === undefined) return 'none';
  return o.close.code ?? 'empty';
}

/** Checks an observation against an expectation (events, close code, TCP closed). */
function assertExpectation(o: Observation, e: Expectation, label: string): void {
  expect(o.failure, `${label}: runner failure`).to.equal(undefined);
  expect(o.events.map(describeEvent), `${label}: events`).to.deep.equal(e.events.map((x) => describeData(x.kind, x.data)));
  expect(closeCode(o), `${label}: close code`).to.equal(e.close);
  if (o.close !== undefined) expect(o.close.bodyLength, `${label}: close body length`).to.not.equal(1);
  expect(o.tcpClosed, `${label}: the server closed TCP`).to.equal(true);
  expect(o.expired, `${label}: deadline`).to.equal(false);
  if (e.echoReceived !== undefined) expect(o.echo?.messages, `${label}: what the echo server received`).to.deep.equal(e.echoReceived);
}

function isPrefix(short: readonly string[], long: readonly string[]): boolean {
  return short.length <= long.length && short.every((value, i) => value === long[i]);
}

/** Checks that a proxied run saw what the direct run saw (see the file's header for the allowances). */
function assertTransparent(c: ConformanceCase, direct: Observation, proxied: Observation, allowance: Allowance | undefined): void {
  const label = proxied.mode;
  expect(proxied.failure, `${label}: runner failure`).to.equal(undefined);
  const asEvents = allowance?.refragmented === true;
  const directFrames = asEvents ? direct.events.map(describeEvent) : framesBeforeClose(direct);
  const proxiedFrames = asEvents ? proxied.events.map(describeEvent) : framesBeforeClose(proxied);
  if (allowance?.prefix === true) {
    expect(isPrefix(proxiedFrames, directFrames), `${label}: frames are a prefix of the direct run's\n${proxiedFrames.join('\n')}\nvs\n${directFrames.join('\n')}`).to.equal(true);
  } else {
    expect(proxiedFrames, `${label}: frames before the close frame`).to.deep.equal(directFrames);
  }
  expect(closeCode(proxied), `${label}: close code`).to.equal(closeCode(direct));
  if (c.violation !== true && proxied.close !== undefined && direct.close !== undefined) {
    expect(proxied.close.reason.toString('hex'), `${label}: close reason`).to.equal(direct.close.reason.toString('hex'));
  }
  expect(proxied.tcpClosed, `${label}: the server closed TCP`).to.equal(true);
  expect(proxied.expired, `${label}: deadline`).to.equal(false);
  if (allowance?.prefix === true) {
    expect(isPrefix(proxied.echo?.messages ?? [], direct.echo?.messages ?? []), `${label}: echo messages are a prefix`).to.equal(true);
    // What did reach the echo server was echoed, and every echo reached the client before its close.
    expect(proxied.events.map(describeEvent), `${label}: the client got the echo of every message the echo server received`).to.deep.equal(proxied.echo?.messages);
  } else {
    expect(proxied.echo?.messages, `${label}: what the echo server received`).to.deep.equal(direct.echo?.messages);
  }
  if (c.violation !== true) {
    expect(proxied.echo?.closeCode, `${label}: the close code the echo server saw`).to.equal(direct.echo?.closeCode);
  }
}

/** Checks the proxy's execute() outcome against what the client saw. */
function assertOutcome(c: ConformanceCase, o: Observation, allowance: Allowance | undefined): void {
  const label = o.mode;
  const result = o.outcome;
  expect(result, `${label}: execute() settled`).to.not.equal(undefined);
  expect(result!.connectError, `${label}: connect()`).to.equal(undefined);
  const seen = closeCode(o);
  const failed = c.violation === true && (seen === 1002 || seen === 1007);
  if (failed) {
    // A protocol violation by the client: execute() resolves, its summary has the coded error the
    // client was closed with, and the upstream was sent 1001.
    expect(result!.error, `${label}: execute() resolves`).to.equal(undefined);
    const error = result!.summary?.error;
    expect(isWebSocketProxyError(error), `${label}: summary.error is a coded error (got ${String(error)})`).to.equal(true);
    expect(isWebSocketProxyError(error) ? error.closeCode : undefined, `${label}: error.closeCode`).to.equal(seen);
    expect(o.echo?.closeCode, `${label}: the echo server was sent 1001`).to.equal(1001);
  } else {
    expect(result!.error, `${label}: execute() resolves`).to.equal(undefined);
    const summary = result!.summary!;
    if (seen !== 'none') {
      expect(summary.client.closeSent?.code ?? 'empty', `${label}: summary.client.closeSent`).to.equal(seen);
    }
    if (allowance === undefined && seen !== 'none') {
      if (o.sentCode !== undefined) {
        expect(summary.client.closeReceived?.code ?? 'empty', `${label}: summary.client.closeReceived`).to.equal(o.sentCode);
      }
      // A close handshake relayed end to end: the upstream's close frame is the one the client saw.
      expect(summary.upstream.closeReceived?.code ?? 'empty', `${label}: summary.upstream.closeReceived`).to.equal(seen);
      expect(summary.client.aborted || summary.upstream.aborted, `${label}: summary aborted`).to.equal(false);
      expect(summary.error, `${label}: summary.error after a clean close`).to.equal(undefined);
    }
    if (seen === 1009 && (c.violation === true || allowance?.expect?.close === 1009)) {
      // A limit: the client is sent 1009, the upstream 1001, and execute() resolves.
      expect(summary.upstream.closeSent?.code, `${label}: summary.upstream.closeSent (limit)`).to.equal(1001);
      expect(summary.error?.closeCode, `${label}: summary.error (limit)`).to.equal(1009);
      expect(o.echo?.closeCode, `${label}: the echo server was sent 1001`).to.equal(1001);
    }
  }
  c.checkOutcome?.(result!, o);
}

/**
 * Every assertion of a case; returns one verdict per mode: its error (undefined: passed) and whether
 * the run differed from the direct one within an allowance.
 */
function verdicts(c: ConformanceCase, runs: Record<Mode, Observation>): Record<Mode, { error: Error | undefined; allowed: boolean }> {
  const attempt = (fn: () => void): Error | undefined => {
    try {
      fn();
      return undefined;
    } catch (err) {
      return err as Error;
    }
  };
  const out = {} as Record<Mode, { error: Error | undefined; allowed: boolean }>;
  out.direct = { error: attempt(() => assertExpectation(runs.direct, c.expect, 'direct')), allowed: false };
  for (const mode of ['proxied', 'aggregated'] as const) {
    const allowance = c.allow?.[mode];
    out[mode] = {
      // Whether the run needed its allowance (it would fail the plain transparency check).
      allowed: allowance !== undefined && attempt(() => assertTransparent(c, runs.direct, runs[mode], undefined)) !== undefined,
      error: attempt(() => {
        if (allowance?.expect !== undefined) assertExpectation(runs[mode], allowance.expect, mode);
        else assertTransparent(c, runs.direct, runs[mode], allowance);
        assertOutcome(c, runs[mode], allowance);
      }),
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Mocha glue

/** Orders '5.10' after '5.9' and '5.15.1' after '5.15'. */
function compareIds(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

async function pool<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Declares a mocha suite for a group: its cases are played in every mode, a few at a time, in a
 * `before` hook; then one test per case asserts the outcome.
 *
 * @param title - the group's title, e.g. '1 framing'
 * @param cases - the group's cases (ids unique within the group)
 */
export function conformanceGroup(title: string, unordered: readonly ConformanceCase[]): void {
  const cases = [...unordered].sort((a, b) => compareIds(a.id, b.id));
  describe(`conformance ${title}`, function () {
    this.timeout(60_000);
    const results = new Map<string, Record<Mode, Observation>>();
    let env: Environment | undefined;

    before(async function () {
      this.timeout(120_000);
      env = await startEnvironment();
      const runs = cases.flatMap((c) => MODES.map((mode) => ({ c, mode })));
      await pool(runs, CONCURRENCY, async ({ c, mode }) => {
        const observation = await play(env!, c, mode);
        const entry = results.get(c.id) ?? ({} as Record<Mode, Observation>);
        entry[mode] = observation;
        results.set(c.id, entry);
      });
    });

    after(async function () {
      this.timeout(60_000);
      await env?.close();
      const file = process.env.CONFORMANCE_REPORT;
      if (file === undefined || file === '') return;
      const lines = [`\n### ${title}\n`, '| case | title | direct | proxied | aggregated | ms |', '|---|---|---|---|---|---|'];
      for (const c of cases) {
        const runs = results.get(c.id);
        if (runs === undefined) continue;
        const v = verdicts(c, runs);
        const cell = (mode: Mode): string => {
          const code = closeCode(runs[mode]);
          return `${v[mode].error === undefined ? (v[mode].allowed ? 'pass*' : 'pass') : 'FAIL'} (${code})`;
        };
        const ms = MODES.map((mode) => runs[mode].ms).join('/');
        lines.push(`| ${c.id} | ${c.title.replace(/\|/g, '/')} | ${cell('direct')} | ${cell('proxied')} | ${cell('aggregated')} | ${ms} |`);
      }
      appendFileSync(file, `${lines.join('\n')}\n`);
    });

    const seen = new Set<string>();
    for (const c of cases) {
      if (seen.has(c.id)) throw new Error(`duplicate case id ${c.id}`);
      seen.add(c.id);
      it(`${c.id} ${c.title}`, function () {
        const runs = results.get(c.id);
        expect(runs, 'the case was played').to.not.equal(undefined);
        const v = verdicts(c, runs!);
        const failures = MODES.filter((mode) => v[mode].error !== undefined).map((mode) => v[mode].error!);
        if (failures.length > 0) throw failures[0];
      });
    }
  });
}
