/**
 * Stage benchmark: the CPU cost per message of each ready stage of `ws-frame-proxy/transforms`, and
 * of a typical chain of them in a running proxy.
 *
 * Run with `npx tsc -p tsconfig.json && node dist/bench/stages.js` (add `--help` for options). Not
 * part of `npm test`. About 2 minutes with the defaults on 2 cores.
 *
 * 1. Stages alone, in process: `Readable.from(frames) -> stage -> a Writable that counts`, for
 *    64 B and 16 KiB text messages (a JSON object, so that the JSON stages do their full work).
 *    Two reference rows: no stage at all, and an identity `Transform` (what one stream hop costs).
 *    Each stage's "over none" column is its CPU per message minus the no-stage row's, from the same
 *    round. Every round runs every row (rotating who goes first); the table gives medians.
 * 2. End to end: `ws` clients (64 B binary messages, 32 in flight per connection) echoing through
 *    (c) the bare `WebSocketProxy` and (s) the proxy with `map + filter + tap + metrics` on both
 *    directions (fresh stages per connection, one shared prom-client `Registry`), side by side in
 *    alternating rounds. The load (clients and the `ws` echo upstream) is the child process of
 *    `dist/bench/proxy.js --load`, driven through its IPC protocol, so this process runs the
 *    proxies only; its CPU time per round trip is the figure, and (s)/(c) its ratio per round
 *    (goal: at most 1.20x).
 *
 * Time is CPU time (`process.cpuUsage`), not wall time: on a shared machine it is steadier.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { Readable, Transform, Writable, pipeline } from 'readable-stream';
import { type Frame, textFrame } from '../src/frame.js';
import type { ProxyOptions } from '../src/proxy/options.js';
import { WebSocketProxy } from '../src/proxy/websocket-proxy.js';
import { aggregate } from '../src/transforms/aggregate.js';
import { filter } from '../src/transforms/filter.js';
import { fragment } from '../src/transforms/fragment.js';
import { log } from '../src/transforms/log.js';
import { map, mapText } from '../src/transforms/map.js';
import { metrics } from '../src/transforms/metrics.js';
import { rateLimit } from '../src/transforms/rate-limit.js';
import { redact } from '../src/transforms/redact.js';
import { sizeLimit } from '../src/transforms/size-limit.js';
import { tap } from '../src/transforms/tap.js';
import { validateJson } from '../src/transforms/validate-json.js';
import { benchArgs } from './args.js';
import { HOST, fmt, listen, loadAverage, machine, median, medianRatio, sleep } from './common.js';

const HELP = `Usage: node dist/bench/stages.js [options]
  --rounds N        rounds of the in-process stage runs (default 5)
  --small N         64 B messages per in-process run (default 50000)
  --large N         16 KiB messages per in-process run (default 2000)
  --proxy-rounds N  rounds of the end-to-end runs, 0 to skip (default 6)
  --duration MS     measuring window of an end-to-end run (default 3000)
  --connections N   client connections per end-to-end run (default 50)
  --only NAMES      in-process rows to run, comma-separated (default all)`;

interface Options {
  rounds: number;
  small: number;
  large: number;
  proxyRounds: number;
  durationMs: number;
  connections: number;
  only: string[] | undefined;
}

function parseOptions(): Options {
  const { values, int } = benchArgs(HELP, {
    rounds: { type: 'string', default: '5' },
    small: { type: 'string', default: '50000' },
    large: { type: 'string', default: '2000' },
    'proxy-rounds': { type: 'string', default: '6' },
    duration: { type: 'string', default: '3000' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
  });
  return {
    rounds: int('rounds', values.rounds, 1),
    small: int('small', values.small, 1),
    large: int('large', values.large, 1),
    proxyRounds: int('proxy-rounds', values['proxy-rounds'], 0),
    durationMs: int('duration', values.duration, 100),
    connections: int('connections', values.connections, 1),
    only: values.only === undefined ? undefined : values.only.split(',').filter((s) => s !== ''),
  };
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const cpu = process.cpuUsage(since);
  return cpu.user + cpu.system;
}

// ---------------------------------------------------------------------------------------------
// 1. Stages alone.

/** A JSON text message of exactly `size` bytes, with a field for redact() and one for the schema. */
function jsonMessage(size: number): Frame {
  const head = '{"op":"say","user":"ann","password":"hunter2","data":"';
  const tail = '"}';
  return textFrame(head + 'x'.repeat(size - head.length - tail.length) + tail);
}

/** A row of the in-process table: makes a fresh stage (or none) for one run. */
interface StageRow {
  name: string;
  make: (() => Transform) | undefined;
}

const noopLogger = { debug: (): void => {} };

