/**
 * `ProxyServer`: the upgrade plumbing every deployment of `WebSocketProxy` needs, in one place:
 * routes, hooks answered before any upstream is contacted, connection limits, the set of live
 * connections, metrics, a health check and a graceful drain.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';
import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { HandshakeError, isWebSocketProxyError } from '../errors.js';
import { validateClientRequest, writeHttpResponse } from '../handshake/client.js';
import { defaultLogger } from '../proxy/log.js';
import { type Logger, type ProxyOptions, kObserver, resolveOptions } from '../proxy/options.js';
import type { ProxySummary } from '../proxy/lifecycle.js';
import { WebSocketProxy } from '../proxy/websocket-proxy.js';
import { type Stage, type StageContext, toError } from '../transforms/stage.js';
import { type ServerMetrics, serverMetrics } from './metrics.js';
import { type ServerObserver, chainObservers } from './observers.js';
import { type ProxyServerOptions, type Refusal, type ResolvedServerOptions, type ServerTransforms, resolveServerOptions } from './options.js';
import { type Route, type RouteMatch, matchRoute } from './routes.js';

/** Options of {@link ProxyServer.close}. */
export interface DrainOptions {
  /**
   * Milliseconds to wait for the close handshakes; then whatever is left is destroyed. `Infinity`
   * (or anything past about 24.8 days) waits for as long as the connections take.
   * @defaultValue 10000
   */
  timeout?: number;
  /**
   * Close code sent to clients and upstreams: 1001 (going away) or 1012 (service restart).
   * @defaultValue 1001
   */
  code?: 1001 | 1012;
  /**
   * Close reason sent with it, to both sides.
   * @defaultValue ''
   */
  reason?: string;
}

/** How the connections ended during a drain: what {@link ProxyServer.close} resolves with. */
export interface DrainResult {
  /** Connections open during the drain (those open at the call and handshakes that completed after). */
  connections: number;
  /** Of these, ended by a close handshake on both sides. */
  closed: number;
  /** Of these, ended otherwise before the timeout (a side lost, a close reply that never came...). */
  failed: number;
  /** Of these, still open at the timeout: destroyed. */
  destroyed: number;
  /** Handshakes still under way at the timeout: aborted. */
  handshakesAborted: number;
}

/** A refused upgrade request, as the `'refuse'` event tells it. */
export interface RefusalInfo {
  /** The HTTP status answered, or `'aborted'` when the client left before an answer. */
  outcome: number | 'aborted';
  /** Why, in words. */
  reason: string;
  /** The request. */
  req: IncomingMessage;
  /** The route it matched, if it matched one. */
  route: Route | undefined;
}

/**
 * The events of a {@link ProxyServer}: `'connection'` once a connection is proxied (with the
 * upstream URL it was proxied to), `'close'` when it ended, `'refuse'` when an upgrade request was
 * answered without one, `'error'` for a failure in user code (a hook, a target function, a stage
 * factory) or the server. Without an `'error'` listener those are logged instead: nothing a client,
 * an upstream or a hook does is thrown.
 */
export interface ProxyServerEvents {
  connection: [proxy: WebSocketProxy, req: IncomingMessage, route: Route, upstreamUrl: URL];
  close: [summary: ProxySummary, route: Route, proxy: WebSocketProxy];
  refuse: [info: RefusalInfo];
  error: [error: Error, req: IncomingMessage | undefined];
}

/** A proxied connection's bookkeeping. */
interface Live {
  readonly route: Route;
  readonly name: string;
  readonly ip: string;
  readonly since: number;
  readonly done: Promise<ProxySummary>;
}

/** Where the server is: taking upgrades, draining, or drained. */
type ServerState = 'accepting' | 'draining' | 'closed';

/** The longest delay `setTimeout` takes; a longer drain timeout means no deadline. */
const MAX_TIMER = 2 ** 31 - 1;

/** Node's `headersTimeout` check interval on servers we create, at most (its default is 30 s). */
const MAX_CHECK_INTERVAL = 1000;

