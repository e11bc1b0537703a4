/**
 * Soak through `ProxyServer` (`npm run bench:soak`, or `node dist/bench/soak.js`): 10,000
 * connections (or as many as the open-files limit allows, said in the output) with seeded random
 * traffic and churn for 10 minutes; the proxy process sampled every 10 s (RSS, JS heap, open files,
 * event-loop delay, CPU); at the end every connection closes and the open files and the heap must
 * come back to their baseline. How it runs: bench/soak-run.ts. Not part of `npm test` (its
 * 30-second variant with 1,000 connections is test/soak.spec.ts).
 *
 * Prints the machine, the samples of every minute as a Markdown table and the verdict; writes all
 * the samples as CSV and JSON and draws them as an SVG. Exits with 1 when the verdict fails.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { benchArgs, words } from './args.js';
import { fmt, loadAverage, machine } from './common.js';
import { soakSvg } from './soak-chart.js';
import type { ProxySample } from './soak-proxy.js';
import { CODE_ALLOWANCE, DEFAULT_PLAN, FD_TOLERANCE, HEAP_TOLERANCE, type SoakResult, type SoakRow, failureCount, soak } from './soak-run.js';

const HELP = `Usage: node dist/bench/soak.js [options]
  --connections N   connections held through the proxy (default 10000; fewer if ulimit -n is too low)
  --duration MS     length of the traffic and churn (default 600000)
  --sample MS       time between two samples of the proxy process (default 10000)
  --table MS        time between two rows of the printed table (default 60000)
  --seed N          seed of the traffic and churn (default 1)
  --churn-min PCT   least share of the connections replaced per 10 s, percent (default 1)
  --churn-max PCT   largest share replaced per 10 s, percent (default 5)
  --min-period MS   shortest mean pause between a connection's messages (default 5000)
  --max-period MS   longest mean pause (default 60000)
  --settle MS       pause between the last close and the final reading (default 10000)
  --svg PATH        chart (default docs/soak.svg; '' for none)
  --csv PATH        samples as CSV (default docs/soak.csv; '' for none)
  --json PATH       whole result as JSON (default docs/soak.json; '' for none)
  --proxy-flags FLAGS node flags of the proxy process, e.g. "--cpu-prof" (default none)
  --snapshots DIR   write heap snapshots of the proxy at the baseline, after the traffic and at the end there (default none)`;

const MiB = 2 ** 20;

function parseOptions() {
  const { values, int } = benchArgs(HELP, {
    connections: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '600000' },
    sample: { type: 'string', default: '10000' },
    table: { type: 'string', default: '60000' },
    seed: { type: 'string', default: String(DEFAULT_PLAN.seed) },
    'churn-min': { type: 'string', default: String(DEFAULT_PLAN.churnMin * 100) },
    'churn-max': { type: 'string', default: String(DEFAULT_PLAN.churnMax * 100) },
    'min-period': { type: 'string', default: String(DEFAULT_PLAN.minPeriodMs) },
    'max-period': { type: 'string', default: String(DEFAULT_PLAN.maxPeriodMs) },
    settle: { type: 'string', default: '10000' },
    svg: { type: 'string', default: 'docs/soak.svg' },
    csv: { type: 'string', default: 'docs/soak.csv' },
    json: { type: 'string', default: 'docs/soak.json' },
    snapshots: { type: 'string' },
    'proxy-flags': { type: 'string', default: '' },
  });
  const churnMin = int('churn-min', values['churn-min'], 0);
  const churnMax = int('churn-max', values['churn-max'], churnMin);
  const minPeriod = int('min-period', values['min-period'], 50);
  return {
    connections: int('connections', values.connections, 1),
    durationMs: int('duration', values.duration, 1000),
    sampleMs: int('sample', values.sample, 1000),
    tableMs: int('table', values.table, 1000),
    seed: int('seed', values.seed, 0),
    churnMin: churnMin / 100,
    churnMax: churnMax / 100,
    minPeriodMs: minPeriod,
    maxPeriodMs: int('max-period', values['max-period'], minPeriod),
    settleMs: int('settle', values.settle, 0),
    svg: values.svg ?? '',
    csv: values.csv ?? '',
    json: values.json ?? '',
    snapshots: values.snapshots,
    proxyFlags: words(values['proxy-flags']),
  };
}

const CSV_COLUMNS: Array<[string, (r: SoakRow) => number]> = [
  ['t_s', (r) => r.t],
  ['connections', (r) => r.connections],
  ['rss_bytes', (r) => r.rss],
  ['heap_used_bytes', (r) => r.heapUsed],
  ['external_bytes', (r) => r.external],
  ['array_buffers_bytes', (r) => r.arrayBuffers],
  ['fds', (r) => r.fds],
  ['delay_p50_ms', (r) => r.delayP50],
  ['delay_p99_ms', (r) => r.delayP99],
  ['delay_max_ms', (r) => r.delayMax],
  ['cpu_share', (r) => r.cpu],
  ['sent', (r) => r.clients.sent],
  ['echoed', (r) => r.clients.echoed],
  ['churn_opened', (r) => r.clients.churnOpened],
  ['churn_closed', (r) => r.clients.churnClosed],
  ['rtt_p50_ms', (r) => r.clients.rttP50],
  ['rtt_p99_ms', (r) => r.clients.rttP99],
];

function csv(rows: SoakRow[]): string {
  const lines = [CSV_COLUMNS.map(([name]) => name).join(',')];
  for (const r of rows) lines.push(CSV_COLUMNS.map(([, value]) => (Number.isFinite(value(r)) ? String(value(r)) : '')).join(','));
  return `${lines.join('\n')}\n`;
}

function progress(row: ProxySample): void {
  console.error(`${new Date().toISOString().slice(11, 19)} soak ${row.t} s: ${row.connections} connections, RSS ${fmt(row.rss / MiB, 1)} MiB, `
    + `heap ${fmt(row.heapUsed / MiB, 1)} MiB, ${row.fds} fds, loop delay p99 ${fmt(row.delayP99, 1)} ms, max ${fmt(row.delayMax, 1)} ms, CPU ${fmt(row.cpu * 100, 0)} %`);
}

function table(result: SoakResult, everyS: number): string[] {
  const lines = [
    '| t (s) | connections | RSS MiB | JS heap MiB | external MiB | open fds | loop delay p50 / p99 / max ms | proxy CPU % | echoes/s | churn (opened) | RTT p50 / p99 ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  // The first sample at or after each mark (a loaded machine delays the sampling timer), and the last.
  // The last row is the short interval up to the end of the traffic, unless it falls in the same second.
  const rows = result.rows;
  const picked = rows.filter((r, i) => Math.floor(r.t / everyS) > Math.floor((rows[i - 1]?.t ?? -1) / everyS)
    || (i === rows.length - 1 && r.t !== rows[i - 1]?.t));
  for (const r of picked) {
    lines.push(`| ${r.t} | ${fmt(r.connections, 0)} | ${fmt(r.rss / MiB, 1)} | ${fmt(r.heapUsed / MiB, 1)} | ${fmt(r.external / MiB, 1)} | ${fmt(r.fds, 0)} | `
      + `${fmt(r.delayP50, 1)} / ${fmt(r.delayP99, 1)} / ${fmt(r.delayMax, 1)} | ${fmt(r.cpu * 100, 0)} | `
      + `${fmt(r.clients.echoed / (r.clients.ms / 1000), 0)} | ${fmt(r.clients.churnOpened, 0)} | ${fmt(r.clients.rttP50, 1)} / ${fmt(r.clients.rttP99, 1)} |`);
  }
  return lines;
}

/** The verdict lines: each check, the failures, how the connections ended. */
function verdict(result: SoakResult): string[] {
  const { readings, fds, heap, failures } = result;
  const failed = failureCount(result);
  return [
    `Settled readings (two full GCs), baseline -> open, idle -> open after the traffic -> just closed -> closed + settle: `
      + `JS heap ${[readings.baseline, readings.open, readings.loaded, readings.closed, readings.end].map((x) => fmt(x.heapUsed / MiB, 1)).join(' -> ')} MiB; `
      + `RSS ${[readings.baseline, readings.open, readings.loaded, readings.closed, readings.end].map((x) => fmt(x.rss / MiB, 1)).join(' -> ')} MiB; `
      + `external ${[readings.baseline, readings.open, readings.loaded, readings.closed, readings.end].map((x) => fmt(x.external / MiB, 1)).join(' -> ')} MiB; `
      + `fds ${[readings.baseline, readings.open, readings.loaded, readings.closed, readings.end].map((x) => fmt(x.fds, 0)).join(' -> ')}`,
    `Open files: ${fmt(fds.end, 0)} against ${fmt(fds.baseline, 0)} at the baseline (tolerance ${FD_TOLERANCE === 0 ? 'none' : `+${FD_TOLERANCE}`}): ${fds.pass ? 'back to baseline' : 'NOT back to baseline'}`,
    `JS heap: ${heap.end >= heap.baseline ? '+' : ''}${fmt((heap.end - heap.baseline) / MiB, 2)} MiB against the baseline, `
      + `tolerance ${fmt(heap.allowed / MiB, 2)} MiB (${fmt(CODE_ALLOWANCE / MiB, 0)} MiB for code compiled during the run + ${HEAP_TOLERANCE * 100} % of the `
      + `${fmt((heap.open - heap.baseline) / MiB, 1)} MiB the connections held after the traffic): `
      + `${heap.pass ? 'back to baseline' : 'NOT back to baseline'}`,
    `Failures: ${failures.openFailed} handshakes failed, ${failures.unexpectedClose} connections closed unasked, ${failures.badEcho} wrong echoes, `
      + `${failures.missing} echoes missing; proxy: ${result.counts.refused} refused, ${result.counts.errors} errors`,
    `Connections ended at the proxy: ${Object.entries(result.counts.endings).map(([k, n]) => `${k} ${fmt(n, 0)}`).join(', ')} (churn replaced ${fmt(result.churned, 0)})`,
    `Verdict: ${fds.pass && heap.pass && failed === 0 ? 'PASS' : 'FAIL'}`,
  ];
}

