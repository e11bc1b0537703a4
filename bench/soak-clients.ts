/**
 * Client process of the soak (`node dist/bench/soak-clients.js`, forked by bench/soak-run.ts):
 * many `ws` clients with seeded random traffic and churn. Each connection sends messages of random
 * size and kind (binary, text, some in fragments) at its own random pace, and checks that each
 * echo comes back with the size it sent; every second a random share of the connections closes
 * (a close handshake with a random code, or a TCP reset) and as many new ones open.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { SeededRandom } from '../test/helpers/random.js';
import { closeClient, openClient, pool } from './clients.js';
import { percentile, sleep } from './common.js';
import { serveRole } from './server-ipc.js';

/** The traffic and churn of a run; every draw comes from `seed`. */
export interface TrafficPlan {
  seed: number;
  /** Each connection's mean pause between two messages is drawn log-uniformly in this range, ms. */
  minPeriodMs: number;
  maxPeriodMs: number;
  /** Share of the open connections replaced per `churnWindowMs`, drawn anew each window in this range. */
  churnMin: number;
  churnMax: number;
  churnWindowMs: number;
}

/** Counters of the clients over one sampling interval. */
export interface ClientStats {
  /** Length of the interval, ms. */
  ms: number;
  /** Connections open now. */
  open: number;
  sent: number;
  echoed: number;
  /** Connections opened and closed by the churn. */
  churnOpened: number;
  churnClosed: number;
  /** Round trips of the echoes, ms. */
  rttP50: number;
  rttP99: number;
}

/**
 * What went wrong, over everything this process did: any non-zero count is a failed connection
 * or a lost message.
 */
export interface ClientFailures {
  /** Handshakes that failed or timed out. */
  openFailed: number;
  /** Connections that closed or erred without this process closing them. */
  unexpectedClose: number;
  /** Echoes of another size than the message sent. */
  badEcho: number;
  /** Echoes still missing, on connections still open, after the drain wait. */
  missing: number;
}

interface Conn {
  ws: WebSocket;
  /** Sizes of the messages sent whose echo has not come back, oldest first, and their send times. */
  sizes: number[];
  times: number[];
  meanPeriodMs: number;
  /** True once this process closes it: what follows is expected. */
  closing: boolean;
}

const GUARD_MS = 15_000;
const TICK_MS = 50;
const CHURN_TICK_MS = 1000;
const DRAIN_MS = 30_000;
const OPEN_CONCURRENCY = 50;
/** Valid close codes a client may send (RFC 6455 section 7.4: 1000, 1001, and 3000-4999 for applications). */
const CLOSE_CODES = [1000, 1000, 1001, 3000, 4000, 4999];

// One buffer of random bytes and one of ASCII: messages are slices of them (ws copies when masking).
const BINARY = new SeededRandom(1).bytes(65536);
const TEXT = Buffer.alloc(65536, 'soak text. ');

let random = new SeededRandom(0);
let plan: TrafficPlan | undefined;
let url = '';
const conns = new Set<Conn>();
const failures: ClientFailures = { openFailed: 0, unexpectedClose: 0, badEcho: 0, missing: 0 };
let window: ClientStats = emptyStats();
let rtts: number[] = [];
let running = false;
let windows: ClientStats[] = [];
let windowTimer: NodeJS.Timeout | undefined;
let windowStart = performance.now();

/** The counters since the previous call, and a new window. */
function closeWindow(): ClientStats {
  const sorted = Float64Array.from(rtts).sort();
  const now = performance.now();
  const stats: ClientStats = { ...window, ms: now - windowStart, open: conns.size, rttP50: percentile(sorted, 0.5), rttP99: percentile(sorted, 0.99) };
  window = emptyStats();
  rtts = [];
  windowStart = now;
  return stats;
}

function emptyStats(): ClientStats {
  return { ms: 0, open: 0, sent: 0, echoed: 0, churnOpened: 0, churnClosed: 0, rttP50: NaN, rttP99: NaN };
}

/** A size: mostly small, some of a few KiB, a few up to 64 KiB (about 1.4 KB on average). */
function drawSize(): number {
  const r = random.next();
  if (r < 0.7) return random.int(1, 128);
  if (r < 0.95) return random.int(129, 4096);
  if (r < 0.99) return random.int(4097, 16384);
  return random.int(16385, 65536);
}

/** A pause around the connection's mean (half to one and a half of it). */
function drawPause(conn: Conn): number {
  return conn.meanPeriodMs * (0.5 + random.next());
}

function send(conn: Conn): void {
  if (conn.closing || conn.ws.readyState !== WebSocket.OPEN) return;
  const size = drawSize();
  const binary = random.chance(0.85);
  const data = (binary ? BINARY : TEXT).subarray(0, size);
  conn.sizes.push(size);
  conn.times.push(performance.now());
  window.sent++;
  if (size >= 2 && random.chance(0.1)) {
    // In two fragments: the proxy relays them one by one, the upstream echoes one message.
    const cut = random.int(1, size - 1);
    conn.ws.send(data.subarray(0, cut), { binary, fin: false, compress: false });
    conn.ws.send(data.subarray(cut), { binary, fin: true, compress: false });
  } else {
    conn.ws.send(data, { binary, compress: false });
  }
}

