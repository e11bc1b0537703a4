/**
 * `WebSocketProxy`: one proxied WebSocket connection, a camelCase port of lua-resty-websocket-proxy
 * with its evolved close handshake (lingering, 1001 on abnormal ends) and its flaws fixed.
 *
 * @packageDocumentation
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { pipeline } from 'readable-stream';
import { HandshakeError, WebSocketProxyError, isWebSocketProxyError } from '../errors.js';
import { type Frame, closeFrame } from '../frame.js';
import { acceptClient, validateClientRequest, writeHttpResponse } from '../handshake/client.js';
import { HOP_BY_HOP_HEADERS, WEBSOCKET_CONNECTION_HEADERS, forwardedHeaders } from '../handshake/headers.js';
import { type UpstreamOptions, connectUpstream } from '../handshake/upstream.js';
import { wirePayload } from '../protocol/encode.js';
import { FrameReadable } from '../streams/frame-readable.js';
import { FrameWritable } from '../streams/frame-writable.js';
import { aggregate } from '../transforms/aggregate.js';
import { Forwarder, Outbox } from './forwarder.js';
import { defaultLogger, describeFrame } from './log.js';
import { type ProxyOptions, type ProxyRole, type ResolvedProxyOptions, resolveOptions } from './options.js';

/** The two streams of one side, for users who build their own pipelines. */
export interface ProxySide {
  /** Frames from this side. */
  readable: FrameReadable;
  /** Frames to this side. */
  writable: FrameWritable;
}

/** A close frame seen on the wire: its code (undefined for an empty close) and reason. */
export interface CloseInfo {
  code: number | undefined;
  reason: string;
}

/** What happened on one side of a proxied connection. */
export interface SideSummary {
  /** The close frame this side sent, if it sent one. */
  closeReceived: CloseInfo | undefined;
  /** The close frame the proxy sent to this side, if it sent one. */
  closeSent: CloseInfo | undefined;
  /** Frames received from this side (whole messages when aggregating). */
  frames: number;
  /** Payload bytes of those frames. */
  bytes: number;
  /** Whether the connection to this side ended without a close handshake (TCP loss, send timeout). */
  aborted: boolean;
}

/** What `execute()` resolves with once both connections are closed. */
export interface ProxySummary {
  /**
   * Who started the end: the side whose close frame or connection loss came first, or `'proxy'`
   * (`close()`, a limit, an error, a timeout).
   */
  closedBy: ProxyRole | 'proxy' | undefined;
  /** The client side. */
  client: SideSummary;
  /** The upstream side. */
  upstream: SideSummary;
}

/** Options of `connect()` and `connectUpstream()`: those of the upstream handshake. */
export type ConnectOptions = Omit<UpstreamOptions, 'signal'>;

interface SideState {
  readonly role: ProxyRole;
  readonly socket: Duplex;
  readonly readable: FrameReadable;
  readonly writable: FrameWritable;
  readonly outbox: Outbox;
  readonly summary: SideSummary;
  /** The forwarder writing to this side, once `execute()` runs. */
  forwarder: Forwarder | undefined;
  /** The error this side's reader failed with on its own (a protocol violation, a socket error). */
  readError: Error | undefined;
  /**
   * The error a later stage of this side's direction (a transform, the onFrame stage) failed with
   * first; pipeline() then destroys the reader with it too, which is not the reader's failure.
   */
  stageError: Error | undefined;
  socketClosed: boolean;
  ending: boolean;
  lastFrameAt: number;
  recvTimer: NodeJS.Timeout | undefined;
  killTimer: NodeJS.Timeout | undefined;
}

const EMPTY_SUMMARY = (): SideSummary => ({ closeReceived: undefined, closeSent: undefined, frames: 0, bytes: 0, aborted: false });

function closeInfo(frame: Frame): CloseInfo {
  return { code: frame.code, reason: frame.payload.toString('utf8') };
}