/**
 * A WebSocket reverse proxy server. Attach {@link ProxyServer.handleUpgrade} to any HTTP server's
 * `'upgrade'` event (plain `http`, Express, Fastify, Koa...), or let {@link ProxyServer.listen} create
 * one.
 *
 * ```ts
 * const server = createProxyServer({
 *   routes: [{ path: '/chat/:room', target: 'ws://127.0.0.1:9001/rooms/:room' }],
 *   authorize: (req) => req.headers.authorization === 'Bearer secret',
 *   maxConnections: 10_000,
 *   pingInterval: 30_000,
 * });
 * await server.listen(8080);
 * process.on('SIGTERM', () => server.close({ timeout: 10_000 }));
 * ```
 */
export class ProxyServer extends EventEmitter<ProxyServerEvents> {
  private readonly options: ResolvedServerOptions;
  private readonly logger: Logger;
  private readonly metrics: ServerMetrics;
  private readonly live = new Map<WebSocketProxy, Live>();
  /** Connections under way (handshakes and live ones) by client IP. */
  private readonly perIp = new Map<string, number>();
  /** Handshakes under way that made a proxy (a drain closes or aborts them). */
  private readonly pending = new Set<WebSocketProxy>();
  /** Handshakes under way and live connections: what `maxConnections` counts. */
  private slots = 0;
  private state: ServerState = 'accepting';
  private drainCode: [number, string] = [1001, ''];
  private draining: Promise<DrainResult> | undefined;
  private server: Server | undefined;
  /** During a drain: counts a connection in the result and closes it. */
  private trackDrained: ((proxy: WebSocketProxy, live: Live) => void) | undefined;
  private emptyWaiters: (() => void)[] = [];
  /** Stages added by {@link ProxyServer.addTransforms}, run after the configured ones. */
  private addedTransforms: ServerTransforms[] = [];
  /** Observers added by {@link ProxyServer.addObserver}, in order. */
  private observers: ServerObserver[] = [];
  /** The proxy options with the added stages and observers (the configured options when none were added). */
  private proxyOptions: ProxyOptions<WebSocketProxy>;

  /**
   * @param options - see {@link ProxyServerOptions}
   * @throws TypeError for an invalid option, naming it: a route's target that is not a valid URL, a
   *   `WebSocketProxy` option out of range, a stage array instead of a factory...
   */
  constructor(options: ProxyServerOptions) {
    super();
    this.options = resolveServerOptions(options);
    // The proxy's own options are checked now, so that a bad one fails at start, not per connection.
    this.logger = resolveOptions(this.options.proxy, defaultLogger()).logger;
    this.proxyOptions = this.options.proxy;
    this.metrics = serverMetrics(this.options.registry);
    this.handleUpgrade = this.handleUpgrade.bind(this);
    this.handleRequest = this.handleRequest.bind(this);
  }

  /** The live proxied connections. */
  get connections(): WebSocketProxy[] {
    return [...this.live.keys()];
  }

  /**
   * Adds per-connection stages after the configured ones (`transforms` of the options), to the
   * connections opened from now on (an inspector, a recorder...). Each factory is called once per
   * connection and direction, like the options' factories.
   *
   * @param transforms - a factory per direction
   * @returns a function that removes them (from connections opened after it is called)
   * @throws TypeError when a direction's value is not a function
   */
  addTransforms(transforms: ServerTransforms): () => void {
    if (transforms === null || typeof transforms !== 'object') throw new TypeError('transforms must be an object { client?, upstream? }');
    for (const role of ['client', 'upstream'] as const) {
      if (transforms[role] !== undefined && typeof transforms[role] !== 'function') {
        throw new TypeError(`transforms.${role} must be a function (ctx) => stages`);
      }
    }
    const added = { ...transforms };
    this.addedTransforms = [...this.addedTransforms, added];
    this.proxyOptions = this.composeOptions();
    return () => {
      this.addedTransforms = this.addedTransforms.filter((entry) => entry !== added);
      this.proxyOptions = this.composeOptions();
    };
  }

