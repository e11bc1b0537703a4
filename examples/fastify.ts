/**
 * A Fastify 5 application and a WebSocket proxy on the same port, and a `fastify.close()` that
 * drains the proxy instead of hanging.
 *
 * Fastify handles requests; upgrades reach its http server's `'upgrade'` event, `fastify.server`,
 * where the proxy is attached: `app.server.on('upgrade', proxy.handleUpgrade)`. The proxy's route
 * `/ws` forwards `/ws/<anything>?<query>` to the upstream's `/<anything>?<query>`.
 *
 * Where the drain goes matters. `app.close()` runs the `preClose` hooks, then closes the http
 * server and waits for it to have no connection left, and only then runs the `onClose` hooks. A
 * proxied WebSocket is still one of the http server's connections (Node keeps counting a socket
 * after handing it to an `'upgrade'` listener), so a drain placed in `onClose` is never reached:
 * the server waits for the WebSockets, which wait for the drain, and `app.close()` never resolves.
 * In `preClose` it runs first: every connection is sent 1001 and closed (or destroyed after the
 * timeout), after which the http server closes at once.
 *
 * Run it: `npm run build && node dist/examples/fastify.js [ws://upstream/]` (or `UPSTREAM=ws://...`);
 * without an upstream it starts an echo server of its own. It listens on 127.0.0.1:9000, or on
 * `PORT`. Then e.g. `npx wscat -c ws://127.0.0.1:9000/ws/feed` and `curl http://127.0.0.1:9000/`.
 * Ctrl-C or SIGTERM closes the app (draining the proxy).
 */
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { type FastifyInstance, fastify } from 'fastify';
import { type ProxyServer, createProxyServer } from 'ws-frame-proxy';
import { startEchoUpstream } from './echo-upstream.js';

/** Options of {@link start}. */
export interface StartOptions {
  /** Port to listen on, on 127.0.0.1; 0 lets the system pick one. @defaultValue 0 */
  port?: number;
  /** The upstream's base `ws://` or `wss://` URL. @defaultValue a built-in echo server on 127.0.0.1 */
  upstream?: string;
  /** Milliseconds the drain waits for close handshakes before destroying what is left. @defaultValue 10000 */
  drainTimeout?: number;
  /** Where the drain's outcome goes. @defaultValue `console.log` */
  log?: (line: string) => void;
}

/** A running example. */
export interface RunningApp {
  /** The Fastify application: `app.close()` drains the proxy, then closes the server. */
  app: FastifyInstance;
  /** The application's `http://` URL (no trailing slash). */
  url: string;
  /** The proxy's base `ws://` URL, `ws://127.0.0.1:<port>/ws`. */
  wsUrl: string;
  /** The upstream the proxy forwards to. */
  upstream: string;
  /** The proxy server. */
  proxy: ProxyServer;
  /** Closes the application (so drains the proxy), then the built-in upstream; once. */
  close(): Promise<void>;
}

/**
 * Starts the Fastify application and its proxy.
 *
 * @param options - see {@link StartOptions}
 */
export async function start(options: StartOptions = {}): Promise<RunningApp> {
  const log = options.log ?? console.log;
  const echo = options.upstream === undefined ? await startEchoUpstream() : undefined;
  const upstream = options.upstream ?? echo!.url;

  const proxy = createProxyServer({ routes: [{ path: '/ws', target: upstream }] });
  const app = fastify();
  app.server.on('upgrade', proxy.handleUpgrade);

  app.get('/', async () => ({ hello: 'fastify', websockets: proxy.connections.length }));
  app.get('/healthz', async (_req, reply) => {
    // `proxy.accepting` turns false as soon as the drain begins.
    reply.code(proxy.accepting ? 200 : 503).type('text/plain; charset=utf-8');
    return proxy.accepting ? 'ok\n' : 'draining\n';
  });

  // preClose, not onClose: see the comment at the top of this file.
  app.addHook('preClose', async () => {
    const r = await proxy.close({ timeout: options.drainTimeout ?? 10_000 });
    log(`drained: ${r.connections} connection(s), ${r.closed} closed, ${r.failed} failed, ${r.destroyed} destroyed`);
  });

  await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    app,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    upstream,
    proxy,
    close() {
      closing ??= (async () => {
        await app.close();
        await echo?.close();
      })();
      return closing;
    },
  };
}

// Run directly (not imported by a test): listen on PORT or 9000, close on SIGTERM or SIGINT.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const running = await start({
    port: Number(process.env['PORT'] ?? 9000),
    upstream: process.argv[2] ?? process.env['UPSTREAM'],
  });
  console.log(`app on ${running.url}; WebSockets on ${running.wsUrl}/... -> ${running.upstream}`);
  const shutdown = (): void => {
    void running.close();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
