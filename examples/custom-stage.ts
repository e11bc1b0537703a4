/**
 * Stages of your own, two ways:
 *
 * - `stamp()`, built on `mapJson()` (the whole-message JSON member of the `map()` family): every
 *   JSON object the upstream sends gets `_meta: { conn, seq, serverTime }`, where `conn` is the
 *   connection's id (`ctx.id`, handed to the stage by the proxy) and `seq` counts this connection's
 *   messages from 1;
 * - `dropHeartbeats()`, a plain `node:stream` `Duplex.from(async function* ...)`: the app-level
 *   `ping` text messages clients send to keep their connection busy are dropped instead of being
 *   forwarded to the upstream.
 *
 * The server is the one `ProxyServer.listen()` creates: nothing but the proxy on its port (426 to
 * plain HTTP requests, the health check at `/healthz`).
 *
 * Run it: `npm run build && node dist/examples/custom-stage.js [ws://upstream/]` (or
 * `UPSTREAM=ws://...`); without an upstream it starts an echo server of its own. It listens on
 * 127.0.0.1:9000, or on `PORT`.
 */
import { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { type DrainResult, type Frame, createProxyServer } from 'ws-frame-proxy';
import { type Stage, mapJson } from 'ws-frame-proxy/transforms';
import { startEchoUpstream } from './echo-upstream.js';

/** What {@link stamp} adds to each JSON object, under `_meta`. */
export interface Stamp {
  /** The connection's id (`ctx.id`). */
  conn: string;
  /** 1 for the connection's first stamped message, then 2, 3... */
  seq: number;
  /** When the proxy forwarded the message, ISO 8601. */
  serverTime: string;
}

/**
 * A stage that stamps every JSON object message with {@link Stamp} under `_meta`. Other JSON values
 * (arrays, strings, numbers), text that is not JSON, binary messages and control frames pass as
 * they are. A stage serves one connection, so its counter is that connection's.
 *
 * @param now - the clock (a test may pass a fixed one)
 */
export function stamp(now: () => Date = () => new Date()): Stage {
  let seq = 0;
  return mapJson((value, ctx) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    seq += 1;
    const meta: Stamp = { conn: ctx.id, seq, serverTime: now().toISOString() };
    return { ...value, _meta: meta };
  });
}

/**
 * A stage, as a plain `node:stream` Duplex, that drops whole one-frame text messages equal to
 * `word`. It needs no context, so it takes none: the proxy hands a context only to stages that
 * ask for it (see `kStageContext`).
 *
 * @param word - the heartbeat's text
 */
export function dropHeartbeats(word = 'ping'): Duplex {
  const heartbeat = Buffer.from(word, 'utf8');
  return Duplex.from(async function* (frames: AsyncIterable<Frame>) {
    for await (const frame of frames) {
      // Only a message that is one frame (FIN set) can go alone: dropping the first fragment of a
      // longer one would leave its continuation frames without a start.
      if (frame.type === 'text' && frame.fin && frame.payload.equals(heartbeat)) continue;
      // Everything else, control frames included, goes on: a close frame must reach the upstream.
      yield frame;
    }
  });
}

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
  /** The proxy's `ws://` URL. */
  url: string;
  /** The upstream the proxy forwards to. */
  upstream: string;
  /** Drains the live connections (1001 to both sides), then closes the server and the built-in upstream; once. */
  close(): Promise<DrainResult>;
}

/**
 * Starts the proxy with both stages.
 *
 * @param options - see {@link StartOptions}
 */
export async function start(options: StartOptions = {}): Promise<RunningProxy> {
  const log = options.log ?? console.log;
  const echo = options.upstream === undefined ? await startEchoUpstream() : undefined;
  const upstream = options.upstream ?? echo!.url;

  // The factories run once per connection: each connection gets its own stages (and counter).
  const proxy = createProxyServer({
    target: upstream,
    transforms: { client: () => [dropHeartbeats()], upstream: () => [stamp()] },
  });
  proxy.on('close', (summary, _route, connection) => {
    log(`[${connection.id}] closed by ${summary.closedBy ?? 'nobody'}, ${summary.error?.code ?? 'cleanly'}`);
  });
  proxy.on('refuse', ({ outcome, reason }) => log(`not proxied (${outcome}): ${reason}`));
  proxy.on('error', (err) => log(`error: ${err.message}`));

  // The proxy's own server: upgrades, 426 to other requests, and the health check at /healthz.
  const address = await proxy.listen(options.port ?? 0, '127.0.0.1');
  let closing: Promise<DrainResult> | undefined;

  return {
    url: `ws://127.0.0.1:${address.port}/`,
    upstream,
    close() {
      closing ??= (async () => {
        // close() also closes the server listen() created.
        const drained = await proxy.close({ timeout: 10_000 });
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
  console.log(`proxy on ${running.url} -> ${running.upstream}`);
  const shutdown = (): void => {
    void running.close().then((r) => console.log(`drained ${r.connections} connection(s)`));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