  /**
   * Adds a frame observer to the connections opened from now on: the inspector's hook, cheaper
   * than a stage (see `FrameObserver` in src/proxy/options.ts). Its `connection()` is called with
   * each proxy made while it is added, its `direction()` once per direction of those, as the
   * direction starts.
   *
   * @param observer - the observer
   * @returns a function that removes it (from connections opened after it is called)
   * @throws TypeError when it is not an observer
   * @internal
   */
  addObserver(observer: ServerObserver): () => void {
    if (observer === null || typeof observer !== 'object' || typeof observer.connection !== 'function' || typeof observer.direction !== 'function') {
      throw new TypeError('the observer must be an object { connection(proxy), direction(ctx) }');
    }
    // An entry of its own, so that the same observer added twice is removed once per call.
    const added: ServerObserver = { connection: (proxy) => observer.connection(proxy), direction: (context) => observer.direction(context) };
    this.observers = [...this.observers, added];
    this.proxyOptions = this.composeOptions();
    return () => {
      this.observers = this.observers.filter((entry) => entry !== added);
      this.proxyOptions = this.composeOptions();
    };
  }

  /** The proxy options with the added observers, and the added stages after the configured ones. */
  private composeOptions(): ProxyOptions<WebSocketProxy> {
    const base = this.options.proxy;
    if (this.addedTransforms.length === 0 && this.observers.length === 0) return base;
    const observer = this.observers.length === 0 ? {} : { [kObserver]: chainObservers(this.observers) };
    if (this.addedTransforms.length === 0) return Object.freeze({ ...base, ...observer });
    const added = this.addedTransforms;
    const configured = (base.transforms ?? {}) as ServerTransforms;
    const direction = (role: 'client' | 'upstream') => (context: StageContext): readonly Stage[] => {
      const stages: Stage[] = [...(configured[role]?.(context) ?? [])];
      for (const entry of added) stages.push(...(entry[role]?.(context) ?? []));
      return stages;
    };
    return Object.freeze({ ...base, ...observer, transforms: Object.freeze({ client: direction('client'), upstream: direction('upstream') }) });
  }

  /** Whether new upgrades are taken (false once {@link ProxyServer.close} was called). */
  get accepting(): boolean {
    return this.state === 'accepting';
  }

