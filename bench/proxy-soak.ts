/**
 * The soak line of the proxy benchmark (`node dist/bench/proxy.js --soak`): N connections (10,000,
 * or as many as the open-files limit allows) each exchange a 64 B echo every 3 to 5 s for a minute,
 * through the raw TCP pipe (b) and through `WebSocketProxy` (c), one after the other, each in a fresh
 * proxy process started with `--expose-gc`. The proxy process's RSS and JS heap are read before,
 * during (peak), at the end of the minute, and after the connections close; the check is that the
 * memory comes back to where it was before.
 *
 * Four processes, as in the server benchmark (whose role files it reuses): the proxy alone in its
 * process (bench/server-proxies.ts), the clients in another (bench/soak-load.ts), the `ws` echo
 * upstream in a third (bench/server-upstream.ts), this one scheduling. 10,000 clients in the proxy's
 * process would measure the clients; and each process then holds at most two sockets per connection.
 */
import { fileURLToPath } from 'node:url';
import { HOST, fmt, idleFit, loadAverage, sleep, waitFor } from './common.js';
import { forkRole, type RoleProcess } from './server-ipc.js';
import type { SoakExchangeResult, SoakOpenResult } from './soak-load.js';

/** What the soak runs. */
export interface SoakOptions {
  /** Connections asked for (fewer when the open-files limit is too low, and said so). */
  connections: number;
  /** Length of the exchange, ms. */
  durationMs: number;
  /** Rows, letters of `bc`. */
  rows: string;
}

const LABELS: Record<string, string> = { b: '(b) TCP pipe', c: '(c) proxy' };
const SIZE = 64;
const MIN_PERIOD_MS = 3000;
const MAX_PERIOD_MS = 5000;
/** How often the peak is sampled during the exchange. */
const SAMPLE_MS = 1000;
/** The pause before the last reading: time for V8's memory reducer to give back empty pages. */
const SETTLE_MS = 10_000;
/**
 * Tolerances of the return to baseline, as fractions of what the connections took when they were
 * opened (idle, after GC). The JS heap after two full GCs counts only live objects: 2 % is about
 * one leaked object of a few hundred bytes per connection, or one connection in fifty kept whole,
 * and well above what the code compiled during the run adds (the warm-up compiles the same paths
 * first). RSS also counts pages the allocators keep after a free (glibc's malloc arenas, V8 pages
 * not yet released): 10 % of the growth absorbs that, yet still fails when a tenth of each
 * connection's memory, or one connection in ten, stays.
 */
const HEAP_TOLERANCE = 0.02;
const RSS_TOLERANCE = 0.1;

interface Memory {
  rss: number;
  heapUsed: number;
}

interface RowResult {
  row: string;
  n: number;
  opened: SoakOpenResult;
  exchange: SoakExchangeResult;
  proxyCpuMicros: number;
  loadAverage: string;
  before: Memory;
  idle: Memory;
  peak: Memory;
  end: Memory;
  closed: Memory;
  settled: Memory;
  failures: number;
}

const MiB = 2 ** 20;

