/**
 * A WebSocket proxy that checks, cleans and counts what clients send, and serves its metrics:
 *
 * - from the client: `validateJson()` (a chat message schema; anything else closes the client with
 *   1007 and the upstream with 1001), then `redact()` (passwords, tokens, card numbers), then
 *   `metrics()`;
 * - from the upstream: `metrics()`;
 * - `GET /metrics` on the same port: the Prometheus text of the counts.
 *
 * Run it: `npm run build && node dist/examples/redact-metrics-validate.js [ws://upstream/]`
 * (or `UPSTREAM=ws://...`); without an upstream it starts an echo server of its own. It listens on
 * 127.0.0.1:9000, or on `PORT`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { WebSocketProxy } from 'ws-frame-proxy';
import { metrics, redact, validateJson } from 'ws-frame-proxy/transforms';
import { startEchoUpstream } from './echo-upstream.js';

/**
 * What a client may send: a chat message. Defined once, outside the upgrade handler, so that ajv
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
  /** Where a line per connection goes (how it ended). @defaultValue `console.log` */
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
  /** Closes the live connections (1001 to both sides), then the server and the built-in upstream; once. */
  close(): Promise<void>;
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

  // One registry for every connection and both directions: the stages add up their counts in it.
  const registry = new Registry();
  const live = new Set<WebSocketProxy>();
  const ending = new Set<Promise<void>>();

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

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node's http server stops watching an upgraded socket: a client that resets it while the
    // upstream is being connected would otherwise be an unhandled 'error' (a crash).
    socket.on('error', () => undefined);
    // Stage instances carry one connection's frames: the function form makes fresh ones for each.
    const proxy = new WebSocketProxy({
      transforms: {
        client: () => [
          validateJson({ schema: chatMessageSchema }),
          redact({ keys: ['password', 'token'], patterns: [/\b\d{16}\b/] }),
          metrics({ registry }),
        ],
        upstream: () => [metrics({ registry })],
      },
    });
    const done = proxyConnection(proxy, upstream, req, socket, head, live, log).catch((err: unknown) => {
      // Not expected (execute() resolves in every case), but an upgrade handler must never throw.
      log(`[${proxy.id}] failed: ${String(err)}`);
    });
    ending.add(done);
    void done.finally(() => ending.delete(done));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `ws://127.0.0.1:${port}/`,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
    upstream,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const proxy of live) proxy.close(1001, 'proxy shutting down');
        await Promise.all(ending);
        await closed;
        await echo?.close();
      })();
      return closing;
    },
  };
}

/** Runs one connection: both handshakes, then frames until both sides are closed; logs how it ended. */
async function proxyConnection(
  proxy: WebSocketProxy,
  upstream: string,
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  live: Set<WebSocketProxy>,
  log: (line: string) => void,
): Promise<void> {
  try {
    await proxy.connect(upstream, req, socket, head);
  } catch (err) {
    // The client was answered already (502/504 for an upstream failure, 400/426 for a bad request).
    log(`[${proxy.id}] not proxied: ${(err as Error).message}`);
    return;
  }
  live.add(proxy);
  try {
    const summary = await proxy.execute();
    const how = summary.error === undefined ? 'cleanly' : `${summary.error.code} (${summary.error.message})`;
    log(`[${proxy.id}] closed by ${summary.closedBy ?? 'nobody'}, ${how}`);
  } finally {
    live.delete(proxy);
  }
}

// Run directly (not imported by a test): listen on PORT or 9000.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const running = await start({
    port: Number(process.env['PORT'] ?? 9000),
    upstream: process.argv[2] ?? process.env['UPSTREAM'],
  });
  console.log(`proxy on ${running.url} -> ${running.upstream}; metrics on ${running.metricsUrl}`);
  process.once('SIGINT', () => {
    void running.close().then(() => process.exit(0));
  });
}
