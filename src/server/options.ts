/**
 * Options of `createProxyServer()`: their types, defaults and validation.
 *
 * @packageDocumentation
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { SecureContextOptions } from 'node:tls';
import type { ProxyOptions } from '../proxy/options.js';
import type { WebSocketProxy } from '../proxy/websocket-proxy.js';
import type { Stage, StageContext } from '../transforms/stage.js';
import type { MetricsRegistry } from '../transforms/metrics.js';
import { type CompiledRoute, type Route, type RouteTarget, checkHeaders, compileRoute, compileRoutes } from './routes.js';
import { DEFAULT_MAX_FORWARDED_HEADERS, DEFAULT_MAX_FORWARDED_HEADER_BYTES } from '../handshake/headers.js';

/** An HTTP answer to an upgrade request that is refused: see {@link ProxyServerOptions.authorize}. */
export interface Refusal {
  /** The status, 400 to 599. */
  status: number;
  /**
   * Response headers (e.g. `WWW-Authenticate`).
   * @defaultValue {}
   */
  headers?: OutgoingHttpHeaders;
  /**
   * Response body.
   * @defaultValue the status's reason phrase
   */
  body?: string | Buffer;
}

/** What `authorize` answers: let the request through, refuse it with 403, or refuse it so. */
export type AuthorizeResult = boolean | Refusal;

/** Stage factories of one direction, called once per connection: `(ctx) => stages`. */
export type StageFactory = (context: StageContext) => readonly Stage[];

/** Per-connection stages of a server: factories only, since a stage instance serves one connection. */
export interface ServerTransforms {
  /** Stages for frames from the client. */
  client?: StageFactory;
  /** Stages for frames from the upstream. */
  upstream?: StageFactory;
}

/** TLS options of the upstream handshakes (for `wss:` targets). */
export interface UpstreamTlsOptions {
  /** See `UpstreamOptions.ca`. @defaultValue Node's root certificates */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** See `UpstreamOptions.cert`. @defaultValue none */
  cert?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** See `UpstreamOptions.key`. @defaultValue none */
  key?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** See `UpstreamOptions.rejectUnauthorized`. @defaultValue true */
  rejectUnauthorized?: boolean;
}

/**
 * Options of {@link createProxyServer}: the routes, the hooks run before an upstream is contacted,
 * the limits, and every `WebSocketProxy` option for each connection (its stages as factories).
 */
