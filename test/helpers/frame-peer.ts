/**
 * A scripted WebSocket endpoint on a raw upgraded socket, for the proxy's property tests: it sends
 * exact frames or any bytes, stops reading for a while, resets or half-closes its TCP connection,
 * and records what it receives (messages reassembled from their fragments, pings, pongs, close
 * frames, and whether anything came after a close).
 *
 * It behaves as a well-behaved endpoint unless told otherwise: it answers a close frame with the
 * same code and reason (as `ws` does), the server end closes TCP once the close handshake is done
 * (RFC 6455 section 7.1.1), and either end answers the other's FIN with its own.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { Frame } from '../../src/frame.js';
import { encodeFrame } from '../../src/protocol/encode.js';
import { FrameParser } from '../../src/protocol/parser.js';

/** A message as received: type and payload. */
export interface PeerMessage {
  type: 'text' | 'binary';
  payload: Buffer;
}

/** Real timers, captured at load time (a test's fake clock must not hold the peer's pauses). */
const realSetTimeout = globalThis.setTimeout;

/** A raw WebSocket endpoint; see the module comment. */
export class FramePeer {
  /** Whole messages received, in order. */
  readonly messages: PeerMessage[] = [];
  /** Payloads (hex) of the pings and pongs received, in order, e.g. `ping:00ff`. */
  readonly controls: string[] = [];
  /** Close frames received: the code (undefined for an empty body) and the reason. */
  readonly closes: { code: number | undefined; reason: string }[] = [];
  /** Frames of any type received after the first close frame (there must be none). */
  framesAfterClose = 0;
  /** What the peer's parser failed with: the other end sent bytes that are not valid WebSocket. */
  parseError: Error | undefined;
  /** Whether the peer sent a close frame, and its code. */
  sentClose = false;
  sentCloseCode: number | undefined;
  /** Whether the peer broke the connection on purpose (invalid bytes, reset, FIN without close). */
  faulted = false;
  /** Whether the other end ended its side of TCP, and whether the socket has closed. */
  gotEnd = false;
  isClosed = false;
  /** Resolves once the socket has closed. */
  readonly closed: Promise<void>;
  /**
   * Whether a server end that broke the connection still closes TCP when it is sent a close frame
   * (as a server that sent garbage usually does), or leaves the proxy to give up on it.
   */
  closesAfterFault = true;

  private readonly parser: FrameParser;
  private open: PeerMessage | undefined;
  private pauses = 0;

  /**
   * @param socket - the upgraded socket
   * @param head - bytes read past the upgrade
   * @param role - `'client'` masks what it sends and reads unmasked frames; `'server'` the reverse
   */
  constructor(readonly socket: net.Socket, head: Buffer, readonly role: 'client' | 'server') {
    // The peer reads what a proxy sends it: valid frames only, text checked, no extension.
    this.parser = new FrameParser({
      role: role === 'client' ? 'client' : 'server',
      maxFrameSize: 256 * 1024 * 1024,
      maxBufferedBytes: 256 * 1024 * 1024 + 14,
      validateUtf8: true,
      allowRsv1: false,
    });
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.isClosed = true;
      resolve();
    }));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      this.gotEnd = true;
      if (!socket.destroyed) socket.end();
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    if (head.length > 0) this.receive(Buffer.from(head));
    socket.resume();
  }

  /** Whether the peer may still send: it neither sent a close frame nor broke the connection. */
  get canSend(): boolean {
    return !this.sentClose && !this.faulted && !this.socket.destroyed;
  }

  /** Sends frames, each in its own write (masked with a fresh key by a client). */
  send(...frames: Frame[]): void {
    for (const frame of frames) {
      if (frame.type === 'close') {
        this.sentClose = true;
        this.sentCloseCode = frame.code;
      }
      this.socket.write(Buffer.concat(encodeFrame(frame, this.role === 'client' ? randomBytes(4) : undefined)));
    }
    this.maybeEnd();
  }

  /** Writes any bytes, e.g. an invalid frame; from then on the peer sends nothing more. */
  sendInvalid(bytes: Buffer): void {
    this.faulted = true;
    this.socket.write(bytes);
  }

  /** Resets the connection (TCP RST). */
  reset(): void {
    this.faulted = true;
    this.socket.resetAndDestroy();
  }

  /** Half-closes TCP without a close frame, after `bytes` (e.g. the start of a frame). */
  endTcp(bytes?: Buffer): void {
    this.faulted = true;
    if (bytes === undefined) this.socket.end();
    else this.socket.end(bytes);
  }

  /** Stops reading for `ms` milliseconds (real time); reading resumes when every pause is over. */
  pause(ms: number): void {
    this.pauses++;
    this.socket.pause();
    realSetTimeout(() => {
      if (--this.pauses === 0 && !this.socket.destroyed) this.socket.resume();
    }, ms);
  }

  /** Whether the bytes received end inside a frame (the other end stopped in the middle of one). */
  get midFrame(): boolean {
    return this.parser.midFrame;
  }

  /** Whether a pause is under way (its timer is pending). */
  get paused(): boolean {
    return this.pauses > 0;
  }

  /** Destroys the socket (cleanup). */
  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.parseError !== undefined) return;
    this.parser.push(chunk);
    try {
      for (let frame = this.parser.next(); frame !== null; frame = this.parser.next()) this.onFrame(frame);
    } catch (err) {
      this.parseError = err as Error;
    }
  }

  private onFrame(frame: Frame): void {
    if (this.closes.length > 0) {
      this.framesAfterClose++;
      return;
    }
    switch (frame.type) {
      case 'text':
      case 'binary':
        this.open = { type: frame.type, payload: Buffer.from(frame.payload) };
        break;
      case 'continuation':
        if (this.open !== undefined) this.open.payload = Buffer.concat([this.open.payload, frame.payload]);
        break;
      case 'ping':
      case 'pong':
        this.controls.push(`${frame.type}:${frame.payload.toString('hex')}`);
        return;
      case 'close':
        this.closes.push({ code: frame.code, reason: frame.payload.toString('utf8') });
        // A well-behaved endpoint echoes the close (RFC 6455 section 5.5.1), as `ws` does.
        if (this.canSend) this.send({ type: 'close', fin: true, rsv1: false, payload: Buffer.from(frame.payload), ...(frame.code === undefined ? {} : { code: frame.code }) });
        this.maybeEnd();
        return;
    }
    if (frame.fin && this.open !== undefined) {
      this.messages.push(this.open);
      this.open = undefined;
    }
  }

  /** The server end closes TCP once both close frames went (RFC 6455 section 7.1.1). */
  private maybeEnd(): void {
    if (this.role !== 'server' || this.closes.length === 0 || this.socket.destroyed) return;
    if (this.sentClose || (this.faulted && this.closesAfterFault)) this.socket.end();
  }
}