function stageRows(registry: Registry): StageRow[] {
  const schema = { type: 'object', required: ['op'], properties: { op: { type: 'string' } } };
  return [
    { name: '(no stage)', make: undefined },
    { name: '(identity Transform)', make: () => new Transform({ objectMode: true, transform: (frame: Frame, _e, cb) => cb(null, frame) }) },
    { name: 'map', make: () => map((frame) => frame) },
    { name: 'filter', make: () => filter(() => true) },
    { name: 'tap', make: () => tap(() => undefined) },
    { name: 'mapText', make: () => mapText((text) => text.replace('say', 'yell')) },
    { name: 'redact', make: () => redact({ keys: ['password'] }) },
    { name: 'validateJson', make: () => validateJson({ schema }) },
    { name: 'sizeLimit', make: () => sizeLimit({ maxMessageSize: 1 << 20 }) },
    { name: 'rateLimit', make: () => rateLimit({ messagesPerSecond: 1e9, bytesPerSecond: 1e12 }) },
    { name: 'log (no-op logger)', make: () => log({ logger: noopLogger }) },
    { name: 'metrics', make: () => metrics({ registry }) },
    { name: 'fragment (4 KiB)', make: () => fragment({ maxFrameSize: 4096 }) },
    { name: 'aggregate', make: () => aggregate() },
  ];
}

/** Pushes `count` copies of `frame` through `stage` (or straight to the sink); CPU µs per message. */
async function timeRun(stage: Transform | undefined, frame: Frame, count: number): Promise<number> {
  function* frames(): Generator<Frame> {
    for (let i = 0; i < count; i++) yield frame;
  }
  let received = 0;
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 16,
    write(_frame: Frame, _e, cb) {
      received++;
      cb();
    },
  });
  const source = Readable.from(frames(), { objectMode: true });
  const start = process.cpuUsage();
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (stage === undefined) pipeline(source, sink, done);
    else pipeline(source, stage, sink, done);
  });
  const micros = cpuMicros(start);
  if (received < count) throw new Error(`only ${received} of ${count} frames came out`);
  return micros / count;
}

