/**
 * A `ProxyServer` behind a plain `http.createServer`, shut down the way a container platform asks:
 *
 * - `server.on('upgrade', proxy.handleUpgrade)`: every WebSocket upgrade goes to the proxy (it is
 *   bound: pass it as it is);
 * - the request handler asks `proxy.handleRequest(req, res)` first: it answers `GET /healthz` (200
 *   `ok`, or 503 `draining` once the drain has begun, so that a load balancer stops sending
 *   clients) and leaves other requests to the application;
 * - SIGTERM (and Ctrl-C) drains: `proxy.close({ timeout })` sends every live connection a 1001
 *   close frame on both sides, answers new upgrades 503, waits for the close handshakes (destroying
 *   what is left after `timeout`), and resolves with how the connections ended; only then is the
 *   http server closed, so the health check answers `draining` for the whole drain.
 *
 * Run it: `npm run build && node dist/examples/http-server.js [ws://upstream/]` (or
 * `UPSTREAM=ws://...`); without an upstream it starts an echo server of its own. It listens on
 * 127.0.0.1:9000, or on `PORT` (0: any free port; the first line printed gives the URL).
 * `kill -TERM <pid>` drains and exits.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { type DrainResult, type ProxyServer, createProxyServer } from 'ws-frame-proxy';
import { startEchoUpstream } from './echo-upstream.js';

/** Options of {@link start}. */
export interface StartOptions {
  /** Port to listen on, on 127.0.0.1; 0 lets the system pick one. @defaultValue 0 */
  port?: number;
  /** The upstream's `ws://` or `wss://` URL. @defaultValue a built-in echo server on 127.0.0.1 */
  upstream?: string;
  /** Milliseconds the drain waits for close handshakes before destroying what is left. @defaultValue 10000 */
  drainTimeout?: number;
  /** Where a line per connection goes (how it ended, or why it was refused). @defaultValue `console.log` */
  log?: (line: string) => void;
}

/** A running example. */
export interface RunningServer {
  /** The proxy's `ws://` URL. */
  url: string;
  /** The health check's `http://` URL. */
  healthUrl: string;
  /** The upstream the proxy forwards to. */
  upstream: string;
  /** The proxy server (its live `connections`, its events). */
  proxy: ProxyServer;
  /** Drains the proxy, then closes the http server and the built-in upstream; once. */
  close(): Promise<DrainResult>;
}

/**
 * Starts the http server and its proxy.
 *
 * @param options - see {@link StartOptions}
 */
export async function start(options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? console.log;
  const echo = options.upstream === undefined ? await startEchoUpstream() : undefined;
  const upstream = options.upstream ?? echo!.url;

  const proxy = createProxyServer({ target: upstream });
  proxy.on('close', (summary, _route, connection) => {
    log(`[${connection.id}] closed by ${summary.closedBy ?? 'nobody'}, ${summary.error?.code ?? 'cleanly'}`);
  });
  proxy.on('refuse', ({ outcome, reason }) => log(`refused (${outcome}): ${reason}`));
  // With a listener, failures in hooks or stages are reported here instead of the proxy's logger.
  proxy.on('error', (err) => log(`error: ${err.message}`));

  const server = http.createServer((req, res) => {
    if (proxy.handleRequest(req, res)) return;
    res.writeHead(426, { 'content-type': 'text/plain' }).end('Connect a WebSocket client here\n');
  });
  server.on('upgrade', proxy.handleUpgrade);
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  let closing: Promise<DrainResult> | undefined;

  return {
    url: `ws://127.0.0.1:${port}/`,
    healthUrl: `http://127.0.0.1:${port}/healthz`,
    upstream,
    proxy,
    close() {
      closing ??= (async () => {
        const drained = await proxy.close({ timeout: options.drainTimeout ?? 10_000 });
        // The upgraded sockets are all gone now: close() ends once the idle keep-alive sockets are.
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
  console.log(`proxy on ${running.url} -> ${running.upstream}; health check on ${running.healthUrl}`);
  const shutdown = (signal: string): void => {
    console.log(`${signal}: draining ${running.proxy.connections.length} connection(s)`);
    void running.close().then((r) => {
      console.log(`drained: ${r.connections} connection(s), ${r.closed} closed, ${r.failed} failed, ${r.destroyed} destroyed`);
      // Nothing is left open: the process ends by itself, with exit code 0.
    });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
