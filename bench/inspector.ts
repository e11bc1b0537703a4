/**
 * Inspector benchmark: what an open inspector costs the proxy's throughput (issue 9, "the page's
 * own weight"), at 64 B with 32 in flight per connection over 50 connections (bench/proxy's
 * small32 scenario), through `ProxyServer` in a process of its own:
 *   (d) `ProxyServer` alone,
 *   (e) `ProxyServer` with `inspector({ server })` attached, no page open,
 *   (f) the same with one page open during the measurement: a real headless Chromium showing the
 *       inspector page, the first live connection selected, Follow on (without a browser, one SSE
 *       client on /api/events instead, said so in the output; `--page sse-one` subscribes that
 *       client to one connection as the page does: the proxy's side of an open page alone).
 * Goal: (f)/(d) msg/s >= 0.90.
 *
 * Run with `npm run bench:inspector` (add `-- --help` for options). Not part of `npm test`.
 *
 * Processes, so that each figure is one program's: this one schedules, prints and drives the
 * browser (playwright); one proxy process per row (bench/inspector-proxy.ts: its CPU time per
 * round trip and its RSS are the columns); the `ws` clients (bench/inspector-load.ts); the `ws`
 * echo upstream (bench/server-upstream.ts); Chromium. Every row runs back to back in a round, the
 * first row rotating, for several rounds; the table gives medians over rounds, and the ratios are
 * medians of the per-round ratios. Each run opens its 50 connections, then (f) opens its page on
 * them, then the run (0.5 s warm-up, 3 s window, drain), then the page closes, then the connections.
 * CPU figures cover the run alone (warm-up, window and drain), divided by its round trips; (f)
 * also reads the page's CPU for 2 s with its page open on the idle connections, before the run,
 * after 2 s for it to settle.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { hasNativeMask } from '../src/protocol/mask.js';
import { benchArgs, words } from './args.js';
import { HOST, fmt, loadAverage, machine, median, medianRatio, sleep, waitFor } from './common.js';
import type { EchoResult } from './inspector-load.js';
import { commandLine, descendantsCpuMicros } from './inspector-proc.js';
import { type OpenPage, type PageReport, type PagePriority, type Viewer, type ViewerKind, startViewer } from './inspector-page.js';
import type { ProxyState } from './inspector-proxy.js';
import { type RoleProcess, forkRole } from './server-ipc.js';

const HELP = `Usage: node dist/bench/inspector.js [options]
  --rounds N         rounds, all rows alternating (default 3)
  --duration MS      measuring window of a run (default 3000)
  --warmup MS        unmeasured start of a run (default 500)
  --connections N    client connections per run (default 50)
  --in-flight N      messages in flight per connection (default 32)
  --size BYTES       message size (default 64)
  --rows LETTERS     rows to run, letters of def (default def)
  --page KIND        the viewer of (f): auto (Chromium if there is one, else SSE), chromium, sse (every connection's rows),
                     sse-one (the first live connection's rows, as the page subscribes) (default auto)
  --page-priority P  as-launched (Chromium raises some threads to nice -8 when it may, as root), or normal
                     (started without CAP_SYS_NICE, as a desktop user's browser) (default as-launched)
  --page-filter RE   a regex typed in the page's filter, e.g. "^nothing$" to receive rows without drawing them (default none)
  --proxy-flags FLAGS node flags of the proxy processes, e.g. "--cpu-prof" (default none)`;

interface Options {
  rounds: number;
  durationMs: number;
  warmupMs: number;
  connections: number;
  inFlight: number;
  size: number;
  rows: string;
  page: 'auto' | ViewerKind;
  pagePriority: PagePriority;
  pageFilter: string;
  proxyFlags: string[];
}

const ROW_LABELS: Record<string, string> = {
  d: '(d) ProxyServer',
  e: '(e) + inspector, no page',
  f: '(f) + inspector, one page open',
};

function parseOptions(): Options {
  const { values, int, letters, oneOf } = benchArgs(HELP, {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '500' },
    connections: { type: 'string', default: '50' },
    'in-flight': { type: 'string', default: '32' },
    size: { type: 'string', default: '64' },
    rows: { type: 'string', default: 'def' },
    page: { type: 'string', default: 'auto' },
    'page-priority': { type: 'string', default: 'as-launched' },
    'page-filter': { type: 'string', default: '' },
    'proxy-flags': { type: 'string', default: '' },
  });
  return {
    rounds: int('rounds', values.rounds, 1),
    durationMs: int('duration', values.duration, 100),
    warmupMs: int('warmup', values.warmup, 0),
    connections: int('connections', values.connections, 1),
    inFlight: int('in-flight', values['in-flight'], 1),
    size: int('size', values.size, 1),
    rows: letters('rows', values.rows, 'def'),
    page: oneOf('page', values.page, ['auto', 'chromium', 'sse', 'sse-one'] as const),
    pagePriority: oneOf('page-priority', values['page-priority'], ['as-launched', 'normal'] as const),
    pageFilter: values['page-filter'] ?? '',
    proxyFlags: words(values['proxy-flags']),
  };
}

function role(file: string): string {
  return fileURLToPath(new URL(`./${file}.js`, import.meta.url));
}

/** A ratio as `1.23x`, or `-` when there is none. */
function times(value: number): string {
  return Number.isFinite(value) ? `${fmt(value, 2)}x` : '-';
}