async function benchStages(options: Options): Promise<string[]> {
  const registry = new Registry();
  const rows = stageRows(registry).filter((row) => options.only === undefined || row.make === undefined || options.only.includes(row.name.split(' ')[0]!));
  const sizes = [
    { label: '64 B', frame: jsonMessage(64), count: options.small },
    { label: '16 KiB', frame: jsonMessage(16 * 1024), count: options.large },
  ];
  // results[size][row] = per-round µs/msg; deltas over the no-stage row of the same round.
  const results = sizes.map(() => rows.map(() => [] as number[]));
  const deltas = sizes.map(() => rows.map(() => [] as number[]));
  // Round 0 is a warm-up (code compiled, caches filled), not recorded.
  for (let round = 0; round <= options.rounds; round++) {
    for (const [s, size] of sizes.entries()) {
      const shift = (round + s) % rows.length;
      const order = [...rows.keys()].slice(shift).concat([...rows.keys()].slice(0, shift));
      const perRow = new Array<number>(rows.length);
      for (const r of order) {
        const row = rows[r]!;
        const stage = row.make?.();
        perRow[r] = await timeRun(stage, size.frame, size.count);
      }
      if (round === 0) continue;
      for (const r of rows.keys()) {
        results[s]![r]!.push(perRow[r]!);
        deltas[s]![r]!.push(perRow[r]! - perRow[0]!);
      }
    }
    console.error(`stages: round ${round}${round === 0 ? ' (warm-up)' : ''} done`);
  }
  const lines = [
    `| Stage | 64 B µs/msg | 64 B over none | 16 KiB µs/msg | 16 KiB over none |`,
    `|---|---:|---:|---:|---:|`,
  ];
  for (const [r, row] of rows.entries()) {
    const cells = sizes.map((_size, s) => {
      const delta = r === 0 ? '-' : fmt(median(deltas[s]![r]!), 2);
      return `${fmt(median(results[s]![r]!), 2)} | ${delta}`;
    });
    lines.push(`| ${row.name} | ${cells.join(' | ')} |`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// 2. End to end, with the load process of bench/proxy.

/** The `run` command of bench/proxy's load process, and its reply (declared here: not exported). */
interface LoadRun {
  cmd: 'run';
  id: number;
  url: string;
  size: number;
  inFlight: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  maxMessages: number;
}
interface LoadReply {
  id: number;
  error?: string;
  result?: { messages: number; elapsedMs: number; errors: number; total: number; p50: number; p99: number };
}
type LoadMessage = LoadReply | { ready: true; port: number };

interface ProxyServer {
  url: string;
  active: number;
  failures: number;
  close(): void;
}

async function startProxy(upstreamUrl: string, options: () => ProxyOptions<WebSocketProxy>): Promise<ProxyServer> {
  const server = http.createServer((_req, res) => {
    res.writeHead(426).end();
  });
  const state: ProxyServer = { url: '', active: 0, failures: 0, close: () => server.close() };
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    state.active++;
    const proxy = new WebSocketProxy(options());
    proxy.connect(upstreamUrl, req, socket, head)
      .then(() => proxy.execute())
      .catch(() => {
        state.failures++;
      })
      .finally(() => {
        state.active--;
      });
  });
  state.url = `ws://${HOST}:${await listen(server, 1024)}/`;
  return state;
}

async function benchProxy(options: Options): Promise<string[]> {
  const loadScript = fileURLToPath(new URL('./proxy.js', import.meta.url));
  const child = fork(loadScript, ['--load'], { execArgv: [], stdio: 'inherit' });
  const pending = new Map<number, (reply: LoadReply) => void>();
  let nextId = 1;
  const upstreamPort = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`load process exited (${code})`)));
    child.on('message', (message: LoadMessage) => {
      if ('ready' in message) {
        resolve(message.port);
        return;
      }
      pending.get(message.id)?.(message);
      pending.delete(message.id);
    });
  });
  const request = (command: Omit<LoadRun, 'id'> | { cmd: 'exit' }): Promise<LoadReply> => {
    const id = nextId++;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      child.send({ ...command, id });
    });
  };

  const upstreamUrl = `ws://${HOST}:${upstreamPort}/`;
  const registry = new Registry();
  const chain = () => [map((frame) => frame), filter(() => true), tap(() => undefined), metrics({ registry })];
  const rows = [
    { key: 'c', label: '(c) proxy', server: await startProxy(upstreamUrl, () => ({})) },
    {
      key: 's', label: '(s) proxy + map, filter, tap, metrics both ways',
      server: await startProxy(upstreamUrl, () => ({ transforms: { client: chain(), upstream: chain() } })),
    },
  ];
  const samples = new Map<string, { cpu: number; rate: number; p50: number; p99: number; errors: number }[]>();
  for (let round = 0; round < options.proxyRounds; round++) {
    const order = round % 2 === 0 ? rows : [...rows].reverse();
    for (const row of order) {
      const start = process.cpuUsage();
      const reply = await request({
        cmd: 'run', url: row.server.url, size: 64, inFlight: 32, connections: options.connections,
        warmupMs: 500, durationMs: options.durationMs, maxMessages: 5_000_000,
      });
      if (reply.result === undefined) throw new Error(`${row.label}: ${reply.error}`);
      const cpu = cpuMicros(start) / reply.result.total;
      const r = reply.result;
      samples.set(row.key, [...(samples.get(row.key) ?? []), { cpu, rate: r.messages / (r.elapsedMs / 1000), p50: r.p50, p99: r.p99, errors: r.errors }]);
      console.error(`proxy: round ${round + 1} ${row.label}: ${fmt(r.messages / (r.elapsedMs / 1000), 0)} msg/s, CPU ${fmt(cpu, 1)} µs/msg${r.errors > 0 ? `, ${r.errors} errors` : ''}`);
      const deadline = Date.now() + 20_000;
      while (row.server.active > 0 && Date.now() < deadline) await sleep(20);
    }
  }
  await request({ cmd: 'exit' });
  for (const row of rows) row.server.close();

  const c = samples.get('c') ?? [];
  const s = samples.get('s') ?? [];
  const ratio = medianRatio(s, c, (x) => x.cpu);
  const lines = [
    `| 64 B, 32 in flight | msg/s | p50 ms | p99 ms | proxy CPU µs/msg |`,
    `|---|---:|---:|---:|---:|`,
  ];
  for (const row of rows) {
    const list = samples.get(row.key) ?? [];
    const errors = list.reduce((sum, x) => sum + x.errors, 0);
    lines.push(`| ${row.label}${errors > 0 ? ` (${errors} errors)` : ''} | ${fmt(median(list.map((x) => x.rate)), 0)} | `
      + `${fmt(median(list.map((x) => x.p50)), 2)} | ${fmt(median(list.map((x) => x.p99)), 2)} | ${fmt(median(list.map((x) => x.cpu)), 1)} |`);
  }
  // The metrics saw every message of (s): a check that the chain ran, not a figure.
  const text = await registry.metrics();
  const counted = [...text.matchAll(/^ws_proxy_frames_total\{[^}]*type="binary"\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  const failures = rows.map((row) => row.server.failures).reduce((x, y) => x + y, 0);
  lines.push('', `(s)/(c) proxy CPU per message (median of per-round ratios): ${fmt(ratio, 2)}x (goal <= 1.20x)`);
  lines.push(`binary frames counted by (s)'s metrics, both ways: ${fmt(counted, 0)}${failures > 0 ? `; ${failures} proxied connections failed` : ''}`);
  return lines;
}

async function main(): Promise<void> {
  const options = parseOptions();
  console.log(machine());
  console.log(`load average before: ${loadAverage()}`);
  const stageLines = await benchStages(options);
  const proxyLines = options.proxyRounds > 0 ? await benchProxy(options) : [];
  console.log('');
  console.log(`Stages alone: ${options.small} x 64 B and ${options.large} x 16 KiB JSON text messages per run, `
    + `${options.rounds} rounds after a warm-up, medians; "over none": minus the no-stage row of the same round`);
  console.log('');
  console.log(stageLines.join('\n'));
  if (proxyLines.length > 0) {
    console.log('');
    console.log(`End to end: ${options.connections} connections, ${options.proxyRounds} rounds of 500 + ${options.durationMs} ms per run, medians`);
    console.log('');
    console.log(proxyLines.join('\n'));
  }
  console.log('');
  console.log(`load average after: ${loadAverage()}`);
  // Anything left (a stuck connection) must not keep the benchmark alive.
  setTimeout(() => process.exit(0), 2000).unref();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
