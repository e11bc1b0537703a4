/**
 * Allocation count: the bytes the proxy's own code (src/) allocates per 1 MiB round trip, one `ws`
 * client echoing through a WebSocketProxy to a `ws` echo server, all in this process.
 *
 * `Buffer.alloc`, `allocUnsafe`, `allocUnsafeSlow` and `concat` are wrapped; a call is counted when
 * its direct caller is a file under src/ (the client's and the echo server's `ws` code, Node's
 * socket reads and the wrappers' own callers elsewhere are not), and only from 4 KiB up: small
 * buffers (headers, control frames) are not what this measures. Run by hand:
 * `npx tsc -p tsconfig.json --outDir dist-x && node dist-x/bench/alloc.js [--messages N] [--size BYTES]`.
 */
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import type { ProxyOptions } from '../src/proxy/options.js';
import { WebSocketProxy } from '../src/proxy/websocket-proxy.js';

const COUNT_FROM = 4096;
const counted = { bytes: 0, calls: 0, on: false };

/** Whether the function that called the wrapper lives under src/. */
function calledFromSrc(): boolean {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, calledFromSrc);
  // Line 0 is "Error", line 1 the wrapper, line 2 its caller.
  const caller = holder.stack?.split('\n')[2] ?? '';
  return caller.includes('/src/') && !caller.includes('node_modules');
}

function wrap(name: 'alloc' | 'allocUnsafe' | 'allocUnsafeSlow'): void {
  const original = Buffer[name] as (size: number, ...rest: unknown[]) => Buffer;
  (Buffer as unknown as Record<string, unknown>)[name] = function wrapped(size: number, ...rest: unknown[]): Buffer {
    if (counted.on && size >= COUNT_FROM && calledFromSrc()) {
      counted.bytes += size;
      counted.calls++;
    }
    return original.call(Buffer, size, ...rest);
  };
}

for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) wrap(name);
const originalConcat = Buffer.concat;
(Buffer as unknown as Record<string, unknown>).concat = function concat(list: readonly Uint8Array[], totalLength?: number): Buffer {
  const out = originalConcat.call(Buffer, list, totalLength);
  if (counted.on && out.length >= COUNT_FROM && calledFromSrc()) {
    counted.bytes += out.length;
    counted.calls++;
  }
  return out;
};

async function listen(server: http.Server | WebSocketServer): Promise<number> {
  if (server instanceof WebSocketServer) {
    await once(server, 'listening');
    return (server.address() as net.AddressInfo).port;
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

async function measure(label: string, options: ProxyOptions<WebSocketProxy>, messages: number, size: number): Promise<void> {
  const echo = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 2 * size });
  echo.on('connection', (ws) => ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary })));
  const upstream = `ws://127.0.0.1:${await listen(echo)}/`;
  const server = http.createServer();
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const proxy = new WebSocketProxy(options);
    proxy.connect(upstream, req, socket, head).then(() => proxy.execute()).catch(() => undefined);
  });
  const port = await listen(server);
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false, maxPayload: 2 * size });
  await once(client, 'open');
  const payload = Buffer.alloc(size, 0x61);
  const roundTrip = async (): Promise<void> => {
    client.send(payload, { binary: true });
    const [data] = (await once(client, 'message')) as [Buffer];
    if (data.length !== size) throw new Error(`echo of ${data.length} bytes`);
  };
  for (let i = 0; i < 5; i++) await roundTrip(); // warm-up, not counted
  counted.bytes = 0;
  counted.calls = 0;
  counted.on = true;
  for (let i = 0; i < messages; i++) await roundTrip();
  counted.on = false;
  const perTrip = counted.bytes / messages;
  console.log(`| ${label} | ${(perTrip / size).toFixed(2)} x the payload | ${(counted.calls / messages).toFixed(1)} |`);
  client.close();
  await once(client, 'close');
  server.close();
  echo.close();
}

const { values } = parseArgs({
  options: { messages: { type: 'string', default: '50' }, size: { type: 'string', default: String(1024 * 1024) } },
});
const messages = Number(values.messages);
const size = Number(values.size);
console.log(`${messages} round trips of ${size} bytes; bytes allocated by src/ per round trip (calls of ${COUNT_FROM} B and up)\n`);
console.log('| proxy | bytes per round trip | allocations per round trip |');
console.log('|---|---:|---:|');
await measure('no aggregation, no onFrame', {}, messages, size);
await measure('aggregateFragments, pass-through onFrame', { aggregateFragments: true, onFrame: (_p, _r, _t, payload) => payload }, messages, size);
