/**
 * Options of `inspector()`: their types, defaults and validation.
 *
 * @packageDocumentation
 */
import { isIPv4 } from 'node:net';
import type { ProxyServer } from '../server/proxy-server.js';
import { checkNumber, checkOptionsObject } from '../transforms/stage.js';

/** Options of {@link inspector}. */
export interface InspectorOptions {
  /**
   * The proxy server whose connections to show: the inspector observes the connections it opens
   * from now on. Without it, add {@link Inspector.transforms} to your `WebSocketProxy`s and
   * call {@link Inspector.track}.
   * @defaultValue none
   */
  server?: ProxyServer;
  /**
   * The port of the inspector's own HTTP server, 0 for any free one.
   * @defaultValue 0
   */
  port?: number;
  /**
   * The address it binds. Anything but loopback (127.0.0.0/8, ::1, localhost) requires `token`.
   * @defaultValue '127.0.0.1'
   */
  host?: string;
  /**
   * A secret every request must carry, as `?token=` or `Authorization: Bearer`; else 401.
   * @defaultValue none (only allowed on loopback)
   */
  token?: string;
  /**
   * Most messages kept per connection (a ring: the oldest go first).
   * @defaultValue 1000
   */
  maxMessagesPerConnection?: number;
  /**
   * Most bytes kept per connection (payloads and an estimate of each row's size).
   * @defaultValue 4 MiB (4194304)
   */
  maxBytesPerConnection?: number;
  /**
   * Most bytes kept across connections; past it closed connections go first (oldest first), then
   * the oldest messages of live ones.
   * @defaultValue 64 MiB (67108864)
   */
  maxBytes?: number;
  /**
   * Most closed connections kept for the page (oldest evicted first).
   * @defaultValue 100
   */
  maxClosedConnections?: number;
  /**
   * Most payload bytes kept per message; the rest is cut (the message is marked truncated). Held
   * messages larger than this cannot be edited (only released or dropped).
   * @defaultValue 64 KiB (65536)
   */
  maxPayloadBytes?: number;
  /**
   * Most bytes an event-channel response may have buffered (a page that does not read); past it
   * the response is ended and the page reconnects.
   * @defaultValue 1 MiB (1048576)
   */
  maxPageBuffer?: number;
  /**
   * Rows per second of a connection a page receives live, at most (the newest of each batch): a
   * table nobody can read faster costs the browser, on the proxy's machine often, and the proxy
   * serializing them. Past it a `skipped` event counts the rest, which stay kept: the API and the
   * downloads have them, and the page loads those still kept when paused.
   * @defaultValue 200
   */
  liveRowsPerSecond?: number;
  /**
   * Milliseconds a breakpoint holds a message before releasing it as is.
   * @defaultValue 30000
   */
  holdTimeout?: number;
  /**
   * The folder of the page's files.
   * @defaultValue the package's `src/inspector/page`
   */
  pageDir?: string;
}

/** The options after checking. @internal */
export interface ResolvedInspectorOptions {
  server: ProxyServer | undefined;
  port: number;
  host: string;
  token: string | undefined;
  maxMessagesPerConnection: number;
  maxBytesPerConnection: number;
  maxBytes: number;
  maxClosedConnections: number;
  maxPayloadBytes: number;
  maxPageBuffer: number;
  liveRowsPerSecond: number;
  holdTimeout: number;
  pageDir: string;
}

/** Defaults of the numeric options. */
export const INSPECTOR_DEFAULTS = Object.freeze({
  maxMessagesPerConnection: 1000,
  maxBytesPerConnection: 4 * 1024 * 1024,
  maxBytes: 64 * 1024 * 1024,
  maxClosedConnections: 100,
  maxPayloadBytes: 64 * 1024,
  maxPageBuffer: 1024 * 1024,
  liveRowsPerSecond: 200,
  holdTimeout: 30_000,
});

const KEYS = new Set([
  'server', 'port', 'host', 'token', 'maxMessagesPerConnection', 'maxBytesPerConnection', 'maxBytes',
  'maxClosedConnections', 'maxPayloadBytes', 'maxPageBuffer', 'liveRowsPerSecond', 'holdTimeout', 'pageDir',
]);

/** The longest delay `setTimeout` takes. */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * Whether an address or host name is loopback: 127.0.0.0/8, ::1 (also IPv4-mapped), localhost.
 *
 * @param host - a host as `listen()` takes it
 */
export function isLoopback(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (lower === 'localhost' || lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true;
  const v4 = lower.startsWith('::ffff:') ? lower.slice(7) : lower;
  return isIPv4(v4) && v4.startsWith('127.');
}

/**
 * Checks the options and applies the defaults.
 *
 * @param options - what the caller gave
 * @param defaultPageDir - the page folder of the package
 * @throws TypeError naming the option
 */
export function resolveInspectorOptions(options: InspectorOptions | undefined, defaultPageDir: string): ResolvedInspectorOptions {
  checkOptionsObject(options);
  const given = options ?? {};
  for (const key of Object.keys(given)) {
    if (!KEYS.has(key)) throw new TypeError(`options.${key} is not an option of inspector`);
  }
  const server = given.server;
  if (server !== undefined && (server === null || typeof server.addObserver !== 'function')) {
    throw new TypeError('options.server must be a ProxyServer');
  }
  const port = checkNumber('port', given.port, 0, { min: 0, integer: true });
  if (port > 65535) throw new TypeError('options.port must be an integer >= 0 and <= 65535');
  const host = given.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new TypeError('options.host must be a non-empty string');
  const token = given.token;
  if (token !== undefined && (typeof token !== 'string' || token === '')) throw new TypeError('options.token must be a non-empty string');
  if (token === undefined && !isLoopback(host)) {
    throw new TypeError(`options.token is required to bind ${JSON.stringify(host)}, which is not a loopback address`);
  }
  const pageDir = given.pageDir ?? defaultPageDir;
  if (typeof pageDir !== 'string' || pageDir === '') throw new TypeError('options.pageDir must be a non-empty string');
  const number = (name: keyof typeof INSPECTOR_DEFAULTS, min: number): number =>
    checkNumber(name, given[name], INSPECTOR_DEFAULTS[name], { min, integer: true });
  const holdTimeout = number('holdTimeout', 1);
  if (holdTimeout > MAX_TIMER) throw new TypeError(`options.holdTimeout must be an integer >= 1 and <= ${MAX_TIMER}`);
  return {
    server,
    port,
    host,
    token,
    maxMessagesPerConnection: number('maxMessagesPerConnection', 1),
    maxBytesPerConnection: number('maxBytesPerConnection', 1024),
    maxBytes: number('maxBytes', 1024),
    maxClosedConnections: number('maxClosedConnections', 0),
    maxPayloadBytes: number('maxPayloadBytes', 0),
    maxPageBuffer: number('maxPageBuffer', 1024),
    liveRowsPerSecond: number('liveRowsPerSecond', 1),
    holdTimeout,
    pageDir,
  };
}
