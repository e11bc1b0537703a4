/**
 * Server benchmark: what `ProxyServer` costs per handshake and per idle connection, next to
 *   (a) a `ws` server reached directly,
 *   (b) a raw TCP pipe proxy (`socket.pipe(upstream).pipe(socket)`), the baseline,
 *   (c) `WebSocketProxy` in a bare `'upgrade'` handler (no routes, no bookkeeping),
 *   (d) `ProxyServer` (`createProxyServer({ target }).listen()`, default options).
 *
 * 1. Handshakes per second: C clients (1, then 32 by default) each open a WebSocket, close it
 *    (1000) and wait for its socket to close, over and over; cycles that end inside the measuring
 *    window are counted. Every row runs back to back in a round (rotating who goes first), for
 *    several rounds; medians over rounds, ratios as medians of the per-round ratios.
 * 2. Memory per idle connection: for each of (b), (c), (d) a fresh proxy process (`--expose-gc`);
 *    200 connections opened and closed first (code compiled, V8 spaces grown), then RSS after two
 *    GCs before and after opening N idle connections (10,000 by default), divided by N.
 *
 * Run with `npm run bench:server` (add `-- --help` for options). Not part of `npm test`.
 *
 * Four processes, so that each figure is one program's: this one schedules and prints; the proxies
 * run alone in theirs (its CPU time per handshake is a column); the clients in another; the `ws`
 * upstream in a fourth (also so that 10,000 idle connections fit under the open-files limit: each
 * process holds one socket per connection and side).
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchArgs, words } from './args.js';
import { HOST, fmt, idleFit, loadAverage, machine, median, medianRatio, sleep, waitFor } from './common.js';
import type { HandshakeResult, IdleResult } from './server-load.js';
import { forkRole } from './server-ipc.js';

const HELP = `Usage: node dist/bench/server.js [options]
  --rounds N         rounds of the handshake runs, all rows alternating; 0: idle memory only (default 5)
  --duration MS      measuring window of a handshake run (default 3000)
  --warmup MS        unmeasured start of a handshake run (default 500)
  --concurrency LIST clients opening and closing at once, one scenario each (default 1,32)
  --rows LETTERS     rows of the handshake runs (default abcd)
  --idle N           idle connections per proxy for the memory figure, 0 to skip (default 10000)
  --idle-rows LETTERS proxies whose idle memory is measured (default bcd)
  --proxy-flags FLAGS node flags of the proxy process, e.g. "--cpu-prof" (default none)`;

interface Options {
  rounds: number;
  durationMs: number;
  warmupMs: number;
  concurrency: number[];
  rows: string;
  idle: number;
  idleRows: string;
  proxyFlags: string[];
}

const ROW_LABELS: Record<string, string> = {
  a: '(a) ws direct',
  b: '(b) TCP pipe',
  c: '(c) WebSocketProxy, bare handler',
  d: '(d) ProxyServer',
};

function parseOptions(): Options {
  const { values, int, letters } = benchArgs(HELP, {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '1,32' },
    rows: { type: 'string', default: 'abcd' },
    idle: { type: 'string', default: '10000' },
    'idle-rows': { type: 'string', default: 'bcd' },
    'proxy-flags': { type: 'string', default: '' },
  });
  const rows = letters('rows', values.rows, 'abcd', true);
  const idleRows = letters('idle-rows', values['idle-rows'], 'bcd', true);
  return {
    rounds: int('rounds', values.rounds, 0),
    durationMs: int('duration', values.duration, 100),
    warmupMs: int('warmup', values.warmup, 0),
    concurrency: (values.concurrency ?? '').split(',').map((c) => int('concurrency', c, 1)),
    rows,
    idle: int('idle', values.idle, 0),
    idleRows,
    proxyFlags: words(values['proxy-flags']),
  };
}

/** A ratio as `1.23x`, or `-` when there is none. */
function times(value: number, digits = 2): string {
  return value === null || !Number.isFinite(value) ? '-' : `${fmt(value, digits)}x`;
}

/**
 * The proxy process holds two sockets per idle connection (client and upstream sides), plus a few
 * dozen files of its own: when the limit is too low for the count asked, the count is lowered, and
 * said so.
 */
function idleCount(asked: number): number {
  const { count, limit, need } = idleFit(asked, 256);
  if (!(limit < need)) return asked;
  console.log(`ulimit -n is ${limit} (the hard limit; ${asked} idle connections need ${need} in the proxy process): `
    + `measuring ${count} instead; raise the hard limit (ulimit -Hn, as root with CAP_SYS_RESOURCE) for the full count`);
  return count;
}