export interface ProxyServerOptions extends Omit<ProxyOptions<WebSocketProxy>, 'transforms'> {
  /**
   * The routes, tried in order; the first that matches the request's host and path wins, and a
   * request that matches none is answered 404.
   * @defaultValue `[{ path: '/', target }]` when `target` is given
   */
  routes?: readonly Route[];
  /**
   * One upstream for every path: shorthand for `routes: [{ path: '/', target }]`. Give `target` or
   * `routes`, not both.
   * @defaultValue none
   */
  target?: RouteTarget;
  /**
   * Per-connection stages: a factory per direction, called once for each connection.
   * @defaultValue none
   */
  transforms?: ServerTransforms;
  /**
   * Called for each upgrade request that matched a route, before any upstream is contacted: `true`
   * lets it through, `false` answers 403, a {@link Refusal} answers that. A throw or a rejection is
   * answered 500 (and reported as `'error'`); so is a hook that has not settled within
   * `handshakeTimeout`.
   * @defaultValue every request is let through
   */
  authorize?: (req: IncomingMessage, route: Route) => AuthorizeResult | Promise<AuthorizeResult>;
  /**
   * Which `Origin`s may connect: a list of origins (`https://app.example.com`, compared
   * case-insensitively, `*` for any) or a predicate given the request's `Origin` (undefined when it
   * has none) and the request. Any other request is answered 403. With a list, a request without
   * `Origin` (not a browser) is refused unless the list holds `*`.
   * @defaultValue any origin, also none (the upstream sees the forwarded `Origin` and can decide)
   */
  allowedOrigins?: readonly string[] | ((origin: string | undefined, req: IncomingMessage) => boolean);
  /**
   * Request headers for every upstream handshake: a string sets one, `null` removes a forwarded one.
   * A route's `headers` apply after these.
   * @defaultValue {}
   */
  headers?: Readonly<Record<string, string | null>>;
  /**
   * Whether to add `X-Forwarded-For`, `-Proto` and `-Host` to upstream requests.
   * @defaultValue true
   */
  xForwarded?: boolean;
  /**
   * Most client request headers forwarded to an upstream; the rest are left out (and a warning is
   * logged), so that a client's header flood cannot push the handshake's own headers past the
   * upstream's limits (they always go, first). See `ForwardedHeadersOptions.maxHeaders`.
   * @defaultValue 100
   */
  maxForwardedHeaders?: number;
  /**
   * Most bytes of client request headers forwarded to an upstream (name, value and 4 bytes a line).
   * See `ForwardedHeadersOptions.maxHeaderBytes`.
   * @defaultValue 8192
   */
  maxForwardedHeaderBytes?: number;
  /**
   * TLS options of the upstream handshakes.
   * @defaultValue Node's defaults
   */
  upstreamTls?: UpstreamTlsOptions;
  /**
   * Most connections at once, counting handshakes under way; more are answered 503 with
   * `Retry-After`.
   * @defaultValue Infinity
   */
  maxConnections?: number;
  /**
   * Most connections at once from one client IP address (the socket's peer, not `X-Forwarded-For`);
   * more are answered 503 with `Retry-After`.
   * @defaultValue Infinity
   */
  maxConnectionsPerIp?: number;
  /**
   * Seconds in the `Retry-After` header of a 503.
   * @defaultValue 5
   */
  retryAfter?: number;
  /**
   * Milliseconds a client has to send its whole upgrade request on the servers the proxy creates
   * (`listen()`): Node's `headersTimeout`, checked every second; a client still sending its headers
   * then is dropped (slowloris). It also bounds the hooks (`authorize`, a target function) of each
   * upgrade request.
   * @defaultValue 10000
   */
  handshakeTimeout?: number;
  /**
   * Largest request head, in bytes, on the servers the proxy creates (Node's `maxHeaderSize`).
   * @defaultValue 16384
   */
  maxHeaderSize?: number;
  /**
   * TLS options (`cert`, `key`, ...) of the server `listen()` creates: it then serves `wss:`.
   * @defaultValue none (plain `ws:`)
   */
  tls?: SecureContextOptions & { cert: string | Buffer | Array<string | Buffer>; key: string | Buffer | Array<string | Buffer> };
  /**
   * The path answered by the health check on the server `listen()` creates (and by
   * `handleRequest()`): 200 while the server accepts connections, 503 while it drains. `false` turns
   * it off.
   * @defaultValue '/healthz'
   */
  healthPath?: string | false;
  /**
   * A prom-client `Registry` for the server's metrics (`ws_proxy_connections_active{route}`,
   * `ws_proxy_connections_total{route,outcome}`, `ws_proxy_handshake_duration_seconds`,
   * `ws_proxy_connection_duration_seconds`). prom-client is loaded only when one is given.
   * @defaultValue none (no metrics)
   */
  registry?: MetricsRegistry;
}

/** The options after checking. @internal */
export interface ResolvedServerOptions {
  routes: CompiledRoute[];
  proxy: ProxyOptions<WebSocketProxy>;
  authorize: ProxyServerOptions['authorize'];
  allowedOrigins: ((origin: string | undefined, req: IncomingMessage) => boolean) | undefined;
  headers: Readonly<Record<string, string | null>>;
  xForwarded: boolean;
  maxForwardedHeaders: number;
  maxForwardedHeaderBytes: number;
  upstreamTls: UpstreamTlsOptions;
  maxConnections: number;
  maxConnectionsPerIp: number;
  retryAfter: number;
  handshakeTimeout: number;
  maxHeaderSize: number;
  tls: ProxyServerOptions['tls'];
  healthPath: string | false;
  registry: MetricsRegistry | undefined;
}

/** Default {@link ProxyServerOptions.handshakeTimeout}. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

/** Every `WebSocketProxy` option, so that a misspelt option is an error, not silently ignored. */
const PROXY_KEYS: Readonly<Record<keyof ProxyOptions, true>> = {
  aggregateFragments: true, onFrame: true, transforms: true, maxSendQueueSize: true, clientMaxFrameSize: true,
  upstreamMaxFrameSize: true, clientMaxFragments: true, upstreamMaxFragments: true, recvTimeout: true, idleTimeout: true,
  sendTimeout: true, pingInterval: true, pongTimeout: true, connectTimeout: true, lingeringTime: true,
  lingeringTimeout: true, validateUtf8: true, perMessageDeflate: true, debug: true, logger: true,
};

const SERVER_KEYS = new Set([
  'routes', 'target', 'transforms', 'authorize', 'allowedOrigins', 'headers', 'xForwarded', 'maxForwardedHeaders',
  'maxForwardedHeaderBytes', 'upstreamTls',
  'maxConnections', 'maxConnectionsPerIp', 'retryAfter', 'handshakeTimeout', 'maxHeaderSize', 'tls', 'healthPath',
  'registry',
]);

/**
 * Checks the options; what is left are the `WebSocketProxy` options, checked by a first proxy made
 * from them (so that a bad one fails here, not per connection).
 *
 * @throws TypeError naming the option
 */