async function openOne(): Promise<void> {
  let ws: WebSocket;
  try {
    // An error after the open is followed by 'close', where it is counted.
    ws = await openClient(url, GUARD_MS, () => {});
  } catch {
    failures.openFailed++;
    return;
  }
  const { minPeriodMs, maxPeriodMs } = plan!;
  const conn: Conn = {
    ws,
    sizes: [],
    times: [],
    meanPeriodMs: minPeriodMs * Math.exp(random.next() * Math.log(maxPeriodMs / minPeriodMs)),
    closing: false,
  };
  ws.on('message', (data: Buffer) => {
    const size = conn.sizes.shift();
    rtts.push(performance.now() - conn.times.shift()!);
    window.echoed++;
    if (size !== data.length) failures.badEcho++;
  });
  ws.once('close', () => {
    conns.delete(conn);
    if (!conn.closing) failures.unexpectedClose++;
    conn.closing = true;
  });
  conns.add(conn);
  schedule(conn, random.next() * conn.meanPeriodMs);
}

// A timing wheel: connections by the tick of their next send, so a tick touches only those due.
const wheel = new Map<number, Conn[]>();
let tickNow = 0;

function schedule(conn: Conn, delayMs: number): void {
  const slot = Math.max(tickNow + 1, Math.floor((performance.now() + delayMs) / TICK_MS));
  const list = wheel.get(slot);
  if (list === undefined) wheel.set(slot, [conn]);
  else list.push(conn);
}

function tick(): void {
  const until = Math.floor(performance.now() / TICK_MS);
  for (; tickNow <= until; tickNow++) {
    const due = wheel.get(tickNow);
    if (due === undefined) continue;
    wheel.delete(tickNow);
    for (const conn of due) {
      if (conn.closing) continue;
      if (running) send(conn);
      schedule(conn, drawPause(conn));
    }
  }
}

/** Replaces `count` random open connections: a close handshake (random code) or a TCP reset. */
async function churn(count: number): Promise<void> {
  const open = [...conns].filter((c) => !c.closing);
  const closes: Promise<void>[] = [];
  for (let i = 0; i < count && open.length > 0; i++) {
    const [conn] = open.splice(random.int(0, open.length - 1), 1);
    conn!.closing = true;
    window.churnClosed++;
    if (random.chance(0.25)) {
      conn!.ws.terminate();
    } else {
      const code = random.pick(CLOSE_CODES);
      closes.push(new Promise((resolve) => {
        conn!.ws.once('close', () => resolve());
        conn!.ws.close(code === 3000 ? random.int(3000, 4999) : code);
      }));
    }
  }
  await pool(count, OPEN_CONCURRENCY, async () => {
    await openOne();
    window.churnOpened++;
  });
  await Promise.all(closes);
}

async function run(durationMs: number): Promise<void> {
  running = true;
  const end = performance.now() + durationMs;
  let share = 0;
  let windowEnd = 0;
  while (performance.now() < end) {
    const started = performance.now();
    if (started >= windowEnd) {
      share = plan!.churnMin + random.next() * (plan!.churnMax - plan!.churnMin);
      windowEnd = started + plan!.churnWindowMs;
    }
    // Whole connections: the fraction left over is a draw, so the mean rate is the share asked.
    const exact = (conns.size * share * CHURN_TICK_MS) / plan!.churnWindowMs;
    await churn(Math.floor(exact) + (random.chance(exact % 1) ? 1 : 0));
    await sleep(Math.max(0, Math.min(CHURN_TICK_MS - (performance.now() - started), end - performance.now())));
  }
  running = false;
}

/** Waits for the echoes in flight; counts those still missing on open connections. */
async function drain(): Promise<void> {
  const outstanding = (): number => [...conns].reduce((n, c) => n + (c.closing ? 0 : c.sizes.length), 0);
  const deadline = Date.now() + DRAIN_MS;
  while (outstanding() > 0 && Date.now() < deadline) await sleep(50);
  failures.missing += outstanding();
}

/** Closes every connection with 1000, in batches (10,000 close handshakes at once would only queue up). */
async function closeAll(): Promise<void> {
  const all = [...conns];
  for (const conn of all) conn.closing = true;
  for (let i = 0; i < all.length; i += 500) await Promise.all(all.slice(i, i + 500).map((c) => closeClient(c.ws, GUARD_MS)));
  conns.clear();
}

const ticker = setInterval(tick, TICK_MS);
ticker.unref();

serveRole({}, async (command) => {
  switch (command.cmd) {
    case 'plan':
      plan = command['plan'] as TrafficPlan;
      random = new SeededRandom(plan.seed);
      url = command['url'] as string;
      return null;
    case 'open': {
      await pool(command['count'] as number, Number(command['concurrency'] ?? OPEN_CONCURRENCY), openOne);
      return conns.size;
    }
    case 'run':
      await run(command['durationMs'] as number);
      return null;
    case 'start-windows':
      // Counted on this process's own timer, in step with the proxy's samples.
      closeWindow();
      windows = [];
      windowTimer = setInterval(() => windows.push(closeWindow()), Number(command['intervalMs']));
      return null;
    case 'stop-windows':
      clearInterval(windowTimer);
      windows.push(closeWindow());
      return windows;
    case 'drain':
      await drain();
      return null;
    case 'close':
      await closeAll();
      return null;
    case 'failures':
      return failures;
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
