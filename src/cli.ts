#!/usr/bin/env node
/**
 * The `ws-frame-proxy` command: a proxy on a local port in front of an upstream WebSocket server, or
 * of a built-in echo server when no upstream is given (what `npm start` runs), logging every frame.
 *
 * ```
 * ws-frame-proxy [--host 127.0.0.1] [--port 9000] [--upstream ws://host:port/path] [--aggregate] [--quiet]
 * ```
 *
 * @packageDocumentation
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';
import type { Logger } from './proxy/options.js';
import { WebSocketProxy } from './proxy/websocket-proxy.js';

const USAGE = `Usage: ws-frame-proxy [options]

  --host <address>     address to listen on (default 127.0.0.1)
  --port <port>        port to listen on (default 9000; 0 picks a free one)
  --upstream <url>     ws:// or wss:// upstream (default: a built-in echo server)
  --aggregate          aggregate fragmented messages
  --quiet              do not log frames
  --help               show this help
`;

interface CliOptions {
  host: string;
  port: number;
  upstream: string | undefined;
  aggregate: boolean;
  quiet: boolean;
}

function parse(argv: string[]): CliOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '9000' },
      upstream: { type: 'string' },
      aggregate: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --port ${values.port}`);
  return { host: values.host!, port, upstream: values.upstream, aggregate: values.aggregate!, quiet: values.quiet! };
}

/** Starts the built-in echo upstream on an ephemeral loopback port; resolves with its URL. */
async function startEcho(): Promise<{ url: string; server: WebSocketServer }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/echo`, server };
}

function consoleLogger(quiet: boolean): Logger {
  const stamp = () => new Date().toISOString();
  return {
    debug: (message) => {
      if (!quiet) console.log(`${stamp()} ${message}`);
    },
    info: (message) => console.log(`${stamp()} ${message}`),
    warn: (message) => console.warn(`${stamp()} warn: ${message}`),
    error: (message) => console.error(`${stamp()} error: ${message}`),
  };
}

async function main(): Promise<void> {
  let options: CliOptions | undefined;
  try {
    options = parse(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (options === undefined) {
    console.log(USAGE);
    return;
  }
  const echo = options.upstream === undefined ? await startEcho() : undefined;
  const upstream = options.upstream ?? echo!.url;
  const logger = consoleLogger(options.quiet);
  const live = new Set<WebSocketProxy>();
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end('WebSocket upgrade required\n');
  });
  server.on('upgrade', (req, socket, head) => {
    const proxy = new WebSocketProxy({ aggregateFragments: options.aggregate, debug: true, logger });
    live.add(proxy);
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    proxy
      .connect(upstream, req, socket, head)
      .then(() => {
        logger.info(`${peer} connected`);
        return proxy.execute();
      })
      .then(
        (summary) => logger.info(`${peer} closed: ${JSON.stringify({ ...summary, error: summary.error && { code: summary.error.code, message: summary.error.message } })}`),
        (err: Error) => logger.error(`${peer} ${err.message}`),
      )
      .finally(() => live.delete(proxy));
  });
  server.on('error', (err) => {
    console.error(`cannot listen on ${options.host}:${options.port}: ${err.message}`);
    process.exitCode = 1;
    echo?.server.close();
  });
  server.listen(options.port, options.host, () => {
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `ws://${host}:${address.port}/`;
    console.log(`ws-frame-proxy listening on ${url}, forwarding to ${upstream}${echo ? ' (built-in echo server)' : ''}`);
    console.log(`Try it:  node -e "const ws = new (require('ws'))('${url}'); ws.on('open', () => ws.send('hello')); ws.on('message', (m) => { console.log(String(m)); ws.close(); })"`);
    console.log('Press Ctrl+C to stop.');
  });
  const stop = () => {
    console.log('stopping');
    for (const proxy of live) proxy.close(1001, 'proxy shutting down');
    server.close();
    echo?.server.close();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

void main();