export function resolveServerOptions(options: ProxyServerOptions): ResolvedServerOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (options.routes !== undefined && options.target !== undefined) throw new TypeError('options.target and options.routes are exclusive: give one');
  if (options.routes === undefined && options.target === undefined) throw new TypeError('options.routes or options.target is required');
  const routes = options.routes !== undefined
    ? compileRoutes(options.routes)
    : [compileRoute({ path: '/', target: options.target! }, 'options')];
  if (options.routes !== undefined && routes.length === 0) throw new TypeError('options.routes must hold at least one route');

  const proxy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (SERVER_KEYS.has(key)) continue;
    if (!Object.hasOwn(PROXY_KEYS, key)) throw new TypeError(`options.${key} is not an option of createProxyServer`);
    proxy[key] = value;
  }
  const transforms = options.transforms;
  if (transforms !== undefined) {
    if (transforms === null || typeof transforms !== 'object') throw new TypeError('options.transforms must be an object { client?, upstream? }');
    for (const role of ['client', 'upstream'] as const) {
      const factory = transforms[role];
      if (factory !== undefined && typeof factory !== 'function') {
        throw new TypeError(`options.transforms.${role} must be a function (ctx) => stages: a server makes stages per connection`);
      }
    }
    proxy.transforms = Object.freeze({ ...transforms });
  }
  if (options.authorize !== undefined && typeof options.authorize !== 'function') throw new TypeError('options.authorize must be a function');
  if (options.headers !== undefined) checkHeaders(options.headers, 'options.headers');
  if (options.xForwarded !== undefined && typeof options.xForwarded !== 'boolean') throw new TypeError('options.xForwarded must be a boolean');
  if (options.upstreamTls !== undefined && (options.upstreamTls === null || typeof options.upstreamTls !== 'object')) {
    throw new TypeError('options.upstreamTls must be an object');
  }
  if (options.tls !== undefined && (options.tls === null || typeof options.tls !== 'object' || options.tls.cert === undefined || options.tls.key === undefined)) {
    throw new TypeError('options.tls must be an object with cert and key');
  }
  const healthPath = options.healthPath ?? '/healthz';
  if (healthPath !== false && (typeof healthPath !== 'string' || !healthPath.startsWith('/'))) {
    throw new TypeError('options.healthPath must be a path starting with "/", or false');
  }
  const registry = options.registry;
  if (registry !== undefined && (registry === null || typeof registry.getSingleMetric !== 'function' || typeof registry.registerMetric !== 'function')) {
    throw new TypeError('options.registry must be a prom-client Registry');
  }
  return {
    routes,
    // Frozen (with its transforms): every connection's WebSocketProxy then shares one resolution of
    // these options instead of checking them again per connection (see optionsFor()).
    proxy: Object.freeze(proxy) as ProxyOptions<WebSocketProxy>,
    authorize: options.authorize,
    allowedOrigins: originCheck(options.allowedOrigins),
    headers: options.headers ?? {},
    xForwarded: options.xForwarded ?? true,
    maxForwardedHeaders: count('maxForwardedHeaders', options.maxForwardedHeaders, DEFAULT_MAX_FORWARDED_HEADERS, 0),
    maxForwardedHeaderBytes: count('maxForwardedHeaderBytes', options.maxForwardedHeaderBytes, DEFAULT_MAX_FORWARDED_HEADER_BYTES, 0),
    upstreamTls: options.upstreamTls ?? {},
    maxConnections: count('maxConnections', options.maxConnections, Infinity, 1),
    maxConnectionsPerIp: count('maxConnectionsPerIp', options.maxConnectionsPerIp, Infinity, 1),
    retryAfter: count('retryAfter', options.retryAfter, 5, 0),
    handshakeTimeout: count('handshakeTimeout', options.handshakeTimeout, DEFAULT_HANDSHAKE_TIMEOUT, 1),
    maxHeaderSize: count('maxHeaderSize', options.maxHeaderSize, 16384, 1024),
    tls: options.tls,
    healthPath,
    registry,
  };
}

function count(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || (value !== Infinity && !Number.isInteger(value))) {
    throw new TypeError(`options.${name} must be an integer >= ${min}${fallback === Infinity ? ' or Infinity' : ''}`);
  }
  return value;
}

function originCheck(allowed: ProxyServerOptions['allowedOrigins']): ResolvedServerOptions['allowedOrigins'] {
  if (allowed === undefined) return undefined;
  if (typeof allowed === 'function') return allowed;
  if (!Array.isArray(allowed) || allowed.some((origin) => typeof origin !== 'string')) {
    throw new TypeError('options.allowedOrigins must be an array of origins or a function (origin, req) => boolean');
  }
  const set = new Set(allowed.map((origin) => origin.toLowerCase().replace(/\/$/, '')));
  if (set.has('*')) return () => true;
  return (origin) => origin !== undefined && set.has(origin.toLowerCase());
}
