/**
 * The soak through `ProxyServer`, as a function: bench/soak.ts runs it for 10 minutes with 10,000
 * connections, test/soak.spec.ts for 30 s with 1,000.
 *
 * Three processes besides the caller, so that the proxy's readings are the proxy's alone: the proxy
 * (bench/soak-proxy.ts, `--expose-gc`), the clients (bench/soak-clients.ts), the `ws` echo upstream
 * (bench/server-upstream.ts). Each holds at most two sockets per connection.
 *
 * 1. Warm-up, not counted: a few connections with busy traffic and churn, then closed (the paths
 *    compiled, V8's spaces grown).
 * 2. Baseline: the proxy's heap and open files after two full GCs.
 * 3. N connections opened (read again: idle, dormant).
 * 4. Traffic and churn for the duration; the proxy samples itself every `sampleMs`.
 * 5. Echoes in flight drained; read with the connections open (what they hold: the heap
 *    tolerance's base); every connection closed; after `settleMs`, the heap and open files after
 *    two full GCs again, against the baseline.
 */
import { fileURLToPath } from 'node:url';
import { idleFit, sleep, waitFor } from './common.js';
import { type RoleProcess, forkRole } from './server-ipc.js';
import type { ClientFailures, ClientStats, TrafficPlan } from './soak-clients.js';
import type { ProxyCounts, ProxySample, SettledReading } from './soak-proxy.js';

/** What a soak runs. */
export interface SoakParams {
  /** Connections asked for (fewer when the open-files limit is too low: see {@link SoakResult.note}). */
  connections: number;
  /** Length of the traffic and churn, ms. */
  durationMs: number;
  /** Time between two samples. */
  sampleMs: number;
  /** Connections of the warm-up, and its length. */
  warmupConnections: number;
  warmupMs: number;
  /** Pause between the last close and the final reading (V8 gives back empty pages meanwhile). */
  settleMs: number;
  /** Pause between the two GCs of a settled reading. */
  gcPauseMs: number;
  /** Traffic and churn (the seed among them). */
  plan: TrafficPlan;
  /** Node flags of the proxy process besides `--expose-gc`, e.g. `['--cpu-prof']`. */
  proxyFlags?: string[];
  /** When set, heap snapshots of the proxy at the baseline, after the traffic (open) and at the end are written there. */
  snapshotDir?: string;
  /** Handshakes under way at once while the connections open (the churn's are 50). */
  openConcurrency: number;
  /** Called at each phase (for progress lines). */
  onPhase?: (phase: string) => void;
  /** Called with each sample of the proxy soon after it is taken (for progress lines). */
  onProgress?: (sample: ProxySample) => void;
}

/**
 * One row of samples: the proxy's reading (its `t`: seconds since the traffic started) and the
 * clients' counters over the same interval (each process counts on its own timer, both started
 * together).
 */
export interface SoakRow extends ProxySample {
  clients: ClientStats;
}

/** The return to baseline of one figure. */
export interface Check {
  baseline: number;
  /** With the connections open after the traffic (settled). */
  open: number;
  /** After the connections closed and `settleMs` passed (settled). */
  end: number;
  /** Largest `end - baseline` that passes. */
  allowed: number;
  pass: boolean;
}

/** What a soak measured. */
export interface SoakResult {
  /** Connections held (the count asked, or what the open-files limit allows). */
  connections: number;
  /** Why fewer connections than asked, else undefined. */
  note: string | undefined;
  rows: SoakRow[];
  /**
   * Settled readings: after the warm-up (baseline), with the connections just opened (idle:
   * dormant), after the traffic with the connections still open (loaded), just closed, and
   * `settleMs` later (end).
   */
  readings: { baseline: SettledReading; open: SettledReading; loaded: SettledReading; closed: SettledReading; end: SettledReading };
  fds: Check;
  heap: Check;
  failures: ClientFailures;
  counts: ProxyCounts;
  /** Connections the churn replaced over the run. */
  churned: number;
}

