/**
 * `WebSocketProxy`: one proxied WebSocket connection, a camelCase port of lua-resty-websocket-proxy
 * with its evolved close handshake (lingering, 1001 on abnormal ends) and its flaws fixed. The
 * handshakes are here; the connection's life after them is `Lifecycle` (`lifecycle.ts`), each side a
 * `Side` (`side.ts`).
 *
 * @packageDocumentation
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HandshakeError, WebSocketProxyError } from '../errors.js';
import type { Frame } from '../frame.js';
import { type AcceptedClient, acceptClient, validateClientRequest } from '../handshake/client.js';
import { type ForwardedHeadersOptions, forwardedHeaders } from '../handshake/headers.js';
import { type UpstreamConnection, type UpstreamOptions, connectUpstream } from '../handshake/upstream.js';
import type { DeflateParameters, PerMessageDeflateSettings, ResolvedDeflateSettings } from '../protocol/deflate.js';
import { wirePayload } from '../protocol/encode.js';
import type { FrameReadable } from '../streams/frame-readable.js';
import type { FrameWritable } from '../streams/frame-writable.js';
import type { Stage, StageContext } from '../transforms/stage.js';
import { answerUpstreamFailure, loggableUrl, relayableHeaders } from './handshake.js';
import { Lifecycle, type ProxySummary } from './lifecycle.js';
import { defaultLogger } from './log.js';
import { type ProxyOptions, type ProxyRole, type ResolvedProxyOptions, type StageList, checkStageArray, resolveOptions } from './options.js';
import type { Side } from './side.js';

export type { CloseInfo, SideSummary, SideState } from './side.js';
export type { ProxySummary, Ending, EndingRule, Reply } from './lifecycle.js';
export { ENDINGS } from './lifecycle.js';

/**
 * The two streams of one side, for users who build their own pipelines instead of calling
 * `execute()`. Once `execute()` runs, the proxy is their consumer: on a direction that no user
 * code reads (no `aggregateFragments`, `onFrame` or stage), the reader hands its frames straight to
 * the other side (see "The direct path" in docs/architecture.md) and none enters its queue, so
 * listening to `'data'` there sees nothing; use a stage or `onFrame` to see frames.
 */
export interface ProxySide {
  /** Frames from this side. */
  readable: FrameReadable;
  /** Frames to this side. */
  writable: FrameWritable;
}

/** Options of `connect()` and `connectUpstream()`: those of the upstream handshake. */
export interface ConnectOptions extends Omit<UpstreamOptions, 'signal'> {
  /**
   * How `connect()` forwards the client's request headers: whether to add `X-Forwarded-*`, which
   * headers not to forward (`exclude`), and how many of them at most (`maxHeaders`, `maxHeaderBytes`:
   * past them the rest are left out and a warning is logged; the handshake's own headers always go,
   * first). Ignored by `connectUpstream()`.
   * @defaultValue `{ xForwarded: true, exclude: [], maxHeaders: 100, maxHeaderBytes: 8192 }`
   */
  forwarded?: ForwardedHeadersOptions;
}

