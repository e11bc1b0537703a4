/**
 * What the CLI logs about connections: one record when a connection opens, one when it ends, one
 * for each refused upgrade, one for each error; and, with `--log-frames`, one per frame through the
 * `log()` stage. Upstream URLs and query strings are never logged.
 *
 * @packageDocumentation
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { SideSummary } from '../proxy/side.js';
import type { WebSocketProxy } from '../proxy/websocket-proxy.js';
import type { ServerTransforms, StageFactory } from '../server/options.js';
import type { ProxyServer } from '../server/proxy-server.js';
import type { Route } from '../server/routes.js';
import { log } from '../transforms/log.js';
import { PAYLOAD_LOG_BYTES } from './args.js';

/** When and from where each live connection came: what its `close` record needs. */
interface Opened {
  readonly since: number;
  readonly remote: string;
}

/** Keyed by the proxy, so that nothing outlives a connection the server has let go of. */
const opened = new WeakMap<WebSocketProxy, Opened>();

/** The close code RFC 6455 section 7.1.5 reports for a close frame without one. */
const NO_STATUS = 1005;

/**
 * Logs a server's events at `info` (`connection`, `close`, `refuse`) and `error` (`error`).
 *
 * - `connection`: `id`, `route`, `remote` (the client's address and port), `path` (no query);
 * - `close`: `id`, `route`, `remote`, `duration` (ms), `closedBy`, `error` (a `WSP_ERR_*` code, absent
 *   for a clean close), and per side (`client`, `upstream`): `frames`, `bytes` received from it,
 *   `closeReceived` / `closeSent` (the codes of the close frames it sent and was sent; 1005 for a
 *   close frame without a code), `aborted` when its connection ended without a close handshake;
 * - `refuse`: `outcome` (the HTTP status, or `aborted`), `reason`, `route`, `remote`, `path`;
 * - `error`: `err`, and `path` when a request was being handled.
 *
 * @param server - the server
 * @param logger - where the records go
 */
export function logServerEvents(server: ProxyServer, logger: Logger): void {
  server.on('connection', (proxy, req, route) => {
    const remote = remoteOf(req);
    opened.set(proxy, { since: performance.now(), remote });
    logger.info({ id: proxy.id, route: routeName(route), remote, path: pathOf(req) }, 'connection');
  });
  server.on('close', (summary, route, proxy) => {
    const info = opened.get(proxy);
    opened.delete(proxy);
    logger.info({
      id: proxy.id,
      route: routeName(route),
      remote: info?.remote,
      duration: info === undefined ? undefined : Math.round(performance.now() - info.since),
      closedBy: summary.closedBy,
      error: summary.error?.code,
      client: sideRecord(summary.client),
      upstream: sideRecord(summary.upstream),
    }, 'close');
  });
  server.on('refuse', (refusal) => {
    const { req, route } = refusal;
    logger.info({
      outcome: refusal.outcome,
      reason: refusal.reason,
      route: route === undefined ? undefined : routeName(route),
      remote: remoteOf(req),
      path: pathOf(req),
    }, 'refuse');
  });
  server.on('error', (err, req) => {
    logger.error({ err, path: req === undefined ? undefined : pathOf(req) }, 'error');
  });
}

/**
 * Adds a `log()` stage in front of each direction's stages (so frames are logged as the side sent
 * them, after `--aggregate`, before the config's stages and `onFrame`), at `info`. Transforms that
 * are not what the server takes are returned as they are, for the server to reject by name.
 *
 * @param transforms - the config's stage factories, if any
 * @param logger - where the frame records go
 * @param payloads - whether to log payloads (cut to {@link PAYLOAD_LOG_BYTES} bytes)
 */
export function withFrameLog(transforms: ServerTransforms | undefined, logger: Logger, payloads: boolean): ServerTransforms | undefined {
  if (transforms !== undefined && (transforms === null || typeof transforms !== 'object')) return transforms;
  const payload = payloads ? PAYLOAD_LOG_BYTES : false;
  const wrap = (user: StageFactory | undefined): StageFactory | undefined => {
    if (user !== undefined && typeof user !== 'function') return user;
    return (context) => [log({ logger, level: 'info', payload }), ...(user === undefined ? [] : user(context))];
  };
  return { ...transforms, client: wrap(transforms?.client), upstream: wrap(transforms?.upstream) };
}

function sideRecord(side: SideSummary): Record<string, unknown> {
  return {
    frames: side.frames,
    bytes: side.bytes,
    closeReceived: side.closeReceived === undefined ? undefined : (side.closeReceived.code ?? NO_STATUS),
    closeSent: side.closeSent === undefined ? undefined : (side.closeSent.code ?? NO_STATUS),
    aborted: side.aborted ? true : undefined,
  };
}

function routeName(route: Route): string {
  return route.name ?? route.path;
}

/** The request's path, without its query (which may carry tokens). */
function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?', 1)[0]!;
}

/** `ip:port` of the client's socket, IPv6 in brackets, IPv4-mapped IPv6 as IPv4. */
function remoteOf(req: IncomingMessage): string {
  const socket = req.socket as { remoteAddress?: string; remotePort?: number } | undefined;
  let address = socket?.remoteAddress ?? '';
  if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice(7);
  const host = address.includes(':') ? `[${address}]` : address;
  return socket?.remotePort === undefined ? host : `${host}:${socket.remotePort}`;
}