async function main(): Promise<void> {
  const o = parseOptions();
  console.log(`${machine()}, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB`);
  const loadBefore = loadAverage();
  console.log(`load average before: ${loadBefore}`);
  const started = new Date();
  const result = await soak({
    connections: o.connections,
    durationMs: o.durationMs,
    sampleMs: o.sampleMs,
    warmupConnections: 200,
    openConcurrency: 50,
    warmupMs: 5000,
    settleMs: o.settleMs,
    gcPauseMs: 500,
    plan: { ...DEFAULT_PLAN, seed: o.seed, minPeriodMs: o.minPeriodMs, maxPeriodMs: o.maxPeriodMs, churnMin: o.churnMin, churnMax: o.churnMax },
    onProgress: progress,
    onPhase: (phase) => console.error(`${new Date().toISOString().slice(11, 19)} soak: ${phase}`),
    proxyFlags: o.proxyFlags,
    ...(o.snapshots === undefined ? {} : { snapshotDir: o.snapshots }),
  });
  const loadAfter = loadAverage();
  console.log(`load average after: ${loadAfter}`);
  if (result.note !== undefined) console.log(result.note);
  console.log(`\nSoak started ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC: ${fmt(result.connections, 0)} connections through ProxyServer for `
    + `${fmt(o.durationMs / 1000, 0)} s, seed ${o.seed}, mean pause ${o.minPeriodMs}-${o.maxPeriodMs} ms, churn ${o.churnMin * 100}-${o.churnMax * 100} % per 10 s\n`);
  console.log(table(result, Math.round(o.tableMs / 1000)).join('\n'));
  console.log(`\n${verdict(result).join('\n')}`);
  const title = `Soak: ${fmt(result.connections, 0)} connections through ProxyServer, ${fmt(o.durationMs / 60_000, 0)} min, seed ${o.seed}; `
    + `load average ${loadBefore.split(',')[0]} -> ${loadAfter.split(',')[0]}`;
  if (o.svg !== '') writeFileSync(o.svg, soakSvg(result.rows, title));
  if (o.csv !== '') writeFileSync(o.csv, csv(result.rows));
  if (o.json !== '') writeFileSync(o.json, `${JSON.stringify({ options: o, loadBefore, loadAfter, ...result }, null, 2)}\n`);
  console.log(`\nwritten: ${[o.svg, o.csv, o.json].filter((p) => p !== '').join(', ')}`);
  if (!result.fds.pass || !result.heap.pass || failureCount(result) > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
