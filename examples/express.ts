/**
 * An Express 5 application and a WebSocket proxy on the same port.
 *
 * Express only handles requests; WebSocket upgrades reach the http server's `'upgrade'` event, which
 * Express never sees. `app.listen()` returns that http server, so the proxy is attached to it:
 * `server.on('upgrade', proxy.handleUpgrade)`. Every upgrade goes to the proxy, whose routes decide:
 * `/ws/:room` is proxied to the upstream's `/rooms/:room` (the rest of the path and the query are
 * carried over: `/ws/lobby/history?since=5` -> `/rooms/lobby/history?since=5`), any other path is
 * answered 404 without contacting the upstream.
 *
 * The Express routes: `GET /api/status` (the proxy's state, from `proxy.accepting` and
 * `proxy.connections`) and `GET /healthz`, answered by `proxy.handleRequest()` (200 `ok`, 503
 * `draining` during a drain). Ctrl-C or SIGTERM drains the proxy, then closes the http server.
 *
 * Run it: `npm run build && node dist/examples/express.js [ws://upstream/]` (or `UPSTREAM=ws://...`);
 * without an upstream it starts an echo server of its own. It listens on 127.0.0.1:9000, or on
 * `PORT`. Then e.g. `npx wscat -c 'ws://127.0.0.1:9000/ws/lobby?user=ann'` and
 * `curl http://127.0.0.1:9000/api/status`.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { type DrainResult, type ProxyServer, createProxyServer } from 'ws-frame-proxy';
import { startEchoUpstream } from './echo-upstream.js';

/** Options of {@link start}. */
export interface StartOptions {
  /** Port to listen on, on 127.0.0.1; 0 lets the system pick one. @defaultValue 0 */
  port?: number;
  /**
   * The upstream's base `ws://` or `wss://` URL; rooms are at `rooms/<room>` under it.
   * @defaultValue a built-in echo server on 127.0.0.1
   */
  upstream?: string;
  /** Milliseconds the drain waits for close handshakes before destroying what is left. @defaultValue 10000 */
  drainTimeout?: number;
}

/** A running example. */
export interface RunningApp {
  /** The application's `http://` URL (no trailing slash). */
  url: string;
  /** The URL of a room's WebSocket: `ws://127.0.0.1:<port>/ws/<room>`. */
  roomUrl(room: string): string;
  /** The upstream the proxy forwards to. */
  upstream: string;
  /** The proxy server. */
  proxy: ProxyServer;
  /** Drains the proxy, then closes the http server and the built-in upstream; once. */
  close(): Promise<DrainResult>;
}

/**
 * Starts the Express application and its proxy.
 *
 * @param options - see {@link StartOptions}
 */
export async function start(options: StartOptions = {}): Promise<RunningApp> {
  const echo = options.upstream === undefined ? await startEchoUpstream() : undefined;
  const upstream = options.upstream ?? echo!.url;

  const proxy = createProxyServer({
    routes: [{ path: '/ws/:room', target: new URL('rooms/:room', upstream) }],
  });

  const app = express();
  app.get('/api/status', (_req, res) => {
    res.json({ accepting: proxy.accepting, connections: proxy.connections.length });
  });
  // Express's req and res are Node's, extended: the proxy's health check answers them as they are.
  app.get('/healthz', (req, res) => {
    proxy.handleRequest(req, res);
  });

  const server = await new Promise<Server>((resolve, reject) => {
    // Express 5 hands a listen error to the callback.
    const listening = app.listen(options.port ?? 0, '127.0.0.1', (err?: Error) => (err === undefined ? resolve(listening) : reject(err)));
  });
  server.on('upgrade', proxy.handleUpgrade);
  const { port } = server.address() as AddressInfo;
  let closing: Promise<DrainResult> | undefined;

  return {
    url: `http://127.0.0.1:${port}`,
    roomUrl: (room) => `ws://127.0.0.1:${port}/ws/${encodeURIComponent(room)}`,
    upstream,
    proxy,
    close() {
      closing ??= (async () => {
        const drained = await proxy.close({ timeout: options.drainTimeout ?? 10_000 });
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
  console.log(`app on ${running.url}; rooms on ${running.url.replace(/^http/, 'ws')}/ws/<room> -> ${running.upstream}rooms/<room>`);
  const shutdown = (): void => {
    void running.close().then((r) => console.log(`drained ${r.connections} connection(s)`));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
