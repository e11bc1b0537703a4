/**
 * The relays the benchmarks compare, in the calling process: a raw TCP pipe, the baseline
 * (`socket.pipe(upstream).pipe(socket)`), and a `WebSocketProxy` in a bare `'upgrade'` handler
 * (connect, execute: no routes, no bookkeeping). bench/proxy, bench/relay-cpu and the server
 * benchmark's proxy process run these same two.
 */
import http from 'node:http';
import net from 'node:net';
import type { ProxyOptions } from '../src/proxy/options.js';
import { WebSocketProxy } from '../src/proxy/websocket-proxy.js';
import { HOST, listen } from './common.js';

/** A relay under test, listening, with what it counts. */
export interface Relay {
  port: number;
  /** Connections accepted and not yet finished. */
  active: number;
  /** Connections whose `execute()` is running (always 0 for the pipe). */
  executing: number;
  /** Connections that failed: a refused or failed handshake, a socket error. */
  failures: number;
  close(): void;
}

/**
 * A raw TCP pipe to the upstream: bytes relayed untouched, both ways.
 *
 * @param upstreamPort - the upstream's port on {@link HOST}
 * @param backlog - the listening socket's backlog
 */
export async function startTcpPipe(upstreamPort: number, backlog: number): Promise<Relay> {
  const state: Relay = { port: 0, active: 0, executing: 0, failures: 0, close: () => server.close() };
  const server = net.createServer({ noDelay: true }, (socket) => {
    state.active++;
    const upstream = net.connect({ host: HOST, port: upstreamPort, noDelay: true });
    socket.pipe(upstream).pipe(socket);
    const fail = (): void => {
      state.failures++;
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', fail);
    upstream.on('error', fail);
    socket.on('close', () => {
      state.active--;
    });
  });
  state.port = await listen(server, backlog);
  return state;
}

/**
 * A `WebSocketProxy` per upgrade request, to one upstream; plain requests are answered 426.
 *
 * @param upstreamUrl - the upstream's URL
 * @param options - the proxies' options
 * @param backlog - the listening socket's backlog
 */
export async function startWsProxy(upstreamUrl: string, options: ProxyOptions<WebSocketProxy>, backlog: number): Promise<Relay> {
  const server = http.createServer((_req, res) => {
    res.writeHead(426).end();
  });
  const state: Relay = { port: 0, active: 0, executing: 0, failures: 0, close: () => server.close() };
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    state.active++;
    const proxy = new WebSocketProxy(options);
    proxy.connect(upstreamUrl, req, socket, head).then(
      () => {
        state.executing++;
        return proxy.execute().finally(() => {
          state.executing--;
        });
      },
    ).catch(() => {
      state.failures++;
    }).finally(() => {
      state.active--;
    });
  });
  state.port = await listen(server, backlog);
  return state;
}