function role(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

function log(text: string): void {
  console.error(`${new Date().toISOString().slice(11, 19)} soak ${text}`);
}

async function soakRow(row: string, count: number, options: SoakOptions, upstreamPort: number, load: RoleProcess): Promise<RowResult> {
  const proxy = await forkRole(role('server-proxies'), ['--upstream', String(upstreamPort), '--rows', row], ['--expose-gc']);
  const url = `ws://${HOST}:${proxy.ports[row]}/`;
  const active = async (): Promise<number> => (await proxy.request<Record<string, number>>({ cmd: 'active' }))[row] ?? 0;
  const memory = (cmd: 'memory' | 'memory-now'): Promise<Memory> => proxy.request<Memory>({ cmd });
  const closeAll = async (): Promise<void> => {
    await load.request({ cmd: 'close' });
    await waitFor(`${LABELS[row]} connections to close`, async () => (await active()) === 0, 60_000, 50);
  };

  // Warm-up, not counted: the same paths (open, echo, close) compiled and V8's spaces grown.
  await load.request({ cmd: 'open', url, count: 200, concurrency: 50 });
  await load.request({ cmd: 'exchange', size: SIZE, durationMs: 2000, minPeriodMs: 100, maxPeriodMs: 200 });
  await closeAll();
  const before = await memory('memory');

  const opened = await load.request<SoakOpenResult>({ cmd: 'open', url, count, concurrency: 100 });
  await waitFor('the connections to be proxied', async () => (await active()) >= opened.opened, 60_000, 50);
  await sleep(1000);
  const idle = await memory('memory');
  const n = await active();
  log(`${LABELS[row]}: ${n} connections open, RSS ${fmt(before.rss / MiB, 1)} -> ${fmt(idle.rss / MiB, 1)} MiB; exchanging for ${options.durationMs} ms`);

  const cpuBefore = await proxy.request<number>({ cmd: 'cpu' });
  const peak: Memory = { ...idle };
  let sampling = true;
  const sampler = (async () => {
    let i = 0;
    while (sampling) {
      await sleep(SAMPLE_MS);
      const now = await memory('memory-now');
      peak.rss = Math.max(peak.rss, now.rss);
      peak.heapUsed = Math.max(peak.heapUsed, now.heapUsed);
      if (++i % 15 === 0) log(`${LABELS[row]}: ${i} s, RSS ${fmt(now.rss / MiB, 1)} MiB, heap ${fmt(now.heapUsed / MiB, 1)} MiB (not collected)`);
    }
  })();
  const exchange = await load.request<SoakExchangeResult>({ cmd: 'exchange', size: SIZE, durationMs: options.durationMs, minPeriodMs: MIN_PERIOD_MS, maxPeriodMs: MAX_PERIOD_MS });
  sampling = false;
  await sampler;
  const proxyCpuMicros = (await proxy.request<number>({ cmd: 'cpu' })) - cpuBefore;
  const loadNow = loadAverage();
  const end = await memory('memory');
  log(`${LABELS[row]}: ${exchange.echoed} echoes, p99 ${fmt(exchange.p99, 2)} ms; load average ${loadNow}; closing`);

  await closeAll();
  const closed = await memory('memory');
  await sleep(SETTLE_MS);
  const settled = await memory('memory');
  const failures = (await proxy.request<Record<string, number>>({ cmd: 'failures' }))[row] ?? 0;
  await proxy.exit();
  return { row, n, opened, exchange, proxyCpuMicros, loadAverage: loadNow, before, idle, peak, end, closed, settled, failures };
}

/** The verdict on one figure: back within `tolerance` of what the connections took, or not. */
function verdict(r: RowResult, key: keyof Memory, tolerance: number): string {
  const growth = r.idle[key] - r.before[key];
  const left = r.settled[key] - r.before[key];
  const allowed = Math.max(0, growth) * tolerance;
  const share = growth > 0 ? ` (${fmt((100 * left) / growth, 1)} % of the ${fmt(growth / MiB, 1)} MiB the connections took)` : '';
  return `${key === 'rss' ? 'RSS' : 'JS heap'} ${left >= 0 ? '+' : ''}${fmt(left / MiB, 2)} MiB${share}, tolerance ${fmt(tolerance * 100, 0)} %: `
    + `${left <= allowed ? 'back to baseline' : 'NOT back to baseline'}`;
}

/**
 * Runs the soak through each row and returns the lines to print: the memory tables, the exchanges,
 * and the verdicts.
 */
export async function runSoak(options: SoakOptions): Promise<string[]> {
  // The proxy process holds two sockets per connection, the others one (reserve: the process's own).
  const { count, limit, need } = idleFit(options.connections, 256);
  const notes: string[] = [];
  if (limit < need) {
    notes.push(`ulimit -n is ${limit} (the hard limit; ${options.connections} connections need ${need} in the proxy process): `
      + `${count} connections instead`);
    console.error(notes[0]);
  }
  const upstream = await forkRole(role('server-upstream'), []);
  const load = await forkRole(role('soak-load'), []);
  const results: RowResult[] = [];
  for (const row of options.rows) results.push(await soakRow(row, count, options, upstream.ports['upstream']!, load));
  await load.exit();
  await upstream.exit();

  const mib = (m: Memory, key: keyof Memory): string => fmt(m[key] / MiB, 1);
  const lines: string[] = [
    `Soak: ${count} connections${count < options.connections ? ` (of ${options.connections} asked: open-files limit)` : ''}, `
      + `each a ${SIZE} B echo every ${MIN_PERIOD_MS / 1000}-${MAX_PERIOD_MS / 1000} s for ${fmt(options.durationMs / 1000, 0)} s; `
      + `proxy process memory, MiB (after two GCs, but the peak: sampled every ${SAMPLE_MS / 1000} s, not collected)`,
    ...notes,
    '',
    '| Row | figure | before | open, idle | peak during | end of the exchange | closed | closed + 10 s | closed + 10 s - before |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    for (const key of ['rss', 'heapUsed'] as const) {
      lines.push(`| ${LABELS[r.row]} | ${key === 'rss' ? 'RSS' : 'JS heap'} | ${mib(r.before, key)} | ${mib(r.idle, key)} | ${mib(r.peak, key)} | `
        + `${mib(r.end, key)} | ${mib(r.closed, key)} | ${mib(r.settled, key)} | ${fmt((r.settled[key] - r.before[key]) / MiB, 2)} |`);
    }
  }
  // Round trips of messages sent once every connection has sent (after the longest period).
  const after = `after ${MAX_PERIOD_MS / 1000} s`;
  lines.push('', `| Row | connections | echoes | msg/s | p50 ms | p99 ms | max ms | p99 ms, ${after} | max ms, ${after} | errors | missing | proxy CPU µs/msg | load average at the end |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    const e = r.exchange;
    lines.push(`| ${LABELS[r.row]} | ${fmt(r.n, 0)} | ${fmt(e.echoed, 0)} | ${fmt(e.echoed / (options.durationMs / 1000), 0)} | ${fmt(e.p50, 2)} | `
      + `${fmt(e.p99, 2)} | ${fmt(e.max, 1)} | ${fmt(e.steadyP99, 2)} | ${fmt(e.steadyMax, 1)} | ${e.errors + r.opened.errors + r.failures} | ${e.missing} | `
      + `${fmt(r.proxyCpuMicros / Math.max(1, e.echoed), 1)} | ${r.loadAverage} |`);
  }
  lines.push('');
  for (const r of results) lines.push(`${LABELS[r.row]}: ${verdict(r, 'rss', RSS_TOLERANCE)}; ${verdict(r, 'heapUsed', HEAP_TOLERANCE)}`);
  return lines;
}
