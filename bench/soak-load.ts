/**
 * Client process of the proxy soak (`node dist/bench/soak-load.js`, forked by bench/proxy-soak.ts):
 * many `ws` clients that each send a small binary message every few seconds and wait for its echo.
 * It runs apart from the proxy so that the proxy process's memory and CPU are the proxy's alone.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { closeClient, openClient, pool } from './clients.js';
import { percentile, sleep } from './common.js';
import { serveRole } from './server-ipc.js';

/** What opening the connections did. */
export interface SoakOpenResult {
  opened: number;
  errors: number;
}

/** What the exchanges measured. */
export interface SoakExchangeResult {
  /** Messages sent, and echoes received (of the right size or not). */
  sent: number;
  echoed: number;
  /** Echoes of the wrong size, client errors, connections closed during the exchange. */
  errors: number;
  /** Echoes still missing when the wait after the last send ended. */
  missing: number;
  /** Round-trip times, ms. */
  p50: number;
  p99: number;
  max: number;
  /**
   * The same once every connection has sent at least once (messages sent after the longest
   * period): the first message on each idle connection is slower, and they all come in the first
   * seconds.
   */
  steadyP99: number;
  steadyMax: number;
  /** CPU time of this process over the exchange, µs. */
  cpuMicros: number;
}

/** Parameters of an exchange. */
export interface SoakExchange {
  size: number;
  durationMs: number;
  /** Each connection sends every `minPeriodMs` to `maxPeriodMs`, its own period, fixed. */
  minPeriodMs: number;
  maxPeriodMs: number;
}

const GUARD_MS = 15_000;
/** How long echoes still in flight after the last send are waited for. */
const DRAIN_MS = 30_000;

let clients: WebSocket[] = [];
let errors = 0;
const onError = (): void => {
  errors++;
};

async function open(url: string, count: number, concurrency: number): Promise<SoakOpenResult> {
  let failed = 0;
  await pool(count, concurrency, async () => {
    try {
      clients.push(await openClient(url, GUARD_MS, onError));
    } catch {
      failed++;
    }
  });
  return { opened: clients.length, errors: failed };
}

/**
 * Connection i of n sends with a period spread evenly over [min, max] (in 10 ms steps, so that Node
 * keeps a few hundred timer lists, not one per connection), first after a delay spread evenly over
 * its period: the aggregate rate is flat from the first second, about n / mean period.
 */
async function exchange(command: SoakExchange): Promise<SoakExchangeResult> {
  const payload = randomBytes(command.size);
  const cpuStart = process.cpuUsage();
  const errorsBefore = errors;
  const latencies: number[] = [];
  const steady: number[] = [];
  const steadyFrom = performance.now() + command.maxPeriodMs;
  const timers: NodeJS.Timeout[] = [];
  let sent = 0;
  let echoed = 0;
  let bad = 0;
  let closed = 0;
  let outstanding = 0;
  const onClose = (): void => {
    closed++;
  };
  const n = clients.length;
  const range = command.maxPeriodMs - command.minPeriodMs;
  for (const [i, ws] of clients.entries()) {
    const period = command.minPeriodMs + Math.round((range * i) / Math.max(1, n - 1) / 10) * 10;
    // Echoes come back in order on one connection: a FIFO of send times gives each round trip.
    const times: number[] = [];
    const send = (): void => {
      if (ws.readyState !== ws.OPEN) return;
      times.push(performance.now());
      sent++;
      outstanding++;
      ws.send(payload, { binary: true, compress: false });
    };
    ws.on('message', (data: Buffer) => {
      const sentAt = times.shift()!;
      const latency = performance.now() - sentAt;
      latencies.push(latency);
      if (sentAt >= steadyFrom) steady.push(latency);
      echoed++;
      outstanding--;
      if (data.length !== command.size) bad++;
    });
    ws.once('close', onClose);
    timers.push(setTimeout(() => {
      send();
      timers.push(setInterval(send, period));
    }, Math.floor((period * i) / Math.max(1, n))));
  }
  await sleep(command.durationMs);
  for (const timer of timers) clearTimeout(timer);
  const deadline = Date.now() + DRAIN_MS;
  while (outstanding > 0 && Date.now() < deadline) await sleep(50);
  for (const ws of clients) {
    ws.removeAllListeners('message');
    ws.off('close', onClose);
  }
  const cpu = process.cpuUsage(cpuStart);
  const sorted = Float64Array.from(latencies).sort();
  const sortedSteady = Float64Array.from(steady).sort();
  return {
    sent,
    echoed,
    errors: bad + closed + (errors - errorsBefore),
    missing: outstanding,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : NaN,
    steadyP99: percentile(sortedSteady, 0.99),
    steadyMax: sortedSteady.length > 0 ? sortedSteady[sortedSteady.length - 1]! : NaN,
    cpuMicros: cpu.user + cpu.system,
  };
}

serveRole({}, async (command) => {
  switch (command.cmd) {
    case 'open':
      return open(command['url'] as string, command['count'] as number, command['concurrency'] as number);
    case 'exchange':
      return exchange(command as unknown as SoakExchange);
    case 'close': {
      // In batches: 10,000 close handshakes at once would only queue up in the proxy.
      for (let i = 0; i < clients.length; i += 500) await Promise.all(clients.slice(i, i + 500).map((ws) => closeClient(ws, GUARD_MS)));
      clients = [];
      return null;
    }
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