function role(name: string): string {
  return fileURLToPath(new URL(`./server-${name}.js`, import.meta.url));
}

type Active = Record<string, number>;

/** Part 1: the handshake table. */
async function handshakeRuns(options: Options, upstreamPort: number): Promise<string[]> {
  const proxyRows = options.rows.replace('a', '');
  const proxies = await forkRole(role('proxies'), ['--upstream', String(upstreamPort), '--rows', proxyRows], options.proxyFlags);
  const load = await forkRole(role('load'), []);
  const urlOf = (row: string): string => `ws://${HOST}:${row === 'a' ? upstreamPort : proxies.ports[row]}/`;
  const rows = [...options.rows];
  type Sample = HandshakeResult & { rate: number; proxyCpu: number; loadCpu: number };
  const results = new Map<string, Sample[]>();

  for (let round = 0; round < options.rounds; round++) {
    for (const [s, concurrency] of options.concurrency.entries()) {
      const shift = (round + s) % rows.length;
      for (const row of [...rows.slice(shift), ...rows.slice(0, shift)]) {
        const cpuBefore = await proxies.request<number>({ cmd: 'cpu' });
        const r = await load.request<HandshakeResult>({
          cmd: 'handshakes', url: urlOf(row), concurrency, warmupMs: options.warmupMs, durationMs: options.durationMs,
        });
        const cpuAfter = await proxies.request<number>({ cmd: 'cpu' });
        const sample: Sample = {
          ...r,
          rate: r.cycles / (r.elapsedMs / 1000),
          // Row (a) does not go through the proxy process: its figure would be that process idling.
          proxyCpu: row === 'a' ? NaN : (cpuAfter - cpuBefore) / r.total,
          loadCpu: r.cpuMicros / r.total,
        };
        const key = `${concurrency}/${row}`;
        results.set(key, [...(results.get(key) ?? []), sample]);
        console.error(`${new Date().toISOString().slice(11, 19)} round ${round + 1}, ${concurrency} at once, ${ROW_LABELS[row]}: `
          + `${fmt(sample.rate, 0)} handshakes/s, open p50 ${fmt(r.openP50, 2)} ms, p99 ${fmt(r.openP99, 2)} ms, `
          + `CPU/handshake proxy ${fmt(sample.proxyCpu, 0)} us, clients ${fmt(sample.loadCpu, 0)} us${r.errors > 0 ? `, ${r.errors} errors` : ''}`);
        if (row !== 'a') {
          await waitFor(`${ROW_LABELS[row]} connections to close`, async () => (await proxies.request<Active>({ cmd: 'active' }))[row] === 0, 20_000, 50);
        }
      }
    }
  }

  const failures = await proxies.request<Active>({ cmd: 'failures' });
  await proxies.exit();
  await load.exit();

  const lines = [
    '| At once | Row | handshakes/s | vs (b) | vs (c) | open p50 ms | open p99 ms | cycle p50 ms | proxy CPU µs/handshake | proxy CPU vs (b) | client CPU µs/handshake |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  // Ratios are medians of the per-round ratios: the rows of one round ran side by side.
  const roundRatio = (concurrency: number, row: string, base: string, metric: 'rate' | 'proxyCpu' = 'rate'): number => {
    const mine = results.get(`${concurrency}/${row}`) ?? [];
    const theirs = results.get(`${concurrency}/${base}`) ?? [];
    return medianRatio(mine, theirs, (x) => x[metric]);
  };
  for (const concurrency of options.concurrency) {
    for (const row of rows) {
      const samples = results.get(`${concurrency}/${row}`) ?? [];
      const errors = samples.reduce((sum, x) => sum + x.errors, 0);
      const m = (pick: (x: Sample) => number): number => median(samples.map(pick));
      lines.push(`| ${concurrency} | ${ROW_LABELS[row]}${errors > 0 ? ` (${errors} errors)` : ''} | ${fmt(m((x) => x.rate), 0)} | `
        + `${times(roundRatio(concurrency, row, 'b'))} | ${times(roundRatio(concurrency, row, 'c'))} | `
        + `${fmt(m((x) => x.openP50), 2)} | ${fmt(m((x) => x.openP99), 2)} | ${fmt(m((x) => x.cycleP50), 2)} | `
        + `${fmt(m((x) => x.proxyCpu), 0)} | ${times(roundRatio(concurrency, row, 'b', 'proxyCpu'))} | ${fmt(m((x) => x.loadCpu), 0)} |`);
    }
  }
  for (const [row, n] of Object.entries(failures)) {
    if (n > 0) lines.push(`\nwarning: ${n} connections failed in ${ROW_LABELS[row]}`);
  }
  return lines;
}

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Part 2: memory per idle connection, one fresh proxy process per row. */
async function idleRuns(options: Options, count: number, upstreamPort: number): Promise<string[]> {
  const load = await forkRole(role('load'), []);
  const perRow = new Map<string, { n: number; before: Memory; after: Memory; opened: IdleResult }>();
  for (const row of options.idleRows) {
    const proxy = await forkRole(role('proxies'), ['--upstream', String(upstreamPort), '--rows', row], ['--expose-gc', ...options.proxyFlags]);
    const url = `ws://${HOST}:${proxy.ports[row]}/`;
    const activeNow = async (): Promise<number> => (await proxy.request<Active>({ cmd: 'active' }))[row] ?? 0;
    // Warm-up, not counted: the first connections compile code and grow V8's spaces.
    await load.request<IdleResult>({ cmd: 'open-idle', url, count: 200, concurrency: 50 });
    await load.request({ cmd: 'close-idle' });
    await waitFor('the warm-up connections to close', async () => (await activeNow()) === 0, 20_000, 50);
    const before = await proxy.request<Memory>({ cmd: 'memory' });
    const opened = await load.request<IdleResult>({ cmd: 'open-idle', url, count, concurrency: 100 });
    await waitFor('the idle connections to be proxied', async () => (await activeNow()) >= opened.opened, 60_000, 50);
    await sleep(1000);
    const after = await proxy.request<Memory>({ cmd: 'memory' });
    const n = await activeNow();
    perRow.set(row, { n, before, after, opened });
    console.error(`${new Date().toISOString().slice(11, 19)} idle, ${ROW_LABELS[row]}: ${n} connections, `
      + `RSS ${fmt(before.rss / 2 ** 20, 1)} -> ${fmt(after.rss / 2 ** 20, 1)} MiB${opened.errors > 0 ? `, ${opened.errors} errors` : ''}`);
    await load.request({ cmd: 'close-idle' });
    await waitFor('the idle connections to close', async () => (await activeNow()) === 0, 60_000, 50);
    await proxy.exit();
  }
  await load.exit();

  const kib = (row: string, key: keyof Memory): number => {
    const r = perRow.get(row);
    return r === undefined || r.n === 0 ? NaN : (r.after[key] - r.before[key]) / r.n / 1024;
  };
  const lines = [
    '| Proxy | idle connections | RSS before -> after, MiB | RSS KiB/connection | vs (b) | JS heap KiB/connection | external KiB/connection |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [row, r] of perRow) {
    lines.push(`| ${ROW_LABELS[row]} | ${fmt(r.n, 0)} | ${fmt(r.before.rss / 2 ** 20, 1)} -> ${fmt(r.after.rss / 2 ** 20, 1)} | `
      + `${fmt(kib(row, 'rss'), 1)} | ${times(kib(row, 'rss') / kib('b', 'rss'), 1)} | `
      + `${fmt(kib(row, 'heapUsed'), 1)} | ${fmt(kib(row, 'external'), 2)} |`);
  }
  return lines;
}

async function main(): Promise<void> {
  const options = parseOptions();
  console.log(`${machine()}, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB`);
  console.log(`load average before: ${loadAverage()}`);
  const count = options.idle > 0 ? idleCount(options.idle) : 0;
  const upstream = await forkRole(role('upstream'), []);
  const upstreamPort = upstream.ports['upstream']!;

  const handshakeLines = options.rounds > 0 && options.rows !== '' ? await handshakeRuns(options, upstreamPort) : [];
  const idleLines = count > 0 && options.idleRows !== '' ? await idleRuns(options, count, upstreamPort) : [];
  await upstream.exit();

  console.log(`load average after: ${loadAverage()}`);
  if (handshakeLines.length > 0) {
    console.log(`\nHandshakes: open + close cycles, ${options.rounds} rounds of ${options.warmupMs} + ${options.durationMs} ms per run, medians\n`);
    console.log(handshakeLines.join('\n'));
  }
  if (idleLines.length > 0) {
    console.log(`\nIdle connections: RSS after GC, before and after opening them, per connection\n`);
    console.log(idleLines.join('\n'));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
