/**
 * Proxy process of the soak (`node --expose-gc dist/bench/soak-proxy.js --upstream PORT`, forked by
 * bench/soak-run.ts): `ProxyServer` with default options, alone in its process, and the readings of
 * that process: memory, open files, event-loop delay, CPU. The samples are taken here, in the
 * process they describe, on its own timer; the scheduler only collects them.
 */
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { createProxyServer } from '../src/server/proxy-server.js';
import { HOST, sleep } from './common.js';
import { serveRole } from './server-ipc.js';

/** One reading of the proxy process. */
export interface ProxySample {
  /** Seconds since sampling started, by this process's clock. */
  t: number;
  /** Connections the server holds now (`connections.length`). */
  connections: number;
  rss: number;
  heapUsed: number;
  /** Memory of objects outside the JS heap (`external`) and, of it, of `ArrayBuffer`s and Buffers. */
  external: number;
  arrayBuffers: number;
  /** Open file descriptors (entries of /proc/self/fd); NaN where there is no /proc. */
  fds: number;
  /**
   * Event-loop delay since the previous sample, ms: how late a 10 ms timer fired (the histogram
   * records whole intervals, so the resolution is taken off), median, 99th percentile, largest.
   */
  delayP50: number;
  delayP99: number;
  delayMax: number;
  /** CPU time of the process since the previous sample, as a share of one core (1 = 100 %). */
  cpu: number;
}

/** A settled reading: after two full collections, no connection traffic expected. */
export interface SettledReading {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** `heapUsed` by V8 space (`code_space`: compiled code's instructions). */
  spaces: Record<string, number>;
  fds: number;
  connections: number;
}

/** How the proxied connections ended, as the server told it. */
export interface ProxyCounts {
  /** Upgrade requests answered without a connection (`'refuse'`). */
  refused: number;
  /** `'error'` events (user code or the server itself). */
  errors: number;
  /** Connections ended (`'close'`), by the summary's error code, `clean` for a close handshake. */
  endings: Record<string, number>;
}

const RESOLUTION_MS = 10;
const NS_PER_MS = 1e6;

/** Open files of this process: /proc/self/fd, less the directory handle reading it adds. */
function openFiles(): number {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return NaN;
  }
}

const { values } = parseArgs({ options: { upstream: { type: 'string' } } });
const server = createProxyServer({ target: `ws://${HOST}:${Number(values.upstream)}/` });
const counts: ProxyCounts = { refused: 0, errors: 0, endings: {} };
server.on('refuse', () => {
  counts.refused++;
});
server.on('error', () => {
  counts.errors++;
});
server.on('close', (summary) => {
  const key = summary.error?.code ?? 'clean';
  counts.endings[key] = (counts.endings[key] ?? 0) + 1;
});
const port = (await server.listen(0, HOST)).port;

const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
delay.enable();
let cpuMark = process.cpuUsage();
let timeMark = performance.now();
const gc = (globalThis as { gc?: () => void }).gc;

let samples: ProxySample[] = [];
let sampler: NodeJS.Timeout | undefined;
let startedAt = 0;

function sample(): ProxySample {
  const cpu = process.cpuUsage(cpuMark);
  const now = performance.now();
  const memory = process.memoryUsage();
  const ms = (ns: number): number => Math.max(0, ns / NS_PER_MS - RESOLUTION_MS);
  const reading: ProxySample = {
    t: Math.round((now - startedAt) / 1000),
    connections: server.connections.length,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    fds: openFiles(),
    delayP50: delay.count > 0 ? ms(delay.percentile(50)) : NaN,
    delayP99: delay.count > 0 ? ms(delay.percentile(99)) : NaN,
    delayMax: delay.count > 0 ? ms(delay.max) : NaN,
    cpu: (cpu.user + cpu.system) / 1000 / Math.max(1, now - timeMark),
  };
  delay.reset();
  cpuMark = process.cpuUsage();
  timeMark = now;
  return reading;
}

serveRole({ proxy: port }, async (command) => {
  switch (command.cmd) {
    case 'active':
      return server.connections.length;
    case 'start-sampling':
      // Sampled on this process's own timer: a reading is on time even when the IPC channel is slow.
      samples = [];
      startedAt = performance.now();
      sample();
      sampler = setInterval(() => samples.push(sample()), Number(command['intervalMs']));
      return null;
    case 'samples':
      return samples.slice(Number(command['from'] ?? 0));
    case 'stop-sampling':
      // The last interval, shorter, up to now.
      clearInterval(sampler);
      samples.push(sample());
      return samples;
    case 'settled': {
      // Two full collections with time between for the sweeper: only live objects stay counted.
      if (gc === undefined) throw new Error('run with --expose-gc');
      gc();
      await sleep(Number(command['pauseMs'] ?? 500));
      gc();
      const memory = process.memoryUsage();
      const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((space) => [space.space_name, space.space_used_size]));
      return { rss: memory.rss, heapUsed: memory.heapUsed, external: memory.external, arrayBuffers: memory.arrayBuffers, spaces, fds: openFiles(), connections: server.connections.length } satisfies SettledReading;
    }
    case 'counts':
      return counts;
    case 'snapshot':
      // For finding what stayed after the connections closed: compare the baseline's and the end's.
      return v8.writeHeapSnapshot(command['path'] as string);
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
