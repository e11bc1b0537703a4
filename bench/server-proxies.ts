/**
 * Proxy process of the server benchmark (`node --expose-gc dist/bench/server-proxies.js --upstream
 * PORT --rows bcd`, forked by bench/server.ts): the proxies under test, and nothing else, so that
 * this process's CPU time and memory are theirs.
 *
 * - (b) a raw TCP pipe (`socket.pipe(upstream).pipe(socket)`), the baseline;
 * - (c) `WebSocketProxy` in a bare `'upgrade'` handler (connect, execute: no routes, no bookkeeping);
 * - (d) `ProxyServer`: `createProxyServer({ target }).listen()`, default options.
 */
import { parseArgs } from 'node:util';
import { createProxyServer } from '../src/server/proxy-server.js';
import { HOST, sleep } from './common.js';
import { type Relay, startTcpPipe, startWsProxy } from './relays.js';
import { serveRole } from './server-ipc.js';

/** A proxy under test: its port, the connections it holds now, and the failures so far. */
type Running = Pick<Relay, 'port' | 'active' | 'failures'>;

async function startProxyServer(upstreamUrl: string): Promise<Running> {
  const proxy = createProxyServer({ target: upstreamUrl });
  const state: Running = {
    port: 0,
    // Its live connections.
    get active() {
      return proxy.connections.length;
    },
    failures: 0,
  };
  proxy.on('refuse', () => {
    state.failures++;
  });
  proxy.on('error', () => {
    state.failures++;
  });
  state.port = (await proxy.listen(0, HOST)).port;
  return state;
}

const { values } = parseArgs({ options: { upstream: { type: 'string' }, rows: { type: 'string', default: 'bcd' } } });
const upstreamPort = Number(values.upstream);
const upstreamUrl = `ws://${HOST}:${upstreamPort}/`;
const running = new Map<string, Running>();
for (const row of values.rows ?? '') {
  if (row === 'b') running.set(row, await startTcpPipe(upstreamPort, 4096));
  else if (row === 'c') running.set(row, await startWsProxy(upstreamUrl, {}, 4096));
  else if (row === 'd') running.set(row, await startProxyServer(upstreamUrl));
}

const gc = (globalThis as { gc?: () => void }).gc;

serveRole(Object.fromEntries([...running].map(([row, r]) => [row, r.port])), async (command) => {
  switch (command.cmd) {
    case 'active':
      return Object.fromEntries([...running].map(([row, r]) => [row, r.active]));
    case 'failures':
      return Object.fromEntries([...running].map(([row, r]) => [row, r.failures]));
    case 'cpu': {
      const cpu = process.cpuUsage();
      return cpu.user + cpu.system;
    }
    case 'memory': {
      // Settled figures: two full collections, with time between for the sweeper.
      if (gc === undefined) throw new Error('run with --expose-gc');
      gc();
      await sleep(500);
      gc();
      return process.memoryUsage();
    }
    case 'memory-now':
      // Unsettled, for a peak sampled while connections are busy: a forced GC would disturb them.
      return process.memoryUsage();
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
