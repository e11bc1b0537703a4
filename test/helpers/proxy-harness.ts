/**
 * A proxy on loopback for integration tests: an http server whose 'upgrade' handler runs a
 * `WebSocketProxy` to a given upstream URL, recording each proxy's outcome.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { WebSocketProxy, type ConnectOptions, type ProxyOptions, type ProxySummary } from '../../src/index.js';

/** What one proxied connection ended with. */
export interface ProxyOutcome {
  proxy: WebSocketProxy;
  /** Resolves with the summary, or with the error execute()/connect() rejected with. */
  done: Promise<{ summary?: ProxySummary; error?: Error; connectError?: Error }>;
}

/** A running proxy server. */
export interface ProxyServer {
  /** ws://127.0.0.1:port of the proxy. */
  url: string;
  server: http.Server;
  /** One entry per upgrade request, in order. */
  outcomes: ProxyOutcome[];
  /** Resolves with the next outcome (the one of the next connection, or an existing unclaimed one). */
  nextOutcome(): Promise<ProxyOutcome>;
  close(): Promise<void>;
}

/** Options of {@link startProxy}. */
export interface StartProxyOptions {
  /** Upstream URL, or a function of the request giving it. */
  upstream: string | ((req: http.IncomingMessage) => string);
  /** Proxy options, or a factory called per connection. */
  proxyOptions?: ProxyOptions<WebSocketProxy> | (() => ProxyOptions<WebSocketProxy>);
  /** Upstream handshake options for connect(). */
  connectOptions?: ConnectOptions;
  /**
   * Runs the handshakes; the default is `proxy.connect(url, req, socket, head, connectOptions)`.
   * Tests of connectUpstream/connectClient order replace it.
   */
  handshake?: (proxy: WebSocketProxy, url: string, req: http.IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>;
  /** Whether to call execute() after the handshake. @defaultValue true */
  execute?: boolean;
}

/**
 * Starts a proxy on 127.0.0.1 (ephemeral port).
 *
 * @param options - see {@link StartProxyOptions}
 */
export async function startProxy(options: StartProxyOptions): Promise<ProxyServer> {
  const outcomes: ProxyOutcome[] = [];
  const waiters: ((outcome: ProxyOutcome) => void)[] = [];
  let claimed = 0;
  const server = http.createServer((_req, res) => {
    res.writeHead(426).end();
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const proxyOptions = typeof options.proxyOptions === 'function' ? options.proxyOptions() : options.proxyOptions;
    const proxy = new WebSocketProxy(proxyOptions);
    const url = typeof options.upstream === 'function' ? options.upstream(req) : options.upstream;
    const done = (async () => {
      try {
        if (options.handshake !== undefined) await options.handshake(proxy, url, req, socket, head);
        else await proxy.connect(url, req, socket, head, options.connectOptions);
      } catch (err) {
        return { connectError: err as Error };
      }
      if (options.execute === false) return {};
      try {
        return { summary: await proxy.execute() };
      } catch (err) {
        return { error: err as Error };
      }
    })();
    const outcome = { proxy, done };
    outcomes.push(outcome);
    const waiter = waiters.shift();
    if (waiter !== undefined) {
      claimed++;
      waiter(outcome);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    server,
    outcomes,
    nextOutcome() {
      if (claimed < outcomes.length) return Promise.resolve(outcomes[claimed++]!);
      return new Promise((resolve) => waiters.push(resolve));
    },
    async close() {
      await Promise.all(outcomes.map((o) => o.done));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A `ws` upstream server on 127.0.0.1 (ephemeral port), no compression. */
export async function startUpstream(
  onConnection: (ws: WebSocket, req: http.IncomingMessage) => void,
  options: {
    handleProtocols?: (protocols: Set<string>) => string | false;
    /** Whether `ws` answers pings itself with a pong of the same payload. @defaultValue true */
    autoPong?: boolean;
  } = {},
): Promise<{ url: string; wss: WebSocketServer; close(): Promise<void> }> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: false,
    handleProtocols: options.handleProtocols,
    autoPong: options.autoPong ?? true,
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', onConnection);
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    wss,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

/**
 * An upstream that keeps the text of every message it receives (no echo), and its connections (to
 * send from the upstream's side).
 */
export async function recordingUpstream(): Promise<{ upstream: Awaited<ReturnType<typeof startUpstream>>; received: string[]; sockets: WebSocket[] }> {
  const received: string[] = [];
  const sockets: WebSocket[] = [];
  const upstream = await startUpstream((ws) => {
    sockets.push(ws);
    ws.on('message', (data: Buffer) => received.push(data.toString()));
  });
  return { upstream, received, sockets };
}

/** An upstream that echoes every message with its own type, and every close with its code and reason. */
export function echo(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}
