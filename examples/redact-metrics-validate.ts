/**
 * A WebSocket proxy that checks, cleans and counts what clients send, and serves its metrics:
 *
 * - from the client: `validateJson()` (a chat message schema; anything else closes the client with
 *   1007 and the upstream with 1001), then `redact()` (passwords, tokens, card numbers), then
 *   `metrics()`;
 * - from the upstream: `metrics()`;
 * - `GET /metrics` on the same port: the Prometheus text of the stages' counts and of the proxy
 *   server's own (`ws_proxy_connections_active`, `ws_proxy_connections_total{outcome}`...).
 *
 * A `ProxyServer` (`createProxyServer()`) does the upgrade plumbing: it runs a `WebSocketProxy` per
 * connection with fresh stages from the factories, keeps the set of live connections, reports how
 * each ended (`'close'`) or why it was refused (`'refuse'`), and drains them on `close()`.
 *
 * Run it: `npm run build && node dist/examples/redact-metrics-validate.js [ws://upstream/]`
 * (or `UPSTREAM=ws://...`); without an upstream it starts an echo server of its own. It listens on
 * 127.0.0.1:9000, or on `PORT`.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { type DrainResult, createProxyServer } from 'ws-frame-proxy';
import { metrics, redact, validateJson } from 'ws-frame-proxy/transforms';
import { startEchoUpstream } from './echo-upstream.js';

/**
 * What a client may send: a chat message. Defined once, outside the stage factory, so that ajv
 * compiles it once for every connection.
 */
export const chatMessageSchema = {
  type: 'object',
  required: ['user', 'text'],
  properties: {
    user: { type: 'string', minLength: 1, maxLength: 64 },
    text: { type: 'string', maxLength: 4096 },
    // Clients of this (imaginary) chat send credentials along; they must never reach the upstream.
    password: { type: 'string' },
    token: { type: 'string' },
  },
  additionalProperties: false,
};

/** Options of {@link start}. */
export interface StartOptions {
  /** Port to listen on, on 127.0.0.1; 0 lets the system pick one. @defaultValue 0 */
  port?: number;
  /** The upstream's `ws://` or `wss://` URL. @defaultValue a built-in echo server on 127.0.0.1 */
  upstream?: string;
  /** Where a line per connection goes (how it ended, or why it was not proxied). @defaultValue `console.log` */
  log?: (line: string) => void;
}

/** A running example. */
export interface RunningProxy {
  /** The proxy's `ws://` URL, for WebSocket clients. */
  url: string;
  /** The `http://` URL of the metrics. */
  metricsUrl: string;
  /** The upstream the proxy forwards to. */
  upstream: string;
  /** Drains the live connections (1001 to both sides), then closes the server and the built-in upstream; once. */
  close(): Promise<DrainResult>;
}

/**
 * Starts the proxy and its metrics endpoint.
 *
 * @param options - see {@link StartOptions}
 */
export async function start(options: StartOptions = {}): Promise<RunningProxy> {
  const log = options.log ?? console.log;
  const echo = options.upstream === undefined ? await startEchoUpstream() : undefined;
  const upstream = options.upstream ?? echo!.url;

  // One registry for every connection, both directions and the server: the counts add up in it.
  const registry = new Registry();
  const proxy = createProxyServer({
    target: upstream,
    registry,
    // Stage instances carry one connection's frames: the factories make fresh ones for each.
    transforms: {
      client: () => [
        validateJson({ schema: chatMessageSchema }),
        redact({ keys: ['password', 'token'], patterns: [/\b\d{16}\b/] }),
        metrics({ registry }),
      ],
      upstream: () => [metrics({ registry })],
    },
  });
  proxy.on('close', (summary, _route, connection) => {
    const how = summary.error === undefined ? 'cleanly' : `${summary.error.code} (${summary.error.message})`;
    log(`[${connection.id}] closed by ${summary.closedBy ?? 'nobody'}, ${how}`);
  });
  // The client was answered already: 502/504 for an upstream failure, 400/426 for a bad request...
  proxy.on('refuse', ({ outcome, reason }) => log(`not proxied (${outcome}): ${reason}`));
  proxy.on('error', (err) => log(`error: ${err.message}`));

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${String(err)}\n`),
      );
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Connect a WebSocket client here; metrics at GET /metrics\n');
  });
  server.on('upgrade', proxy.handleUpgrade);
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  let closing: Promise<DrainResult> | undefined;

  return {
    url: `ws://127.0.0.1:${port}/`,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
    upstream,
    close() {
      closing ??= (async () => {
        const drained = await proxy.close({ timeout: 10_000 });
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await echo?.close();
        return drained;
      })();
      return closing;
    },
  };
}

// Run directly (not imported by a test): listen on PORT or 9000, drain on SIGTERM or SIGINT.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const running = await start({
    port: Number(process.env['PORT'] ?? 9000),
    upstream: process.argv[2] ?? process.env['UPSTREAM'],
  });
  console.log(`proxy on ${running.url} -> ${running.upstream}; metrics on ${running.metricsUrl}`);
  const shutdown = (): void => {
    void running.close().then((r) => console.log(`drained ${r.connections} connection(s)`));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