const MiB = 2 ** 20;
/** How long the page's CPU is read with nothing to show, before an (f) run. */
const IDLE_PAGE_MS = 2000;
/**
 * Milliseconds the page is left to settle before its idle CPU is read: loading the connection's
 * history, drawing it, the click's aftermath and the first batches are its start, not its idle cost.
 */
const IDLE_SETTLE_MS = 2000;

/** One run of one row. */
interface Sample extends EchoResult {
  rate: number;
  /** Proxy process CPU per round trip, µs. */
  proxyCpu: number;
  /** Client process CPU per round trip, µs. */
  loadCpu: number;
  /** Echo upstream process CPU per round trip, µs (from /proc: NaN elsewhere). */
  upstreamCpu: number;
  /** The viewer's CPU per round trip, µs ((f) only). */
  pageCpu: number;
  /** All of it: proxy, clients, upstream and viewer, per round trip, µs. */
  allCpu: number;
  /** CPU of the proxy process and of the viewer over the run, in % of one core. */
  proxyBusy: number;
  pageBusy: number;
  /** The viewer's CPU with its page open on the connections before the run, no traffic, % of one core. */
  pageIdle: number;
  /** The proxy process's RSS at the end of the run (connections still open), bytes. */
  rss: number;
  state: ProxyState;
  page: PageReport | undefined;
}

/** CPU µs so far of the echo upstream process, which reports none itself. */
function upstreamCpuMicros(): number {
  return descendantsCpuMicros((comm, pid) => comm === 'node' && commandLine(pid).includes('server-upstream.js'));
}

/** One run: open the connections, (f) the page, exchange, read the figures, close. */
async function runOnce(options: Options, row: string, proxy: RoleProcess, load: RoleProcess, viewer: Viewer | undefined): Promise<Sample> {
  const opened = await load.request<{ opened: number; errors: number }>({
    cmd: 'open', url: `ws://${HOST}:${proxy.ports['proxy']}/`, connections: options.connections,
  });
  await waitFor('the connections to be proxied', async () => (await proxy.request<ProxyState>({ cmd: 'state' })).active >= opened.opened, 20_000, 20);
  let page: OpenPage | undefined;
  let pageIdle = NaN;
  if (row === 'f' && viewer !== undefined) {
    page = await viewer.open(proxy.ports['inspector']!);
    // What the open page costs the machine with nothing to show: drawing, timers (once settled).
    await sleep(IDLE_SETTLE_MS);
    const idleStart = page.cpuMicros();
    await sleep(IDLE_PAGE_MS);
    pageIdle = (page.cpuMicros() - idleStart) / (IDLE_PAGE_MS * 10);
  } else {
    // Every row idles as long before its traffic as (f) does with its page. V8 shrinks the heap
    // of a process that went quiet (its memory reducer, 8 s on) and sizes the young generation by
    // what was allocated lately: in one traced round, (f)'s proxy, idle 11 s before its traffic,
    // ran it with half the young generation of (e)'s (134 scavenges against 70 for the same
    // bytes). Without this wait only (f) idled, and the rows differed by more than the page.
    await sleep(IDLE_SETTLE_MS + IDLE_PAGE_MS);
  }
  const pageBefore = page?.cpuMicros() ?? NaN;
  const cpuBefore = await proxy.request<number>({ cmd: 'cpu' });
  const upstreamBefore = upstreamCpuMicros();
  const started = performance.now();
  const r = await load.request<EchoResult>({
    cmd: 'run', size: options.size, inFlight: options.inFlight, warmupMs: options.warmupMs, durationMs: options.durationMs,
  });
  const wallMs = performance.now() - started;
  const cpuAfter = await proxy.request<number>({ cmd: 'cpu' });
  const upstreamAfter = upstreamCpuMicros();
  const pageAfter = page?.cpuMicros() ?? NaN;
  const memory = await proxy.request<NodeJS.MemoryUsage>({ cmd: 'memory' });
  const state = await proxy.request<ProxyState>({ cmd: 'state' });
  const report = await page?.close();
  await load.request({ cmd: 'close' });
  await waitFor(`${ROW_LABELS[row]} connections to close`, async () => (await proxy.request<ProxyState>({ cmd: 'state' })).active === 0, 20_000, 20);
  const proxyCpu = (cpuAfter - cpuBefore) / r.total;
  const loadCpu = r.cpuMicros / r.total;
  const upstreamCpu = (upstreamAfter - upstreamBefore) / r.total;
  const pageCpu = (pageAfter - pageBefore) / r.total;
  return {
    ...r,
    errors: r.errors + opened.errors + (options.connections - opened.opened),
    rate: r.messages / (r.elapsedMs / 1000),
    proxyCpu,
    loadCpu,
    upstreamCpu,
    pageCpu,
    allCpu: proxyCpu + loadCpu + upstreamCpu + (Number.isFinite(pageCpu) ? pageCpu : 0),
    proxyBusy: (cpuAfter - cpuBefore) / (wallMs * 10),
    pageBusy: (pageAfter - pageBefore) / (wallMs * 10),
    pageIdle,
    rss: memory.rss,
    state,
    page: report,
  };
}