/** Response headers of the upstream's 101 worth relaying to the client (e.g. `Set-Cookie`). */
function relayableHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || WEBSOCKET_CONNECTION_HEADERS.has(name)) continue;
    if (name === 'sec-websocket-protocol' || name === 'date') continue;
    out[name] = value;
  }
  return out;
}

/** The part of a URL safe to log: no credentials, no query (it may carry secrets). */
function loggableUrl(url: string | URL): string {
  try {
    const parsed = new URL(String(url));
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

/**
 * One proxied WebSocket connection between a downstream client and an upstream server, frame by
 * frame, each direction a stream pipeline:
 * `FrameReadable -> [aggregate()] -> [transforms] -> onFrame stage -> FrameWritable`.
 *
 * ```ts
 * server.on('upgrade', async (req, socket, head) => {
 *   const proxy = new WebSocketProxy({ aggregateFragments: true, onFrame: (p, role, type, payload) => payload });
 *   try {
 *     await proxy.connect('ws://127.0.0.1:9001/path', req, socket, head);
 *   } catch {
 *     return; // the client was answered (502, 504, the upstream's own status, or 400)
 *   }
 *   const summary = await proxy.execute();
 * });
 * ```
 *
 * @typeParam Self - the proxy type passed to `onFrame` (for subclasses)
 */
export class WebSocketProxy {
  private readonly options: ResolvedProxyOptions<this>;
  private clientSide: SideState | undefined;
  private upstreamSide: SideState | undefined;
  private upstreamProtocol: string | undefined;
  private upstreamHeaders: IncomingHttpHeaders | undefined;
  private upstreamUrl: string | undefined;
  private running: Promise<ProxySummary> | undefined;
  private settle: ((error: Error | undefined) => void) | undefined;
  private finished = false;
  private failure: Error | undefined;
  private closedBy: ProxyRole | 'proxy' | undefined;
  private lastActivity = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private lingerIdleTimer: NodeJS.Timeout | undefined;

  /**
   * @param options - see {@link ProxyOptions}
   * @throws TypeError for an option of the wrong type or out of range, naming it
   *   (e.g. "options.onFrame must be a function")
   */
  constructor(options?: ProxyOptions<WebSocketProxy>) {
    this.options = resolveOptions(options as ProxyOptions<this> | undefined, defaultLogger());
  }

  /** The client side's streams, once its handshake completed. */
  get client(): ProxySide | undefined {
    const side = this.clientSide;
    return side === undefined ? undefined : { readable: side.readable, writable: side.writable };
  }

  /** The upstream side's streams, once its handshake completed. */
  get upstream(): ProxySide | undefined {
    const side = this.upstreamSide;
    return side === undefined ? undefined : { readable: side.readable, writable: side.writable };
  }

  /** The subprotocol the upstream selected, if any. */
  get protocol(): string | undefined {
    return this.upstreamProtocol;
  }

  /**
   * Opens the upstream WebSocket connection.
   *
   * @param url - `ws://` or `wss://` URL (IPv6 literals in brackets)
   * @param options - headers, protocols, origin, TLS options and `timeout` (default: the proxy's
   *   `connectTimeout`)
   * @returns the selected subprotocol and the 101 response's headers
   * @throws HandshakeError `WSP_ERR_INVALID_URL`, `WSP_ERR_UPSTREAM_UNREACHABLE`,
   *   `WSP_ERR_UPSTREAM_TIMEOUT`, `WSP_ERR_UPSTREAM_REJECTED` (with `statusCode`, `headers`, `body`)
   *   or `WSP_ERR_UPSTREAM_HANDSHAKE`
   */
  async connectUpstream(url: string | URL, options?: ConnectOptions): Promise<{ protocol: string | undefined; headers: IncomingHttpHeaders }> {
    if (this.upstreamSide !== undefined) {
      this.options.logger.warn(`connection with upstream at "${this.upstreamUrl}" already established`);
      return { protocol: this.upstreamProtocol, headers: this.upstreamHeaders ?? {} };
    }
    const shown = loggableUrl(url);
    this.debug(`connecting to "${shown}" upstream`);
    const connection = await connectUpstream(url, { timeout: this.options.connectTimeout, ...options });
    this.upstreamUrl = shown;
    this.upstreamProtocol = connection.protocol;
    this.upstreamHeaders = connection.headers;
    this.upstreamSide = this.createSide('upstream', connection.socket, connection.head);
    this.debug(`connected to "${shown}" upstream`);
    return { protocol: connection.protocol, headers: connection.headers };
  }

  /**
   * Completes the client's handshake: validates its upgrade request and answers 101 with the
   * subprotocol the upstream selected (when the upstream was connected first and the client offered
   * it), or 400 / 426 with the reason.
   *
   * @param req - the upgrade request
   * @param socket - its socket
   * @param head - the bytes after the request (Node's `'upgrade'` event gives them)
   * @throws HandshakeError `WSP_ERR_CLIENT_HANDSHAKE` (with `statusCode`) after answering the client;
   *   without `statusCode` when the client already closed its end of the connection (its socket is
   *   destroyed)
   */
  async connectClient(req: IncomingMessage, socket: Duplex, head: Buffer = Buffer.alloc(0)): Promise<void> {
    if (this.clientSide !== undefined) {
      this.options.logger.warn('client handshake already completed');
      return;
    }
    if (socket.readableEnded) {
      // The client left, e.g. while the upstream was being connected; a reader attached now would
      // never see that end, and the proxy would wait for this client for ever.
      socket.destroy();
      throw new HandshakeError('WSP_ERR_CLIENT_HANDSHAKE', 'the client closed the connection');
    }
    this.debug('completing client handshake');
    const accepted = await acceptClient(req, socket, head, {
      protocol: this.upstreamProtocol,
      headers: this.upstreamHeaders === undefined ? undefined : relayableHeaders(this.upstreamHeaders),
    });
    this.clientSide = this.createSide('client', accepted.socket, accepted.head);
    this.debug('completed client handshake');
  }

  /**
   * Connects the upstream, then the client. The upstream request carries the client's end-to-end
   * headers (cookies, authorization, origin, offered subprotocols...) and `X-Forwarded-*`;
   * `options` overrides any of it. If the upstream fails, the client is not upgraded but answered
   * here: the upstream's own response when it sent one, 504 on a timeout, 502 otherwise. If the
   * client's handshake fails, the upstream connection is closed (1001).
   *
   * @param url - the upstream URL
   * @param req - the client's upgrade request
   * @param socket - its socket
   * @param head - the bytes after the request
   * @param options - upstream handshake options, over the forwarded ones
   * @throws HandshakeError from either handshake, after the client was answered
   */
  async connect(url: string | URL, req: IncomingMessage, socket: Duplex, head: Buffer = Buffer.alloc(0), options?: ConnectOptions): Promise<void> {
    if (this.upstreamSide === undefined) {
      // A bad request is answered (400 / 426) before any upstream is bothered with it.
      if (this.clientSide === undefined && !validateClientRequest(req).ok) await this.connectClient(req, socket, head);
      const forwarded = forwardedHeaders(req);
      const upstreamOptions: ConnectOptions = { ...options, headers: { ...forwarded.headers, ...options?.headers } };
      if (options?.protocols === undefined && forwarded.protocols.length > 0) upstreamOptions.protocols = forwarded.protocols;
      try {
        await this.connectUpstream(url, upstreamOptions);
      } catch (err) {
        this.answerUpstreamFailure(socket, err);
        throw err;
      }
    }
    try {
      await this.connectClient(req, socket, head);
    } catch (err) {
      this.options.logger.info(`client handshake failed, closing the upstream: ${(err as Error).message}`);
      const upstream = this.upstreamSide;
      if (upstream !== undefined) {
        upstream.outbox.sendClose(1001, '');
        this.endSide(upstream);
      }
      throw err;
    }
  }

  /**
   * Runs both directions until both connections are closed.
   *
   * @returns a summary: who closed first, the close frames seen and sent on each side, frames and
   *   bytes per direction
   * @throws WebSocketProxyError `WSP_ERR_NOT_CONNECTED` before both handshakes; otherwise, after
   *   both sides were closed, the error that failed the proxy: a protocol violation by a side (it was
   *   sent 1002 or 1007, its peer 1001) or an error thrown by `onFrame` or a transform (both sides
   *   were sent 1011). Limits (1009) and connection losses resolve: the summary tells them.
   */
  execute(): Promise<ProxySummary> {
    if (this.running !== undefined) return this.running;
    const client = this.clientSide;
    const upstream = this.upstreamSide;
    if (client === undefined) return Promise.reject(new WebSocketProxyError('WSP_ERR_NOT_CONNECTED', 'client handshake not complete'));
    if (upstream === undefined) return Promise.reject(new WebSocketProxyError('WSP_ERR_NOT_CONNECTED', 'upstream connection not established'));
    this.running = new Promise<ProxySummary>((resolve, reject) => {
      this.settle = (error) => (error === undefined ? resolve(this.summary()) : reject(error));
    });
    this.lastActivity = Date.now();
    this.startDirection(client, upstream);
    this.startDirection(upstream, client);
    this.armIdleTimer();
    for (const side of [client, upstream]) {
      side.lastFrameAt = this.lastActivity;
      this.armRecvTimer(side);
    }
    for (const side of [client, upstream]) {
      if (side.socketClosed && !side.readable.closeReceived) this.lost(side, 'connection closed before execute()');
    }
    this.checkComplete();
    return this.running;
  }

  /**
   * Closes both sides: sends each a close frame (at most one per side), then waits for their close
   * replies, or for lingering to expire, before ending both connections. Callable from anywhere, also
   * from inside `onFrame`: a frame already accepted for forwarding (the one `onFrame` is returning)
   * is written before the close frame.
   *
   * @param clientCode - status for the client
   * @param clientReason - reason for the client
   * @param upstreamCode - status for the upstream
   * @param upstreamReason - reason for the upstream
   * @defaultValue clientCode: 1000, upstreamCode: clientCode, reasons: ''
   * @throws WebSocketProxyError `WSP_ERR_INVALID_FRAME` for a code that may not be sent
   *   (RFC 6455 section 7.4, e.g. 1005) or a reason that is not UTF-8, before anything is sent
   */
  close(clientCode = 1000, clientReason = '', upstreamCode: number = clientCode, upstreamReason = ''): void {
    if (this.finished) return;
    // Checked first: a close frame the writer refuses would fail that side's writer for good.
    wirePayload(closeFrame(clientCode, clientReason));
    wirePayload(closeFrame(upstreamCode, upstreamReason));
    this.closedBy ??= 'proxy';
    const targets: [SideState | undefined, number, string][] = [
      [this.clientSide, clientCode, clientReason],
      [this.upstreamSide, upstreamCode, upstreamReason],
    ];
    for (const [side, code, reason] of targets) {
      if (side === undefined) continue;
      const send = () => {
        side.outbox.sendClose(code, reason);
        if (this.running === undefined) this.endSide(side);
      };
      if (side.forwarder !== undefined) side.forwarder.afterCurrent(send);
      else send();
    }
  }

  /**
   * Sends a frame of the proxy's own to a side, in order with forwarded frames. A data message
   * (whole: `fin: true`) waits while a forwarded fragmented message to that side is open; control
   * frames go at once.
   *
   * @param role - the side to send to
   * @param frame - the frame, e.g. `textFrame('hello')` or `pingFrame()`
   * @throws WebSocketProxyError `WSP_ERR_NOT_CONNECTED`, `WSP_ERR_WRITE_AFTER_CLOSE` (a close frame
   *   was sent to that side) or `WSP_ERR_INVALID_FRAME`
   */
  send(role: ProxyRole, frame: Frame): void {
    const side = role === 'client' ? this.clientSide : role === 'upstream' ? this.upstreamSide : undefined;
    if (side === undefined) throw new WebSocketProxyError('WSP_ERR_NOT_CONNECTED', `no ${String(role)} connection`);
    if (side.ending) throw new WebSocketProxyError('WSP_ERR_WRITE_AFTER_CLOSE', `the ${role} connection is ending`);
    if (frame.type === 'close') {
      // Checked first: a close frame the writer refuses would fail that side's writer for good.
      wirePayload(frame);
      if (!side.outbox.sendClose(frame.code, frame.payload.toString())) {
        throw new WebSocketProxyError('WSP_ERR_WRITE_AFTER_CLOSE', `a close frame was sent to the ${role} already`);
      }
      return;
    }
    side.outbox.inject(frame);
  }

  /** The state of one side, once its handshake completed. */
  private sideOf(role: ProxyRole): SideState | undefined {
    return role === 'client' ? this.clientSide : this.upstreamSide;
  }

  private debug(message: string): void {
    if (this.options.debug) this.options.logger.debug(message);
  }

  private createSide(role: ProxyRole, socket: Duplex, head: Buffer): SideState {
    const options = this.options;
    const isClient = role === 'client';
    const maxFrameSize = Math.floor(isClient ? options.clientMaxFrameSize : options.upstreamMaxFrameSize);
    const readable = new FrameReadable(socket, {
      role: isClient ? 'server' : 'client',
      head,
      maxFrameSize,
      maxMessageSize: options.aggregateFragments ? maxFrameSize : undefined,
      maxFragments: Math.floor(isClient ? options.clientMaxFragments : options.upstreamMaxFragments),
      validateUtf8: options.validateUtf8,
    });
    const writable = new FrameWritable(socket, { role: isClient ? 'server' : 'client', closeTimeout: options.lingeringTimeout });
    const outbox = new Outbox(role, writable, options.sendTimeout, {
      onCloseSent: (to, frame) => this.onCloseSent(to, frame),
      onFailure: (to, error) => this.onOutboxFailure(to, error),
    });
    const side: SideState = {
      role, socket, readable, writable, outbox,
      summary: EMPTY_SUMMARY(),
      forwarder: undefined,
      readError: undefined,
      stageError: undefined,
      socketClosed: false,
      ending: false,
      lastFrameAt: 0,
      recvTimer: undefined,
      killTimer: undefined,
    };
    readable.on('error', (err: Error) => {
      if (err !== side.stageError) side.readError ??= err;
    });
    writable.on('error', (err: Error) => {
      this.debug(`${role} writer failed: ${err.message}`);
    });
    socket.once('close', () => this.onSocketClose(side));
    return side;
  }

  private startDirection(from: SideState, to: SideState): void {
    const options = this.options;
    const onFrame = options.onFrame;
    const forwarder = new Forwarder({
      from: from.role,
      to: to.outbox,
      onFrame: onFrame === undefined ? undefined : (frame) => onFrame(this, from.role, frame.type, frame.payload, frame.fin, frame.code),
      onInput: (frame) => this.onInput(from, frame),
      onDrop: (frame, forwardedAnyway) => {
        if (forwardedAnyway) this.options.logger.warn(`${from.role} close frame cannot be dropped; forwarding it unchanged`);
        else this.debug(`${from.role} dropping ${frame.type} frame after onFrame requested it`);
      },
      onClose: (frame) => this.onCloseReceived(from, to, frame),
    });
    to.forwarder = forwarder;
    const stages: NodeJS.ReadWriteStream[] = [from.readable as unknown as NodeJS.ReadWriteStream];
    if (options.aggregateFragments) {
      // The parser already enforces the message limits, before buffering; aggregate() only assembles.
      stages.push(aggregate({ maxMessageSize: Infinity, maxFragments: Infinity }) as unknown as NodeJS.ReadWriteStream);
    }
    for (const stage of options.transforms[from.role]) stages.push(stage as unknown as NodeJS.ReadWriteStream);
    stages.push(forwarder as unknown as NodeJS.ReadWriteStream);
    // Emitted before pipeline() passes the error on to the reader: see SideState.stageError.
    for (const stage of stages.slice(1)) stage.on('error', (err: Error) => void (from.stageError ??= err));
    pipeline(stages, (err) => this.onDirectionEnd(from, to, err ?? undefined));
  }

  private onInput(from: SideState, frame: Frame): void {
    const now = Date.now();
    this.lastActivity = now;
    from.lastFrameAt = now;
    from.summary.frames++;
    from.summary.bytes += frame.payload.length;
    if (this.lingerTimer !== undefined && from.summary.closeSent !== undefined && from.summary.closeReceived === undefined) {
      this.armLingerIdle();
    }
    // As the side sent it, before onFrame may rewrite it.
    if (frame.type === 'close') from.summary.closeReceived = closeInfo(frame);
    if (this.options.debug) this.options.logger.debug(describeFrame(from.role, frame, this.options.aggregateFragments));
  }

  /** A close frame from `from` reached the forwarder; returns whether to forward it to `to`. */
  private onCloseReceived(from: SideState, to: SideState, frame: Frame): boolean {
    from.summary.closeReceived ??= closeInfo(frame);
    this.closedBy ??= from.role;
    const forward = to.outbox.closeSent === undefined && !to.ending;
    if (forward) {
      this.options.logger.info(`forwarding close with code: ${frame.code}, payload: ${JSON.stringify(frame.payload.toString())}`);
    } else {
      this.debug(`${from.role} close frame answers ours; not forwarded`);
    }
    if (!this.awaitingReply()) this.stopLinger();
    // A forwarded close is checked when it is sent (onCloseSent); a reply to ours completes here.
    if (!forward) this.checkHandshakeDone();
    return forward;
  }

  private onCloseSent(to: ProxyRole, frame: Frame): void {
    const side = this.sideOf(to);
    if (side === undefined) return;
    side.summary.closeSent = closeInfo(frame);
    this.debug(`${to} closing: code: ${frame.code} reason: ${JSON.stringify(frame.payload.toString())}`);
    if (side.summary.closeReceived === undefined && this.running !== undefined) this.startLinger();
    this.checkHandshakeDone();
  }

  /** Ends both connections once each side has both sent and been sent a close frame. */
  private checkHandshakeDone(): void {
    const client = this.clientSide;
    const upstream = this.upstreamSide;
    if (this.finished || client === undefined || upstream === undefined || this.running === undefined) return;
    const done = (side: SideState) => side.summary.aborted || (side.summary.closeSent !== undefined && side.summary.closeReceived !== undefined);
    if (done(client) && done(upstream)) this.endAll();
  }

  private onDirectionEnd(from: SideState, to: SideState, err: Error | undefined): void {
    if (this.finished) return;
    if (err === undefined) {
      // The side's frames ended: after its close frame, a normal end; without one, a lost connection.
      if (!from.readable.closeReceived) this.lost(from, 'connection closed without a close frame');
      return;
    }
    if (err === to.outbox.failure) {
      this.lost(to, err.message);
    } else if (err === from.readError) {
      if (isWebSocketProxyError(err) && err.closeCode !== 1006) this.protocolFailure(from, err);
      else this.lost(from, err.message);
    } else if (from.ending || to.ending || (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') {
      // The proxy is tearing the connection down already; a stage cut short is expected.
      if (!from.readable.closeReceived && !from.ending) this.lost(from, err.message);
    } else {
      this.userFailure(err);
    }
  }

  private onOutboxFailure(role: ProxyRole, error: Error): void {
    const side = this.sideOf(role);
    if (side === undefined || side.ending || this.running === undefined) return;
    this.lost(side, error.message);
  }

  private onSocketClose(side: SideState): void {
    side.socketClosed = true;
    // Nothing left to cut off (this also ends a side closed before execute(), e.g. by close()).
    if (side.killTimer !== undefined) clearTimeout(side.killTimer);
    side.killTimer = undefined;
    if (this.running === undefined || this.finished) return;
    if (!side.ending && !side.readable.closeReceived) this.lost(side, 'connection lost');
    this.checkComplete();
  }

  /** `side`'s connection is gone without a close handshake: its peer is sent 1001. */
  private lost(side: SideState, why: string): void {
    if (this.finished) return;
    if (!side.ending && side.summary.closeReceived === undefined && !side.summary.aborted) {
      side.summary.aborted = true;
      this.closedBy ??= side.role;
      this.options.logger.info(`${side.role} connection lost: ${why}`);
    }
    const peer = this.sideOf(side.role === 'client' ? 'upstream' : 'client');
    if (peer !== undefined) peer.outbox.sendClose(1001, '');
    this.endAll();
  }

  /** A side broke the protocol or a limit: it is sent its close code, its peer 1001. */
  private protocolFailure(side: SideState, err: WebSocketProxyError): void {
    const limit = err.closeCode === 1009;
    this.closedBy ??= 'proxy';
    if (limit) this.options.logger.info(`${side.role} ${err.message}, closing`);
    else {
      this.options.logger.error(`${side.role} protocol error: ${err.message}`);
      this.failure ??= err;
    }
    side.outbox.sendClose(err.closeCode, limit ? 'Payload Too Large' : err.message);
    const peer = this.sideOf(side.role === 'client' ? 'upstream' : 'client');
    if (peer !== undefined) peer.outbox.sendClose(1001, '');
    this.endAll();
  }

  /** `onFrame` or a transform failed: both sides are sent 1011. */
  private userFailure(err: Error): void {
    this.options.logger.error(`proxy failed: ${err.message}`);
    this.failure ??= err;
    this.closedBy ??= 'proxy';
    for (const side of [this.clientSide, this.upstreamSide]) side?.outbox.sendClose(1011, 'Internal Error');
    this.endAll();
  }

  /** Ends both connections, each in the order RFC 6455 section 7.1.1 gives its role. */
  private endAll(): void {
    this.stopLinger();
    for (const side of [this.clientSide, this.upstreamSide]) if (side !== undefined) this.endSide(side);
    this.checkComplete();
  }

  private endSide(side: SideState): void {
    if (side.ending) return;
    side.ending = true;
    side.outbox.dispose();
    if (!side.writable.destroyed && !side.writable.writableEnded) side.writable.end();
    // When nothing reads this side any more (before execute(), or after its stream failed on a
    // protocol error or a limit), its frames (its close reply) and its FIN still flow away, so that a
    // server's TCP close is seen at once rather than after lingeringTimeout.
    if (this.running === undefined) side.readable.resume();
    else if (side.readable.destroyed) side.socket.resume();
    if (!side.socketClosed) {
      // A peer that does not close its end in time is cut off.
      side.killTimer = setTimeout(() => {
        side.killTimer = undefined;
        side.socket.destroy();
      }, this.options.lingeringTimeout * 2);
    }
  }

  private checkComplete(): void {
    const client = this.clientSide;
    const upstream = this.upstreamSide;
    if (this.finished || this.running === undefined || client === undefined || upstream === undefined) return;
    if (!client.socketClosed || !upstream.socketClosed) return;
    this.finished = true;
    this.stopLinger();
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const side of [client, upstream]) {
      if (side.recvTimer !== undefined) clearTimeout(side.recvTimer);
      if (side.killTimer !== undefined) clearTimeout(side.killTimer);
      side.recvTimer = undefined;
      side.killTimer = undefined;
      side.outbox.dispose();
      side.readable.destroy();
      side.forwarder?.destroy();
      if (!side.writable.destroyed) side.writable.destroy();
    }
    this.debug('proxy finished');
    this.settle?.(this.failure);
  }

  private summary(): ProxySummary {
    return {
      closedBy: this.closedBy,
      client: this.clientSide?.summary ?? EMPTY_SUMMARY(),
      upstream: this.upstreamSide?.summary ?? EMPTY_SUMMARY(),
    };
  }

  /** Answers a client whose upstream could not be connected, before any upgrade. */
  private answerUpstreamFailure(socket: Duplex, err: unknown): void {
    if (err instanceof HandshakeError && err.code === 'WSP_ERR_UPSTREAM_REJECTED' && err.statusCode !== undefined) {
      writeHttpResponse(socket, err.statusCode, err.headers ?? {}, err.body);
    } else if (isWebSocketProxyError(err) && err.code === 'WSP_ERR_UPSTREAM_TIMEOUT') {
      writeHttpResponse(socket, 504, { 'content-type': 'text/plain' }, 'Gateway Timeout');
    } else {
      writeHttpResponse(socket, 502, { 'content-type': 'text/plain' }, 'Bad Gateway');
    }
  }

  private armIdleTimer(): void {
    const idleTimeout = this.options.idleTimeout;
    if (idleTimeout === undefined || this.finished) return;
    const wait = Math.max(0, this.lastActivity + idleTimeout - Date.now());
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.finished) return;
      if (Date.now() - this.lastActivity >= idleTimeout) {
        this.options.logger.info(`no frame for ${idleTimeout} ms, closing both sides`);
        this.close(1001, '', 1001, '');
      } else {
        this.armIdleTimer();
      }
    }, wait);
  }

  private armRecvTimer(side: SideState): void {
    const recvTimeout = this.options.recvTimeout;
    if (recvTimeout === undefined || this.finished) return;
    const wait = Math.max(0, side.lastFrameAt + recvTimeout - Date.now());
    side.recvTimer = setTimeout(() => {
      side.recvTimer = undefined;
      if (this.finished || side.ending) return;
      if (Date.now() - side.lastFrameAt >= recvTimeout) {
        // The seed's meaning: a line in the log, never a close.
        this.options.logger.info(`timeout receiving frame from ${side.role}, reopening`);
        side.lastFrameAt = Date.now();
      }
      this.armRecvTimer(side);
    }, wait);
  }

  /** Whether a side was sent a close frame and has not replied (nor gone away). */
  private awaitingReply(): boolean {
    return [this.clientSide, this.upstreamSide].some((side) =>
      side !== undefined && side.summary.closeSent !== undefined && side.summary.closeReceived === undefined && !side.summary.aborted);
  }

  /**
   * A close frame went to a side: its reply is awaited for at most `lingeringTime` in all, and at
   * most `lingeringTimeout` between two frames from it; meanwhile the other direction keeps relaying.
   */
  private startLinger(): void {
    if (this.lingerTimer !== undefined || this.finished) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      this.lingerExpired(`linger expired: no close reply in ${this.options.lingeringTime} ms`);
    }, this.options.lingeringTime);
    this.armLingerIdle();
  }

  private armLingerIdle(): void {
    if (this.lingerIdleTimer !== undefined) clearTimeout(this.lingerIdleTimer);
    this.lingerIdleTimer = setTimeout(() => {
      this.lingerIdleTimer = undefined;
      this.lingerExpired(`linger timeout: no frame in ${this.options.lingeringTimeout} ms while waiting for a close reply`);
    }, this.options.lingeringTimeout);
  }

  private lingerExpired(why: string): void {
    if (this.finished) return;
    this.options.logger.info(why);
    for (const side of [this.clientSide, this.upstreamSide]) side?.outbox.sendClose(1001, '');
    this.endAll();
  }

  private stopLinger(): void {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    if (this.lingerIdleTimer !== undefined) clearTimeout(this.lingerIdleTimer);
    this.lingerTimer = undefined;
    this.lingerIdleTimer = undefined;
  }
}
