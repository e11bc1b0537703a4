/**
 * A Koa 3 application and a WebSocket proxy on the same port.
 *
 * `app.listen()` returns the http server Koa created; its `'upgrade'` event, which Koa never sees,
 * goes to the proxy: `server.on('upgrade', proxy.handleUpgrade)`. The proxy's route `/ws` forwards
 * `/ws/<anything>?<query>` to the upstream's `/<anything>?<query>`.
 *
 * The health check is the proxy's own `handleRequest()`, called from a Koa middleware: it writes
 * the response itself, so the middleware sets `ctx.respond = false` to keep Koa from writing a
 * second one. Ctrl-C or SIGTERM drains the proxy, then closes the http server.
 *
 * Run it: `npm run build && node dist/examples/koa.js [ws://upstream/]` (or `UPSTREAM=ws://...`);
 * without an upstream it starts an echo server of its own. It listens on 127.0.0.1:9000, or on
 * `PORT`. Then e.g. `npx wscat -c ws://127.0.0.1:9000/ws/` and `curl http://127.0.0.1:9000/healthz`.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import Koa from 'koa';
import { type DrainResult, type ProxyServer, createProxyServer } from 'ws-frame-proxy';
import { startEchoUpstream } from './echo-upstream.js';

/** Options of {@link start}. */
export interface StartOptions {
  /** Port to listen on, on 127.0.0.1; 0 lets the system pick one. @defaultValue 0 */
  port?: number;
  /** The upstream's base `ws://` or `wss://` URL. @defaultValue a built-in echo server on 127.0.0.1 */
  upstream?: string;
  /** Milliseconds the drain waits for close handshakes before destroying what is left. @defaultValue 10000 */
  drainTimeout?: number;
}

/** A running example. */
export interface RunningApp {
  /** The application's `http://` URL (no trailing slash). */
  url: string;
  /** The proxy's base `ws://` URL, `ws://127.0.0.1:<port>/ws`. */
  wsUrl: string;
  /** The upstream the proxy forwards to. */
  upstream: string;
  /** The proxy server. */
  proxy: ProxyServer;
  /** Drains the proxy, then closes the http server and the built-in upstream; once. */
  close(): Promise<DrainResult>;
}

/**
 * Starts the Koa application and its proxy.
 *
 * @param options - see {@link StartOptions}
 */
export async function start(options: StartOptions = {}): Promise<RunningApp> {
  const echo = options.upstream === undefined ? await startEchoUpstream() : undefined;
  const upstream = options.upstream ?? echo!.url;
  const proxy = createProxyServer({ routes: [{ path: '/ws', target: upstream }] });

  const app = new Koa();
  app.use(async (ctx, next) => {
    if (proxy.handleRequest(ctx.req, ctx.res)) {
      ctx.respond = false;
      return;
    }
    await next();
  });
  app.use((ctx) => {
    ctx.body = { hello: 'koa', websockets: proxy.connections.length };
  });

  const server = app.listen(options.port ?? 0, '127.0.0.1');
  server.on('upgrade', proxy.handleUpgrade);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  let closing: Promise<DrainResult> | undefined;

  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
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
  console.log(`app on ${running.url}; WebSockets on ${running.wsUrl}/... -> ${running.upstream}`);
  const shutdown = (): void => {
    void running.close().then((r) => console.log(`drained ${r.connections} connection(s)`));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