/** Which proxy each stage instance belongs to: a stage carries one connection's frames. */
const stageOwners = new WeakMap<object, WebSocketProxy>();

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
  private readonly options: ResolvedProxyOptions<WebSocketProxy>;
  private readonly lifecycle: Lifecycle;
  private upstreamProtocol: string | undefined;
  private upstreamHeaders: IncomingHttpHeaders | undefined;
  private upstreamUrl: string | undefined;
  /** What the upstream hop negotiated for permessage-deflate, if anything. */
  private upstreamDeflate: DeflateParameters | undefined;
  private running: Promise<ProxySummary> | undefined;
  /** Aborts the upstream handshake under way, for `destroy()`. */
  private upstreamAbort: AbortController | undefined;
  /** The client's socket once a handshake was given it, for `destroy()` before it is attached. */
  private clientSocket: Duplex | undefined;

  /**
   * @param options - see {@link ProxyOptions}
   * @throws TypeError for an option of the wrong type or out of range, naming it
   *   (e.g. "options.onFrame must be a function"), or for a stage instance already used by another
   *   proxy
   */
  constructor(options?: ProxyOptions<WebSocketProxy>) {
    this.options = optionsFor(options);
    const id = Lifecycle.nextId();
    const stages = {
      client: this.claimStages(this.options.transforms.client, 'client', id),
      upstream: this.claimStages(this.options.transforms.upstream, 'upstream', id),
    };
    this.lifecycle = new Lifecycle(id, this, this.options, stages);
  }

  /** The connection's id, unique in this process (also `ctx.id` of its stages). */
  get id(): string {
    return this.lifecycle.id;
  }

  /** The client side's streams, once its handshake completed. */
  get client(): ProxySide | undefined {
    return sideStreams(this.lifecycle.side('client'));
  }

  /** The upstream side's streams, once its handshake completed. */
  get upstream(): ProxySide | undefined {
    return sideStreams(this.lifecycle.side('upstream'));
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
   *   or `WSP_ERR_UPSTREAM_HANDSHAKE`; `WSP_ERR_DESTROYED` when {@link WebSocketProxy.destroy} was
   *   called before or during the handshake (it is aborted)
   */
  async connectUpstream(url: string | URL, options?: ConnectOptions): Promise<{ protocol: string | undefined; headers: IncomingHttpHeaders }> {
    if (this.lifecycle.destroyed) throw destroyedError('connectUpstream() after destroy()');
    if (this.lifecycle.attached('upstream')) {
      this.options.logger.warn(`connection with upstream at "${this.upstreamUrl}" already established`);
      return { protocol: this.upstreamProtocol, headers: this.upstreamHeaders ?? {} };
    }
    return this.openUpstream(url, options ?? {}, new AbortController(), true);
  }

  /**
   * `connectUpstream()`, aborted by `abort` (which `connect()` also aborts when its client leaves) or
   * by `destroy()`; permessage-deflate is offered when `offerDeflate` and the option allow.
   */
  private async openUpstream(
    url: string | URL,
    options: UpstreamOptions,
    abort: AbortController,
    offerDeflate: boolean,
  ): Promise<{ protocol: string | undefined; headers: IncomingHttpHeaders }> {
    const shown = loggableUrl(url);
    this.debug(`connecting to "${shown}" upstream`);
    this.upstreamAbort = abort;
    let connection: UpstreamConnection;
    try {
      connection = await connectUpstream(url, {
        timeout: this.options.connectTimeout,
        ...options,
        signal: abort.signal,
        perMessageDeflate: offerDeflate ? plainSettings(this.options.perMessageDeflate) : false,
      });
    } catch (err) {
      if (this.lifecycle.destroyed) throw destroyedError('during the upstream handshake', err);
      throw err;
    } finally {
      this.upstreamAbort = undefined;
    }
    this.upstreamUrl = shown;
    this.upstreamProtocol = connection.protocol;
    this.upstreamHeaders = connection.headers;
    this.upstreamDeflate = connection.perMessageDeflate;
    this.lifecycle.attach('upstream', connection.socket, connection.head, connection.perMessageDeflate);
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
   *   destroyed); `WSP_ERR_DESTROYED` when {@link WebSocketProxy.destroy} was called before or during
   *   the handshake (the socket is destroyed, nothing more is written to it)
   */
  async connectClient(req: IncomingMessage, socket: Duplex, head: Buffer = Buffer.alloc(0)): Promise<void> {
    if (this.lifecycle.destroyed) {
      socket.destroy();
      throw destroyedError('connectClient() after destroy()');
    }
    this.clientSocket = socket;
    if (this.lifecycle.attached('client')) {
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
    let accepted: AcceptedClient;
    try {
      const deflate = plainSettings(this.options.perMessageDeflate);
      accepted = await acceptClient(req, socket, head, {
        protocol: this.upstreamProtocol,
        headers: this.upstreamHeaders === undefined ? undefined : relayableHeaders(this.upstreamHeaders),
        perMessageDeflate: deflate,
        // The upstream's parameters, where the client's offer allows, let compressed frames pass
        // through both hops untouched: worth it only on a direction no user code reads.
        ...(deflate !== false && this.upstreamDeflate !== undefined && this.lifecycle.passThroughPossible
          ? { perMessageDeflateMatch: this.upstreamDeflate }
          : {}),
      });
    } catch (err) {
      if (this.lifecycle.destroyed) throw destroyedError('during the client handshake', err);
      throw err;
    }
    // Throws WSP_ERR_DESTROYED (and destroys the socket) if destroy() came while the 101 was written.
    this.lifecycle.attach('client', accepted.socket, accepted.head, accepted.perMessageDeflate);
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
   * @throws HandshakeError from either handshake, after the client was answered; `WSP_ERR_DESTROYED`
   *   when {@link WebSocketProxy.destroy} was called before or during the handshakes: the upstream
   *   handshake is aborted and the client's socket destroyed without an answer. After a failure
   *   the proxy's stages are destroyed: it cannot run
   */
  async connect(url: string | URL, req: IncomingMessage, socket: Duplex, head: Buffer = Buffer.alloc(0), options?: ConnectOptions): Promise<void> {
    if (this.lifecycle.destroyed) {
      socket.destroy();
      throw destroyedError('connect() after destroy()');
    }
    this.clientSocket = socket;
    if (!this.lifecycle.attached('upstream')) {
      // A bad request is answered (400 / 426) before any upstream is bothered with it.
      // Its Sec-WebSocket-Extensions too, when compression will be answered: a malformed offer is
      // 400 here rather than after the upstream handshake.
      const check = validateClientRequest(req, { perMessageDeflate: plainSettings(this.options.perMessageDeflate) });
      if (!this.lifecycle.attached('client') && !check.ok) await this.connectClient(req, socket, head);
      const forwarded = forwardedHeaders(req, options?.forwarded);
      if (forwarded.dropped.length > 0) {
        const shown = forwarded.dropped.slice(0, 5).join(', ');
        this.options.logger.warn(`not forwarding ${forwarded.dropped.length} client headers past the limits (maxHeaders, maxHeaderBytes): ${shown}${forwarded.dropped.length > 5 ? ', ...' : ''}`);
      }
      // While the upstream is being connected nothing listens on the client's socket (Node's http
      // server let go of it at the upgrade): a reset must not become an uncaught 'error', and a
      // client that leaves ends the wait for its upstream.
      if (socket.listenerCount('error') === 0) socket.on('error', ignoreError);
      const abort = new AbortController();
      const clientGone = (): void => abort.abort(new HandshakeError('WSP_ERR_CLIENT_HANDSHAKE', 'the client closed the connection'));
      socket.once('close', clientGone);
      socket.once('end', clientGone);
      // A paused socket would not notice the client's reset or FIN: it is read meanwhile, and what a
      // client sends too early (it should wait for the 101) is kept, up to MAX_EARLY_BYTES.
      const early: Buffer[] = [];
      let earlyBytes = 0;
      const keepEarly = (chunk: Buffer): void => {
        early.push(chunk);
        earlyBytes += chunk.length;
        if (earlyBytes >= MAX_EARLY_BYTES) socket.pause();
      };
      socket.on('data', keepEarly);
      socket.resume();
      const { forwarded: _forwarding, ...handshake } = options ?? {};
      const upstreamOptions: UpstreamOptions = { ...handshake, headers: { ...forwarded.headers, ...options?.headers } };
      if (options?.protocols === undefined && forwarded.protocols.length > 0) upstreamOptions.protocols = forwarded.protocols;
      try {
        // Compression is asked of the upstream only for a client that can take it: otherwise the
        // proxy would inflate every compressed message of the upstream for nothing.
        await this.openUpstream(url, upstreamOptions, abort, offersDeflate(req));
      } catch (err) {
        // After destroy() the client is owed nothing: its socket was destroyed.
        if (!this.lifecycle.destroyed) answerUpstreamFailure(socket, err);
        this.lifecycle.releaseStages();
        throw err;
      } finally {
        socket.off('close', clientGone);
        socket.off('end', clientGone);
        socket.off('data', keepEarly);
        socket.pause();
        if (early.length > 0) head = Buffer.concat([head, ...early]);
      }
    }
    try {
      await this.connectClient(req, socket, head);
    } catch (err) {
      this.lifecycle.releaseStages();
      if (this.lifecycle.destroyed) throw err;
      this.options.logger.info(`client handshake failed, closing the upstream: ${(err as Error).message}`);
      const upstream = this.lifecycle.side('upstream');
      if (upstream !== undefined) {
        upstream.outbox.sendClose(1001, '');
        this.lifecycle.abandon(upstream);
      }
      throw err;
    }
  }

  /**
   * Runs both directions until both connections are closed. Whatever the peers, the stages or
   * `onFrame` do, it settles: each connection ends within `lingeringTime + lingeringTimeout` of the
   * first close frame or connection loss, both sockets are destroyed and no timer is left.
   *
   * @returns a summary: who closed first, the coded `error` that ended the connection (undefined for
   *   a clean close), the close frames seen and sent on each side, frames and bytes per direction. It
   *   resolves in every case: a protocol violation, a limit, a stage's policy close, a throw in user
   *   code, a lost connection, a timeout or `destroy()` is told by `summary.error`. After `destroy()`
   *   (also one before `execute()`, even before the handshakes) it resolves, once the sockets the
   *   proxy held are closed, with `error` `WSP_ERR_DESTROYED` and `closedBy` `'proxy'`.
   * @throws WebSocketProxyError `WSP_ERR_NOT_CONNECTED` (a rejection) before both handshakes
   *   completed, unless the proxy was destroyed
   */
  execute(): Promise<ProxySummary> {
    if (this.running !== undefined) return this.running;
    if (this.lifecycle.destroyed) {
      this.running = this.lifecycle.run();
      return this.running;
    }
    if (!this.lifecycle.attached('client')) {
      return Promise.reject(new WebSocketProxyError('WSP_ERR_NOT_CONNECTED', 'client handshake not complete'));
    }
    if (!this.lifecycle.attached('upstream')) {
      return Promise.reject(new WebSocketProxyError('WSP_ERR_NOT_CONNECTED', 'upstream connection not established'));
    }
    this.running = this.lifecycle.run();
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
    this.lifecycle.close({ client: [clientCode, clientReason], upstream: [upstreamCode, upstreamReason] });
  }

  /**
   * Ends the connection at once, with no close handshake: both sockets are destroyed now, nothing
   * more is written to either (e.g. a server drain whose timeout expired after `close()`). Works in
   * every phase:
   *
   * - after `execute()`: it resolves promptly; `summary.error` is `WSP_ERR_DESTROYED` and `closedBy`
   *   `'proxy'` unless already set (also when only the TCP close was left after a close handshake);
   *   each side whose close handshake was not complete is `aborted`;
   * - before `execute()`, also while `connect()`, `connectUpstream()` or `connectClient()` runs: the
   *   upstream handshake is aborted, the client's socket destroyed (not answered), and the handshake
   *   methods reject with `HandshakeError` `WSP_ERR_DESTROYED`, now and later; a later `execute()`
   *   resolves with the destroyed summary, as above.
   *
   * Idempotent; never throws.
   */
  destroy(): void {
    if (this.lifecycle.destroyed) return;
    const ended = this.lifecycle.destroy();
    this.upstreamAbort?.abort(destroyedError('during the upstream handshake'));
    this.clientSocket?.destroy();
    if (ended) this.options.logger.info('connection destroyed: both sockets cut without a close handshake');
  }

  /**
   * Sends a frame of the proxy's own to a side, in order with forwarded frames. A data message
   * (whole: `fin: true`) waits while a forwarded fragmented message to that side is open; control
   * frames go at once. Like a stream's `write()`, it answers whether to go on: `false` once that
   * side is full (its socket, or injected messages waiting), then {@link WebSocketProxy.drain} tells
   * when to go on. Injected frames that wait are bounded by `maxSendQueueSize` bytes per side.
   *
   * @param role - the side to send to
   * @param frame - the frame, e.g. `textFrame('hello')` or `pingFrame()`
   * @returns false when the caller should wait for `drain(role)` before sending more
   * @throws WebSocketProxyError `WSP_ERR_NOT_CONNECTED`, `WSP_ERR_WRITE_AFTER_CLOSE` (a close frame
   *   was sent to that side), `WSP_ERR_INVALID_FRAME` (e.g. text that is not UTF-8) or
   *   `WSP_ERR_SEND_QUEUE_FULL` (nothing was queued)
   */
  send(role: ProxyRole, frame: Frame): boolean {
    const side = this.sideFor(role);
    if (side.ending) throw new WebSocketProxyError('WSP_ERR_WRITE_AFTER_CLOSE', `the ${role} connection is ending`);
    if (frame.type === 'close') {
      // Checked first: a close frame the writer refuses would fail that side's writer for good.
      wirePayload(frame);
      if (!side.outbox.sendClose(frame.code, frame.payload)) {
        throw new WebSocketProxyError('WSP_ERR_WRITE_AFTER_CLOSE', `a close frame was sent to the ${role} already`);
      }
      return !side.outbox.full;
    }
    return side.outbox.inject(frame);
  }

  /**
   * Resolves once frames may be sent to a side again (after `send()` returned false), or once that
   * side's connection is done (a later `send()` then throws). Never rejects.
   *
   * @param role - the side
   * @throws WebSocketProxyError `WSP_ERR_NOT_CONNECTED` before that side's handshake
   */
  drain(role: ProxyRole): Promise<void> {
    return this.sideFor(role).outbox.whenDrained();
  }

  private sideFor(role: ProxyRole): Side {
    const side = role === 'client' || role === 'upstream' ? this.lifecycle.side(role) : undefined;
    if (side === undefined) throw new WebSocketProxyError('WSP_ERR_NOT_CONNECTED', `no ${String(role)} connection`);
    return side;
  }

  private debug(message: string): void {
    if (this.options.debug) this.options.logger.debug(message);
  }

  /** This proxy's stages of one direction: the array given, or what the function returns. */
  private claimStages(list: StageList, role: ProxyRole, id: string): readonly Stage[] {
    const name = `options.transforms.${role}`;
    let stages: readonly Stage[];
    if (typeof list === 'function') {
      const context: StageContext = { role, id, proxy: this };
      stages = list(context);
      checkStageArray(stages, `${name}(ctx)`);
    } else {
      stages = list;
    }
    stages.forEach((stage, index) => {
      const owner = stageOwners.get(stage);
      if (owner !== undefined) {
        throw new TypeError(owner === this
          ? `${name}[${index}] is used twice in this proxy; a stage instance carries the frames of one direction`
          : `${name}[${index}] is already used by another proxy; a stage instance carries one connection's frames: ` +
            'give a function (ctx) => [stages] to make stages per connection');
      }
      stageOwners.set(stage, this);
    });
    return stages;
  }
}

function ignoreError(): void {}

/** The settings as `connectUpstream`/`acceptClient` take them (they resolve them again), or false. */
function plainSettings(resolved: ResolvedDeflateSettings | false): PerMessageDeflateSettings | false {
  if (resolved === false) return false;
  const { limiter: _limiter, ...settings } = resolved;
  return settings;
}

/** Whether a client's request offers permessage-deflate (its parameters are checked later). */
function offersDeflate(req: IncomingMessage): boolean {
  const header = req.headers['sec-websocket-extensions'];
  return header !== undefined && /(^|,)\s*permessage-deflate\s*(;|,|$)/i.test(header);
}

/** The error of a handshake cut short by `destroy()`, keeping what it failed with as the cause. */
function destroyedError(detail: string, cause?: unknown): HandshakeError {
  if (cause instanceof HandshakeError && cause.code === 'WSP_ERR_DESTROYED') return cause;
  return new HandshakeError('WSP_ERR_DESTROYED', detail, cause === undefined ? undefined : { cause });
}

/** Bytes a client may send before its 101 that `connect()` keeps (it stops reading past them). */
const MAX_EARLY_BYTES = 64 * 1024;

/** Resolved options shared by the proxies made from the same frozen options (or from none). */
const resolvedOptions = new WeakMap<object, ResolvedProxyOptions<WebSocketProxy>>();
let defaultOptions: ResolvedProxyOptions<WebSocketProxy> | undefined;

/**
 * The resolved options of a new proxy. Options that cannot change (none, or a frozen object whose
 * `transforms` is frozen too) are resolved once and shared: the proxies of a server cost no copy of
 * them each.
 */
function optionsFor(input: ProxyOptions<WebSocketProxy> | undefined): ResolvedProxyOptions<WebSocketProxy> {
  if (input === undefined) return (defaultOptions ??= resolveOptions(undefined, defaultLogger()));
  const transforms = (input as { transforms?: unknown }).transforms;
  if (input === null || typeof input !== 'object' || !Object.isFrozen(input) || (typeof transforms === 'object' && transforms !== null && !Object.isFrozen(transforms))) {
    return resolveOptions(input, defaultLogger());
  }
  let resolved = resolvedOptions.get(input);
  if (resolved === undefined) {
    resolved = resolveOptions(input, defaultLogger());
    resolvedOptions.set(input, resolved);
  }
  return resolved;
}

function sideStreams(side: Side | undefined): ProxySide | undefined {
  return side === undefined ? undefined : { readable: side.readable, writable: side.writable };
}
