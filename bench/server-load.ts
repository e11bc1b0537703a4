/**
 * Client process of the server benchmark (`node dist/bench/server-load.js`, forked by
 * bench/server.ts): `ws` clients that open and close connections as fast as they can, or open many
 * and keep them idle.
 */
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { closeClient, openClient, pool } from './clients.js';
import { percentile } from './common.js';
import { serveRole } from './server-ipc.js';

/** What a handshake run measured. */
export interface HandshakeResult {
  /** Open + close cycles completed inside the measuring window. */
  cycles: number;
  /** Length of the window, ms. */
  elapsedMs: number;
  /** Time from `new WebSocket()` to `'open'` of the cycles in the window, median and 99th percentile, ms. */
  openP50: number;
  openP99: number;
  /** Time of a whole cycle (open, close handshake, TCP closed), median, ms. */
  cycleP50: number;
  /** Failed opens and cycles cut by the 10 s guard. */
  errors: number;
  /** Cycles of the whole run (warm-up included). */
  total: number;
  /** CPU time of this process over the run, µs. */
  cpuMicros: number;
}

/** What opening idle connections did. */
export interface IdleResult {
  opened: number;
  errors: number;
}

const GUARD_MS = 10_000;

/** Opens a connection; after it is open, an error (a reset) only ends it: its 'close' still follows. */
function open(url: string): Promise<WebSocket> {
  return openClient(url, GUARD_MS, () => {});
}

/** Closes a connection with 1000; resolves once its socket is closed, or terminated after the guard. */
function close(ws: WebSocket): Promise<void> {
  return closeClient(ws, GUARD_MS);
}

async function handshakes(url: string, concurrency: number, warmupMs: number, durationMs: number): Promise<HandshakeResult> {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const windowStart = start + warmupMs;
  const windowEnd = windowStart + durationMs;
  const opens: number[] = [];
  const cycles: number[] = [];
  let errors = 0;
  let total = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < windowEnd) {
      const t0 = performance.now();
      let ws: WebSocket;
      try {
        ws = await open(url);
      } catch {
        errors++;
        continue;
      }
      const t1 = performance.now();
      await close(ws);
      const t2 = performance.now();
      total++;
      // A cycle counts when it ended inside the window.
      if (t2 >= windowStart && t2 <= windowEnd) {
        opens.push(t1 - t0);
        cycles.push(t2 - t0);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpuStart);
  const sortedOpens = Float64Array.from(opens).sort();
  return {
    cycles: cycles.length,
    elapsedMs: durationMs,
    openP50: percentile(sortedOpens, 0.5),
    openP99: percentile(sortedOpens, 0.99),
    cycleP50: percentile(Float64Array.from(cycles).sort(), 0.5),
    errors,
    total,
    cpuMicros: cpu.user + cpu.system,
  };
}

let idle: WebSocket[] = [];

async function openIdle(url: string, count: number, concurrency: number): Promise<IdleResult> {
  let errors = 0;
  await pool(count, concurrency, async () => {
    try {
      idle.push(await open(url));
    } catch {
      errors++;
    }
  });
  return { opened: idle.length, errors };
}

serveRole({}, async (command) => {
  switch (command.cmd) {
    case 'handshakes':
      return handshakes(command['url'] as string, command['concurrency'] as number, command['warmupMs'] as number, command['durationMs'] as number);
    case 'open-idle':
      return openIdle(command['url'] as string, command['count'] as number, command['concurrency'] as number);
    case 'close-idle': {
      // In batches: 10,000 close handshakes at once would only queue up in the proxy.
      for (let i = 0; i < idle.length; i += 500) await Promise.all(idle.slice(i, i + 500).map(close));
      idle = [];
      return null;
    }
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
