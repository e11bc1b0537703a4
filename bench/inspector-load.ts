/**
 * Client process of the inspector benchmark (`node dist/bench/inspector-load.js`, forked by
 * bench/inspector.ts): `ws` clients that echo binary messages through a proxy with a fixed number in
 * flight per connection. The connections are opened, exercised and closed by three commands, so
 * that the benchmark can open the inspector's page on connections that exist, between the first two.
 *
 * - `open` `{ url, connections }`: opens them (all at once), answers `{ opened, errors }`;
 * - `run` `{ size, inFlight, warmupMs, durationMs }`: each connection keeps `inFlight` messages of
 *   `size` bytes in flight; round trips that end inside the window after the warm-up are counted;
 *   then it stops sending and waits for what is in flight; answers an {@link EchoResult};
 * - `close`: closes them with 1000.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { closeClient, openClient, pool } from './clients.js';
import { percentile, sleep } from './common.js';
import { serveRole } from './server-ipc.js';

/** What a `run` measured. */
export interface EchoResult {
  /** Round trips that ended inside the measuring window. */
  messages: number;
  /** Length of the window, ms. */
  elapsedMs: number;
  /** Round-trip times of those, median and 99th percentile, ms. */
  p50: number;
  p99: number;
  /** Round trips of the whole run (warm-up and drain included): the CPU figures divide by it. */
  total: number;
  /** Client errors, wrong echo sizes, and messages still in flight when the run was cut. */
  errors: number;
  /** CPU time of this process over the run, µs. */
  cpuMicros: number;
}

/** How long the drain after the window may take before the run is cut. */
const DRAIN_CAP_MS = 30_000;

let clients: WebSocket[] = [];
let clientErrors = 0;

async function open(url: string, connections: number): Promise<{ opened: number; errors: number }> {
  clientErrors = 0;
  let failed = 0;
  const opened: WebSocket[] = [];
  await pool(connections, connections, async () => {
    try {
      opened.push(await openClient(url, 15_000, () => {
        clientErrors++;
      }));
    } catch {
      failed++;
    }
  });
  clients = opened;
  return { opened: opened.length, errors: failed };
}

/**
 * One connection's echo loop state: the send times of its messages in flight. Echoes come back in
 * order on a connection, so the oldest send time is the one a reply answers.
 */
class Flight {
  private sent: number[] = [];
  private head = 0;

  push(now: number): void {
    this.sent.push(now);
  }

  /** The send time of the oldest message in flight, which is now answered. */
  shift(): number {
    const t = this.sent[this.head++]!;
    // Drop the answered prefix now and then rather than shifting the array on every reply.
    if (this.head >= 4096) {
      this.sent = this.sent.slice(this.head);
      this.head = 0;
    }
    return t;
  }
}

async function run(size: number, inFlight: number, warmupMs: number, durationMs: number): Promise<EchoResult> {
  const payload = randomBytes(size);
  const errorsBefore = clientErrors;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const windowStart = start + warmupMs;
  const windowEnd = windowStart + durationMs;
  const latencies: number[] = [];
  let total = 0;
  let wrongSize = 0;
  let outstanding = 0;
  let sending = true;
  let drained: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    drained = resolve;
  });

  const listeners: [WebSocket, (data: Buffer) => void][] = [];
  for (const ws of clients) {
    const flight = new Flight();
    const send = (): void => {
      flight.push(performance.now());
      outstanding++;
      ws.send(payload, { binary: true, compress: false });
    };
    const onMessage = (data: Buffer): void => {
      const now = performance.now();
      const sentAt = flight.shift();
      outstanding--;
      total++;
      if (data.length !== size) wrongSize++;
      if (now >= windowStart && now <= windowEnd) latencies.push(now - sentAt);
      if (sending) send();
      else if (outstanding === 0) drained();
    };
    ws.on('message', onMessage);
    listeners.push([ws, onMessage]);
    for (let i = 0; i < inFlight; i++) send();
  }
  const stop = setTimeout(() => {
    sending = false;
    if (outstanding === 0) drained();
  }, warmupMs + durationMs);
  await Promise.race([done, sleep(warmupMs + durationMs + DRAIN_CAP_MS)]);
  clearTimeout(stop);
  for (const [ws, onMessage] of listeners) ws.off('message', onMessage);
  const cpu = process.cpuUsage(cpuStart);
  const sorted = Float64Array.from(latencies).sort();
  return {
    messages: latencies.length,
    elapsedMs: durationMs,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    total,
    errors: clientErrors - errorsBefore + wrongSize + outstanding,
    cpuMicros: cpu.user + cpu.system,
  };
}

serveRole({}, async (command) => {
  switch (command.cmd) {
    case 'open':
      return open(command['url'] as string, command['connections'] as number);
    case 'run':
      return run(command['size'] as number, command['inFlight'] as number, command['warmupMs'] as number, command['durationMs'] as number);
    case 'close': {
      await Promise.all(clients.map((ws) => closeClient(ws, 10_000)));
      clients = [];
      return null;
    }
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