function table(options: Options, results: Map<string, Sample[]>): string[] {
  const rows = [...options.rows];
  const lines = [
    '| Row | msg/s | vs (d) | p50 ms | p99 ms | proxy CPU µs/msg | proxy CPU vs (d) | load CPU µs/msg | upstream CPU µs/msg | page CPU µs/msg | all CPU µs/msg | proxy RSS at end, MiB | inspector kept, MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const base = results.get('d') ?? [];
  for (const row of rows) {
    const samples = results.get(row) ?? [];
    const m = (pick: (x: Sample) => number): number => median(samples.map(pick));
    const errors = samples.reduce((sum, x) => sum + x.errors, 0);
    lines.push(`| ${ROW_LABELS[row]}${errors > 0 ? ` (${errors} errors)` : ''} | ${fmt(m((x) => x.rate), 0)} | `
      + `${times(medianRatio(samples, base, (x) => x.rate))} | ${fmt(m((x) => x.p50), 2)} | ${fmt(m((x) => x.p99), 2)} | `
      + `${fmt(m((x) => x.proxyCpu), 1)} | ${times(medianRatio(samples, base, (x) => x.proxyCpu))} | ${fmt(m((x) => x.loadCpu), 1)} | `
      + `${fmt(m((x) => x.upstreamCpu), 1)} | ${fmt(m((x) => x.pageCpu), 1)} | ${fmt(m((x) => x.allCpu), 1)} | ${fmt(m((x) => x.rss) / MiB, 1)} | ${row === 'd' ? '-' : fmt(m((x) => x.state.keptBytes) / MiB, 1)} |`);
  }
  lines.push('', '| Row | proxy process CPU, % of a core | page CPU during the run, % of a core | page CPU open with no traffic, % of a core |', '|---|---:|---:|---:|');
  for (const row of rows) {
    const samples = results.get(row) ?? [];
    const m = (pick: (x: Sample) => number): number => median(samples.map(pick));
    lines.push(`| ${ROW_LABELS[row]} | ${fmt(m((x) => x.proxyBusy), 0)} | ${fmt(m((x) => x.pageBusy), 0)} | ${fmt(m((x) => x.pageIdle), 0)} |`);
  }
  return lines;
}

async function main(): Promise<void> {
  const options = parseOptions();
  const rows = [...options.rows];
  console.log(`${machine()}, bufferutil: ${hasNativeMask ? 'yes' : 'no'}`);
  const loadBefore = loadAverage();
  console.log(`load average before: ${loadBefore}`);

  const upstream = await forkRole(role('server-upstream'), []);
  const upstreamPort = String(upstream.ports['upstream']);
  const proxies = new Map<string, RoleProcess>();
  for (const row of rows) {
    proxies.set(row, await forkRole(role('inspector-proxy'), ['--upstream', upstreamPort, ...(row === 'd' ? [] : ['--inspect'])], options.proxyFlags));
  }
  const load = await forkRole(role('inspector-load'), []);
  const viewer = rows.includes('f') ? await startViewer(options.page, options.pagePriority, options.pageFilter) : undefined;
  if (viewer !== undefined) console.log(`(f) viewer: ${viewer.note}`);
  if (viewer?.kind === 'sse') ROW_LABELS['f'] = '(f) + inspector, one SSE client';
  if (viewer?.kind === 'sse-one') ROW_LABELS['f'] = '(f) + inspector, one SSE client as the page';

  const results = new Map<string, Sample[]>();
  try {
    for (let round = 0; round < options.rounds; round++) {
      const shift = round % rows.length;
      for (const row of [...rows.slice(shift), ...rows.slice(0, shift)]) {
        const s = await runOnce(options, row, proxies.get(row)!, load, viewer);
        results.set(row, [...(results.get(row) ?? []), s]);
        console.error(`${new Date().toISOString().slice(11, 19)} round ${round + 1} ${ROW_LABELS[row]}: ${fmt(s.rate, 0)} msg/s, `
          + `p50 ${fmt(s.p50, 2)} ms, p99 ${fmt(s.p99, 2)} ms, CPU/msg proxy ${fmt(s.proxyCpu, 1)} us, load ${fmt(s.loadCpu, 1)} us, upstream ${fmt(s.upstreamCpu, 1)} us`
          + `${row === 'f' ? `, page ${fmt(s.pageCpu, 1)} us` : ''}; busy: proxy ${fmt(s.proxyBusy, 0)} %`
          + `${row === 'f' ? `, page ${fmt(s.pageBusy, 0)} % (${fmt(s.pageIdle, 0)} % open with no traffic)` : ''}; proxy RSS at end ${fmt(s.rss / MiB, 1)} MiB`
          + `${row === 'd' ? '' : `, inspector kept ${fmt(s.state.keptBytes / MiB, 1)} MiB, pages dropped so far ${s.state.droppedPages}`}`
          + `${s.errors > 0 ? `, ${s.errors} errors` : ''}`);
        if (s.page !== undefined) {
          console.error(`  ${s.page.summary}${s.page.errors.length > 0 ? `; page errors: ${s.page.errors.join(' | ')}` : ''}`);
        }
      }
    }
  } finally {
    await viewer?.close();
    await load.exit();
    for (const proxy of proxies.values()) await proxy.exit();
    await upstream.exit();
  }
  const loadAfter = loadAverage();

  console.log('');
  console.log(`${options.size} B, ${options.inFlight} in flight per connection, ${options.connections} connections, `
    + `${options.rounds} rounds of ${options.warmupMs} + ${options.durationMs} ms per run, medians`);
  console.log(`load average before: ${loadBefore}; after: ${loadAfter}`);
  console.log('');
  console.log(table(options, results).join('\n'));
  console.log('');
  for (const row of rows) {
    const samples = results.get(row) ?? [];
    console.log(`${ROW_LABELS[row]}: proxy RSS at the end of each run ${samples.map((x) => fmt(x.rss / MiB, 1)).join(', ')} MiB`
      + `${row === 'd' ? '' : `; pages dropped for not reading: ${samples.at(-1)?.state.droppedPages ?? 0}`}`);
  }
  const base = results.get('d') ?? [];
  if (rows.includes('e') && base.length > 0) {
    console.log(`(e)/(d) msg/s (median of per-round ratios): ${times(medianRatio(results.get('e') ?? [], base, (x) => x.rate))}`);
  }
  if (rows.includes('f') && base.length > 0) {
    const ratio = medianRatio(results.get('f') ?? [], base, (x) => x.rate);
    console.log(`(f)/(d) msg/s (median of per-round ratios): ${times(ratio)} (goal >= 0.90x: ${ratio >= 0.9 ? 'met' : 'missed'})`
      + `${viewer?.kind === 'sse' || viewer?.kind === 'sse-one' ? ' [with an SSE client, not a browser page]' : ''}`);
    // When every process wants more CPU than the machine has, rates go as the inverse of the CPU a
    // round trip costs them all: the ratio the rates tend to on a saturated machine.
    console.log(`(d)/(f) all CPU per round trip (median of per-round ratios): ${times(medianRatio(base, results.get('f') ?? [], (x) => x.allCpu))}`
      + ' (the (f)/(d) rate ratio to expect where the processes share saturated cores)');
  }
  // Anything left (a stuck connection) must not keep the benchmark alive.
  setTimeout(() => process.exit(0), 2000).unref();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