  /**
   * Handles one upgrade request, for an HTTP server's `'upgrade'` event (it is bound: pass it as it
   * is). The request is matched to a route, checked (`allowedOrigins`, the limits, `authorize`),
   * then proxied to its upstream; a refusal is answered with its HTTP status, without contacting
   * the upstream. It never throws nor rejects: failures are answered and reported as events.
   *
   * @param req - the upgrade request
   * @param socket - its socket
   * @param head - the bytes after the request
   * @returns a promise that settles once the request was answered (upgraded or refused)
   */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer = Buffer.alloc(0)): Promise<void> {
    // Until connect() takes the socket over, a client reset must not be an uncaught 'error'.
    socket.on('error', ignoreError);
    const started = performance.now();
    let match: RouteMatch | undefined;
    let ip: string | undefined;
    let proxy: WebSocketProxy | undefined;
    const refuse = (status: number, reason: string, headers: Refusal['headers'] = {}, body?: string | Buffer): void => {
      writeHttpResponse(socket, status, { 'content-type': 'text/plain; charset=utf-8', ...headers }, body ?? reason);
      this.refused(req, match, status, reason, started);
    };
    try {
      if (this.state !== 'accepting') return refuse(503, 'Server is shutting down', this.retryAfter());
      match = matchRoute(this.options.routes, req);
      if (match === undefined) return refuse(404, 'No route for this path');
      const check = validateClientRequest(req);
      if (!check.ok) return refuse(check.statusCode, check.reason, check.headers);
      const origin = req.headers.origin;
      if (this.options.allowedOrigins !== undefined && !this.options.allowedOrigins(origin, req)) {
        return refuse(403, `Origin ${origin === undefined ? '(none)' : JSON.stringify(origin)} is not allowed`);
      }
      const address = clientIp(socket);
      if (this.slots >= this.options.maxConnections) return refuse(503, 'Too many connections', this.retryAfter());
      if ((this.perIp.get(address) ?? 0) >= this.options.maxConnectionsPerIp) {
        return refuse(503, 'Too many connections from this address', this.retryAfter());
      }
      ip = address;
      this.take(ip);

      const verdict = await this.withinDeadline(this.authorize(req, match.route), 'authorize');
      if (verdict !== true) {
        const refusal = verdict === false ? { status: 403, body: 'Forbidden' } : verdict;
        return refuse(refusal.status, `authorize refused (${refusal.status})`, refusal.headers, refusal.body ?? STATUS_CODES[refusal.status] ?? '');
      }
      const url = await this.withinDeadline(match.url, 'the route target');
      if (this.state !== 'accepting') return refuse(503, 'Server is shutting down', this.retryAfter());
      if (socket.destroyed || socket.readableEnded) {
        socket.destroy();
        this.refused(req, match, 'aborted', 'the client left', started);
        return;
      }

      proxy = new WebSocketProxy(this.proxyOptions);
      for (const observer of this.observers) observer.connection(proxy);
      this.pending.add(proxy);
      try {
        await proxy.connect(url, req, socket, head, this.connectOptions(match.route));
      } catch (err) {
        // connect() answered the client already (or the client is gone).
        this.pending.delete(proxy);
        this.checkEmpty();
        this.refused(req, match, outcomeOf(err), (err as Error).message, started);
        return;
      }
      // Live from here, in the same tick: a drain never sees it in neither set.
      this.pending.delete(proxy);
      this.opened(proxy, req, match, ip, started, url);
      ip = undefined; // the connection holds its slot until it ends
    } catch (err) {
      // User code failed (a hook, a target function, a stage factory) or did not settle in time.
      const error = toError(err);
      this.report(error, req);
      if (!socket.destroyed && socket.writable) refuse(500, 'Internal Server Error');
      else this.refused(req, match, 'aborted', error.message, started);
    } finally {
      if (ip !== undefined) this.release(ip);
    }
  }

  /**
   * Answers the health check at `healthPath`, for a framework's request handler: 200 `ok` while the
   * server accepts connections, 503 `draining` after. Other requests are left alone.
   *
   * @param req - the request
   * @param res - its response
   * @returns whether it answered
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (this.options.healthPath === false || path !== this.options.healthPath) return false;
    const ok = this.state === 'accepting';
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : ok ? 'ok\n' : 'draining\n');
    return true;
  }

  /**
   * Creates an HTTP (or, with `tls`, HTTPS) server for the proxy and starts listening. It answers
   * upgrades, the health check, and 426 to any other request; its `headersTimeout` is
   * `handshakeTimeout` and its `maxHeaderSize` the option's.
   *
   * @param port - the port, 0 for any free one
   * @param host - the address to bind
   * @defaultValue port: 0, host: Node's default (all interfaces)
   * @returns the bound address
   * @throws Error when the server is already listening or closed, or for a listen error (EADDRINUSE)
   */
  async listen(port = 0, host?: string): Promise<AddressInfo> {
    if (this.server !== undefined) throw new Error('the proxy server is already listening');
    if (this.state !== 'accepting') throw new Error('the proxy server is closed');
    const timeout = this.options.handshakeTimeout;
    const settings = {
      maxHeaderSize: this.options.maxHeaderSize,
      headersTimeout: timeout,
      requestTimeout: timeout,
      connectionsCheckingInterval: Math.min(MAX_CHECK_INTERVAL, timeout),
      keepAliveTimeout: 5000,
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      if (this.handleRequest(req, res)) return;
      res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket', connection: 'Upgrade' });
      res.end('Upgrade Required: this server proxies WebSocket connections\n');
    };
    const server = this.options.tls !== undefined
      ? createHttpsServer({ ...this.options.tls, ...settings }, onRequest)
      : createServer(settings, onRequest);
    server.on('upgrade', this.handleUpgrade);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      this.server = undefined;
      throw err;
    });
    server.on('error', (err) => this.report(err, undefined));
    return server.address() as AddressInfo;
  }

  /** The address `listen()` bound, or null before it (or after `close()`). */
  address(): AddressInfo | null {
    const address = this.server?.address();
    return address === undefined || typeof address === 'string' ? null : address;
  }

  /**
   * Drains the server: new upgrades are answered 503 (and the health check too), every live
   * connection is sent a close frame (to the client and to the upstream), handshakes that complete
   * meanwhile are closed at once; after `timeout` whatever is left is destroyed. The server
   * `listen()` created listens until then (answering 503), and is closed last. Calling it again
   * returns the same promise.
   *
   * @param options - see {@link DrainOptions}
   * @returns how the connections ended
   * @throws TypeError for an invalid option (the promise rejects)
   */
  close(options: DrainOptions = {}): Promise<DrainResult> {
    if (this.draining !== undefined) return this.draining;
    const timeout = options.timeout ?? 10_000;
    const code = options.code ?? 1001;
    const reason = options.reason ?? '';
    if (typeof timeout !== 'number' || !(timeout >= 0)) return Promise.reject(new TypeError('options.timeout must be a number >= 0'));
    if (code !== 1001 && code !== 1012) return Promise.reject(new TypeError('options.code must be 1001 or 1012'));
    if (typeof reason !== 'string' || Buffer.byteLength(reason) > 123) {
      return Promise.reject(new TypeError('options.reason must be a string of at most 123 bytes'));
    }
    this.state = 'draining';
    this.drainCode = [code, reason];
    this.draining = this.drain(timeout);
    return this.draining;
  }

  private async drain(timeout: number): Promise<DrainResult> {
    // The server listen() made keeps listening while draining, so that health checks see 503 and
    // new clients get a 503 with Retry-After rather than a refused connection.
    const server = this.server;
    server?.closeIdleConnections();
    const result: DrainResult = { connections: 0, closed: 0, failed: 0, destroyed: 0, handshakesAborted: 0 };
    const ended: Promise<void>[] = [];
    const track = (proxy: WebSocketProxy, live: Live): void => {
      result.connections++;
      ended.push(live.done.then((summary) => {
        if (summary.error?.code === 'WSP_ERR_DESTROYED') return;
        if (summary.error === undefined) result.closed++;
        else result.failed++;
      }));
      this.closeOne(proxy);
    };
    for (const [proxy, live] of this.live) track(proxy, live);
    // Handshakes that complete during the drain are closed as they open (see opened()).
    this.trackDrained = track;
    let timer: NodeJS.Timeout | undefined;
    // Past setTimeout's range (2^31 - 1 ms, about 24.8 days) Node would fire at once: no deadline.
    const expired = new Promise<true>((resolve) => {
      if (timeout <= MAX_TIMER) timer = setTimeout(resolve, timeout, true);
    });
    const timedOut = await Promise.race([this.whenEmpty().then(() => false), expired]);
    clearTimeout(timer);
    this.trackDrained = undefined;
    if (timedOut) {
      for (const proxy of this.pending) {
        result.handshakesAborted++;
        proxy.destroy();
      }
      for (const proxy of this.live.keys()) {
        result.destroyed++;
        proxy.destroy();
      }
      await this.whenEmpty();
    }
    await Promise.all(ended);
    this.state = 'closed';
    if (server !== undefined) {
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await serverClosed;
      this.server = undefined;
    }
    return result;
  }

  /** Resolves once no connection is live and no handshake under way. */
  private whenEmpty(): Promise<void> {
    if (this.live.size === 0 && this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  private checkEmpty(): void {
    if (this.live.size > 0 || this.pending.size > 0) return;
    const waiters = this.emptyWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }

  private closeOne(proxy: WebSocketProxy): void {
    try {
      const [code, reason] = this.drainCode;
      proxy.close(code, reason, code, reason);
    } catch (err) {
      this.report(toError(err), undefined);
    }
  }

  /** A connection was proxied: it is live until `execute()` settles. */
  private opened(proxy: WebSocketProxy, req: IncomingMessage, match: RouteMatch, ip: string, started: number, url: URL): void {
    const now = performance.now();
    this.metrics.opened(match.name, (now - started) / 1000);
    const done = proxy.execute();
    const live: Live = { route: match.route, name: match.name, ip, since: now, done };
    this.live.set(proxy, live);
    done.then((summary) => this.closed(proxy, live, summary), (err: unknown) => this.closed(proxy, live, undefined, err));
    this.emitSafely('connection', proxy, req, match.route, url);
    if (this.trackDrained !== undefined) this.trackDrained(proxy, live);
    else if (this.state !== 'accepting') this.closeOne(proxy);
  }

  private closed(proxy: WebSocketProxy, live: Live, summary: ProxySummary | undefined, err?: unknown): void {
    this.live.delete(proxy);
    this.release(live.ip);
    this.checkEmpty();
    this.metrics.closed(live.name, (performance.now() - live.since) / 1000);
    if (summary !== undefined) this.emitSafely('close', summary, live.route, proxy);
    else this.report(toError(err), undefined);
  }

  private refused(req: IncomingMessage, match: RouteMatch | undefined, outcome: number | 'aborted', reason: string, started: number): void {
    this.metrics.refused(match?.name ?? '', String(outcome), (performance.now() - started) / 1000);
    this.emitSafely('refuse', { outcome, reason, req, route: match?.route });
  }

  private take(ip: string): void {
    this.slots++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
  }

  private release(ip: string): void {
    this.slots--;
    const left = (this.perIp.get(ip) ?? 1) - 1;
    if (left === 0) this.perIp.delete(ip);
    else this.perIp.set(ip, left);
  }

  private retryAfter(): Record<string, string> {
    return { 'retry-after': String(this.options.retryAfter) };
  }

  private async authorize(req: IncomingMessage, route: Route): Promise<true | false | Refusal> {
    const hook = this.options.authorize;
    if (hook === undefined) return true;
    const verdict = await hook(req, route);
    if (verdict === true || verdict === false) return verdict;
    if (verdict !== null && typeof verdict === 'object' && Number.isInteger(verdict.status) && verdict.status >= 400 && verdict.status <= 599) {
      return verdict;
    }
    throw new TypeError(`authorize must answer true, false or { status (400-599), headers?, body? }, not ${JSON.stringify(verdict)}`);
  }

  /** A hook's promise, or a rejection once `handshakeTimeout` has passed. */
  private withinDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${this.options.handshakeTimeout} ms`)), this.options.handshakeTimeout);
    });
    return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
  }

  /** The upstream handshake's options for a route: the headers to set and remove, TLS. */
  private connectOptions(route: Route) {
    const headers: Record<string, string> = {};
    const exclude: string[] = [];
    for (const source of [this.options.headers, route.headers ?? {}]) {
      for (const [name, value] of Object.entries(source)) {
        const lower = name.toLowerCase();
        if (value === null) {
          exclude.push(lower);
          delete headers[lower];
        } else {
          headers[lower] = value;
        }
      }
    }
    const { xForwarded, maxForwardedHeaders: maxHeaders, maxForwardedHeaderBytes: maxHeaderBytes } = this.options;
    return { ...this.options.upstreamTls, headers, forwarded: { xForwarded, exclude, maxHeaders, maxHeaderBytes } };
  }

  /** Reports an error: to `'error'` listeners, or to the logger when there are none. */
  private report(error: Error, req: IncomingMessage | undefined): void {
    if (this.listenerCount('error') > 0) this.emitSafely('error', error, req);
    else this.logger.error(`proxy server: ${error.message}`);
  }

  /** Emits an event; a listener that throws is logged, never thrown into the connection's code. */
  private emitSafely<K extends keyof ProxyServerEvents>(event: K, ...args: ProxyServerEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: ProxyServerEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.logger.error(`proxy server: a '${String(event)}' listener threw: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

/**
 * Creates a {@link ProxyServer}.
 *
 * @param options - see {@link ProxyServerOptions}
 * @throws TypeError for an invalid option, naming it
 */
export function createProxyServer(options: ProxyServerOptions): ProxyServer {
  return new ProxyServer(options);
}

function ignoreError(): void {}

/** The client's IP address, IPv4-mapped IPv6 addresses as IPv4. */
function clientIp(socket: Duplex): string {
  const address = (socket as Partial<{ remoteAddress: string }>).remoteAddress ?? '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** What connect() answered when it failed: the HTTP status, or `'aborted'`. */
function outcomeOf(err: unknown): number | 'aborted' {
  if (err instanceof HandshakeError) {
    if (err.statusCode !== undefined) return err.statusCode;
    if (err.code === 'WSP_ERR_UPSTREAM_TIMEOUT') return 504;
    if (err.code === 'WSP_ERR_CLIENT_HANDSHAKE' || (err.code as string) === 'WSP_ERR_DESTROYED') return 'aborted';
    return 502;
  }
  return isWebSocketProxyError(err) && err.code === 'WSP_ERR_UPSTREAM_TIMEOUT' ? 504 : 502;
}