/**
 * The traffic and churn of `npm run bench:soak` and of its test: a message every 5 to 60 s per
 * connection on average (log-uniform: about 740 messages/s for 10,000 connections), 1-5 % of the
 * connections replaced per 10 s. The pace keeps the proxy below saturation on a shared 2-core
 * machine, so that the soak measures the proxy over time rather than a backlog.
 */
export const DEFAULT_PLAN: TrafficPlan = { seed: 1, minPeriodMs: 5000, maxPeriodMs: 60_000, churnMin: 0.01, churnMax: 0.05, churnWindowMs: 10_000 };

/**
 * Tolerances of the return to baseline.
 *
 * - Open files: none. Every socket of every connection is closed once the server holds no
 *   connection; one left open is a leak, whatever the count.
 * - JS heap (after two full GCs only live objects count): a fixed {@link CODE_ALLOWANCE} plus
 *   {@link HEAP_TOLERANCE} of what the connections held after the traffic. V8 goes on compiling
 *   and optimising the proxy's paths during the run, after the warm-up: heap snapshots of the proxy
 *   at the baseline and at the end of 1,000-connection runs (`--snapshots`) differ by 0.7-1.0 MiB,
 *   all of it code objects (instructions, deoptimisation data, relocation info) and about 0.1 MiB
 *   of array capacity grown to the peak, and no object of a connection. The 2 % fails when one
 *   object of a few hundred bytes per connection stays (10,000 connections hold about 30 KiB each
 *   after traffic), or one connection in fifty kept whole.
 */
export const FD_TOLERANCE = 0;
/** Share of the heap the connections held that may stay: see {@link FD_TOLERANCE}. */
export const HEAP_TOLERANCE = 0.02;
/** Bytes of heap allowed for code V8 compiles during the run: see {@link FD_TOLERANCE}. */
export const CODE_ALLOWANCE = 2 * 2 ** 20;

/**
 * The proxy process holds two sockets per connection and files of its own; the churn opens a
 * connection's replacement while the old one closes, so a few hundred more are kept in reserve.
 */
const FD_RESERVE = 512;

/** Failed handshakes, connections closed unasked, wrong or missing echoes, refusals and errors at the proxy. */
export function failureCount(result: SoakResult): number {
  const f = result.failures;
  return f.openFailed + f.unexpectedClose + f.badEcho + f.missing + result.counts.refused + result.counts.errors;
}

function role(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

function check(baseline: number, open: number, end: number, allowed: number): Check {
  return { baseline, open, end, allowed, pass: end - baseline <= allowed };
}

/** Runs a soak; the processes it starts have exited when it settles. */
export async function soak(params: SoakParams): Promise<SoakResult> {
  const fit = idleFit(params.connections, FD_RESERVE);
  const note = fit.limit < fit.need
    ? `ulimit -n is ${fit.limit} (the hard limit; ${params.connections} connections need ${fit.need} files in the proxy process): ${fit.count} connections instead`
    : undefined;
  const started: RoleProcess[] = [];
  try {
    const upstream = await forkRole(role('server-upstream'), []);
    started.push(upstream);
    const proxy = await forkRole(role('soak-proxy'), ['--upstream', String(upstream.ports['upstream'])], ['--expose-gc', ...(params.proxyFlags ?? [])]);
    started.push(proxy);
    const clients = await forkRole(role('soak-clients'), []);
    started.push(clients);

    const active = (): Promise<number> => proxy.request<number>({ cmd: 'active' });
    const settled = (): Promise<SettledReading> => proxy.request<SettledReading>({ cmd: 'settled', pauseMs: params.gcPauseMs });
    const closeAll = async (): Promise<void> => {
      await clients.request({ cmd: 'drain' });
      await clients.request({ cmd: 'close' });
      await waitFor('the proxied connections to close', async () => (await active()) === 0, 60_000, 50);
    };
    const url = `ws://127.0.0.1:${proxy.ports['proxy']}/`;
    // The warm-up is busier than the run (a message every 20-200 ms, a tenth to a fifth of the
    // connections replaced per second), so that V8 has compiled the hot paths before the baseline:
    // code compiled during the run would stay in the heap after every connection is gone.
    const warmup: TrafficPlan = { seed: params.plan.seed + 1, minPeriodMs: 20, maxPeriodMs: 200, churnMin: 0.1, churnMax: 0.2, churnWindowMs: 1000 };
    await clients.request({ cmd: 'plan', plan: warmup, url });
    params.onPhase?.('warm-up');
    await clients.request({ cmd: 'open', count: params.warmupConnections });
    await clients.request({ cmd: 'run', durationMs: params.warmupMs });
    await closeAll();
    params.onPhase?.('baseline');
    const baseline = await settled();
    await clients.request({ cmd: 'plan', plan: params.plan, url });
    if (params.snapshotDir !== undefined) await proxy.request({ cmd: 'snapshot', path: `${params.snapshotDir}/soak-baseline.heapsnapshot` });

    params.onPhase?.(`opening ${fit.count} connections`);
    const opened = await clients.request<number>({ cmd: 'open', count: fit.count, concurrency: params.openConcurrency });
    await waitFor('the connections to be proxied', async () => (await active()) >= opened, 60_000, 50);
    const open = await settled();

    params.onPhase?.(`${opened} connections open; traffic and churn for ${params.durationMs} ms`);
    await Promise.all([proxy.request({ cmd: 'start-sampling', intervalMs: params.sampleMs }), clients.request({ cmd: 'start-windows', intervalMs: params.sampleMs })]);
    const running = clients.request({ cmd: 'run', durationMs: params.durationMs });
    let done = false;
    const finish = (): void => {
      done = true;
    };
    running.then(finish, finish);
    let shown = 0;
    while (!done) {
      await Promise.race([running, sleep(params.sampleMs)]);
      const fresh = await proxy.request<ProxySample[]>({ cmd: 'samples', from: shown });
      shown += fresh.length;
      for (const reading of fresh) params.onProgress?.(reading);
    }
    await running;
    const [samples, windows] = await Promise.all([
      proxy.request<ProxySample[]>({ cmd: 'stop-sampling' }),
      clients.request<ClientStats[]>({ cmd: 'stop-windows' }),
    ]);
    const rows: SoakRow[] = samples.slice(0, windows.length).map((reading, i) => ({ ...reading, clients: windows[i]! }));

    params.onPhase?.('draining the echoes in flight');
    await clients.request({ cmd: 'drain' });
    const loaded = await settled();
    if (params.snapshotDir !== undefined) await proxy.request({ cmd: 'snapshot', path: `${params.snapshotDir}/soak-loaded.heapsnapshot` });
    params.onPhase?.('closing every connection');
    await closeAll();
    const closed = await settled();
    params.onPhase?.('closed; settling');
    await sleep(params.settleMs);
    const end = await settled();
    if (params.snapshotDir !== undefined) await proxy.request({ cmd: 'snapshot', path: `${params.snapshotDir}/soak-end.heapsnapshot` });
    const failures = await clients.request<ClientFailures>({ cmd: 'failures' });
    const counts = await proxy.request<ProxyCounts>({ cmd: 'counts' });
    const churned = rows.reduce((n, r) => n + r.clients.churnOpened, 0);
    return {
      connections: fit.count,
      note,
      rows,
      readings: { baseline, open, loaded, closed, end },
      fds: check(baseline.fds, loaded.fds, end.fds, FD_TOLERANCE),
      heap: check(baseline.heapUsed, loaded.heapUsed, end.heapUsed, CODE_ALLOWANCE + Math.max(0, loaded.heapUsed - baseline.heapUsed) * HEAP_TOLERANCE),
      failures,
      counts,
      churned,
    };
  } finally {
    for (const child of started.reverse()) await child.exit();
  }
}
