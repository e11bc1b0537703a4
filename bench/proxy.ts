/**
 * Proxy benchmark: 50 WebSocket connections echoing through
 *   (a) a `ws` echo server directly,
 *   (b) a raw TCP pipe proxy (`socket.pipe(upstream).pipe(socket)`), the baseline,
 *   (c) WebSocketProxy, no aggregation, no onFrame,
 *   (d) WebSocketProxy with `aggregateFragments: true` and a pass-through `onFrame`,
 * for 64 B messages (1 and 32 in flight per connection) and 1 MiB messages (1 in flight), plus the
 * RSS per idle proxied connection with 5,000 idle connections through (c). With `--soak`, only the
 * soak instead (bench/proxy-soak.ts): 10,000 connections echoing 64 B every 3-5 s for a minute
 * through (b) and (c), and the proxy's memory before, during, after, and once they closed.
 *
 * Run with `npm run bench:proxy` (add `-- --help` for options). Not part of `npm test`.
 *
 * Two processes: this one runs the proxies (b, c, d) and nothing else, so its CPU profile and its
 * RSS are the proxy's; a forked child runs the `ws` clients and the `ws` echo upstream. Every row of
 * a scenario runs back to back in one round (rotating who goes first), for several rounds; the table
 * gives medians over rounds, and the goal ratios are medians of the per-round ratios. Besides rates
 * and round-trip times, each row gives the CPU time (user + system) per round trip of this process
 * (the proxy) and of the load process: on a shared machine that figure is steadier than the rates.
 *
 * Messages are binary (no UTF-8 validation on either side), `perMessageDeflate: false` everywhere.
 * With `--deflate`, permessage-deflate instead on every hop: the upstream and the clients negotiate
 * it (ws's defaults, threshold 0), each message is compressed, and its payload is compressible text
 * (JSON-like, about 4:1); (c) then relays compressed frames untouched (pass-through), (d) inflates
 * and deflates on each hop.
 * MB/s counts each echoed payload once (10^6 bytes), although it crosses the proxy twice.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import WebSocket, { WebSocketServer } from 'ws';
import { hasNativeMask } from '../src/protocol/mask.js';
import { benchArgs } from './args.js';
import { closeClient, openClient, pool } from './clients.js';
import { HOST, fmt, idleFit, loadAverage, machine, median, medianRatio, percentile, sleep, waitFor } from './common.js';
import { runSoak } from './proxy-soak.js';
import { startTcpPipe, startWsProxy } from './relays.js';

// ---------------------------------------------------------------------------------------------
// Shared between the two processes.

interface RunCommand {
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
interface OpenIdleCommand {
  cmd: 'open-idle';
  id: number;
  url: string;
  count: number;
}
interface CloseIdleCommand {
  cmd: 'close-idle';
  id: number;
}
type ChildCommand = RunCommand | OpenIdleCommand | CloseIdleCommand | { cmd: 'exit'; id: number };

interface LoadResult {
  /** Round trips completed inside the measuring window. */
  messages: number;
  /** Their payload bytes (each echoed payload once). */
  bytes: number;
  /** Length of the measuring window. */
  elapsedMs: number;
  p50: number;
  p99: number;
  /** Client errors, failed connections, wrong echo sizes. */
  errors: number;
  /** Round trips of the whole run (warm-up and drain included). */
  total: number;
  /** CPU time of the load process over the whole run, in microseconds. */
  cpuMicros: number;
}
interface ChildReply {
  id: number;
  error?: string;
  result?: LoadResult;
  opened?: number;
}
interface ChildReady {
  ready: true;
  port: number;
}

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Child: ws clients and the ws echo upstream.

/** Whether this run uses permessage-deflate on every hop (`--deflate`). */
const DEFLATE = process.argv.includes('--deflate');

/** A payload of `size` bytes: random, or compressible JSON-like text with `--deflate`. */
function makePayload(size: number): Buffer {
  if (!DEFLATE) return randomBytes(size);
  const words = ['"id"', '"user"', '"message"', '"ts"', '"room"', '"text"', 'true', 'null'];
  let text = '';
  while (text.length < size) text += `{${words[text.length % 7]}:${(text.length * 2654435761) % 99991},${words[(text.length >> 3) % 8]}:"${randomBytes(3).toString('hex')}"},`;
  return Buffer.from(text.slice(0, size));
}

async function openClients(url: string, count: number, concurrency: number, onError: () => void): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  await pool(count, concurrency, async () => {
    try {
      out.push(await openClient(url, 15_000, onError, DEFLATE));
    } catch {
      onError();
    }
  });
  return out;
}

async function closeClients(clients: WebSocket[]): Promise<void> {
  await Promise.all(clients.map((ws) => closeClient(ws, 10_000)));
}

async function runLoad(command: RunCommand): Promise<LoadResult> {
  const payload = makePayload(command.size);
  const cpuStart = process.cpuUsage();
  let errors = 0;
  let total = 0;
  const onError = (): void => {
    errors++;
  };
  const clients = await openClients(command.url, command.connections, command.connections, onError);
  const latencies: number[] = [];
  let messages = 0;
  let bytes = 0;
  let outstanding = 0;
  let stopSending = false;
  const start = performance.now();
  const measureStart = start + command.warmupMs;
  let measureEnd = measureStart + command.durationMs;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const stopTimer = setTimeout(() => {
    stopSending = true;
    if (outstanding === 0) finish();
  }, command.warmupMs + command.durationMs);

  for (const ws of clients) {
    // Echoes come back in order on one connection: a FIFO of send times gives each round trip.
    let times: number[] = [];
    let head = 0;
    const send = (): void => {
      times.push(performance.now());
      outstanding++;
      ws.send(payload, { binary: true, compress: DEFLATE });
    };
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      const sentAt = times[head++]!;
      outstanding--;
      total++;
      if (head >= 1024) {
        times = times.slice(head);
        head = 0;
      }
      if (data.length !== command.size) errors++;
      if (now >= measureStart && now <= measureEnd) {
        messages++;
        bytes += data.length;
        latencies.push(now - sentAt);
        if (messages >= command.maxMessages) {
          measureEnd = now;
          stopSending = true;
        }
      }
      if (!stopSending) send();
      else if (outstanding === 0) finish();
    });
    for (let i = 0; i < command.inFlight; i++) send();
  }
  // Everything in flight comes back, or the run is cut after 30 s more.
  await Promise.race([finished, sleep(command.warmupMs + command.durationMs + 30_000)]);
  clearTimeout(stopTimer);
  if (outstanding !== 0) errors += outstanding;
  await closeClients(clients);
  const sorted = Float64Array.from(latencies).sort();
  const cpu = process.cpuUsage(cpuStart);
  return {
    total,
    cpuMicros: cpu.user + cpu.system,
    messages,
    bytes,
    elapsedMs: Math.min(measureEnd, performance.now()) - measureStart,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    errors: errors + (command.connections - clients.length),
  };
}

async function childMain(): Promise<void> {
  const send = (message: ChildReply | ChildReady): void => {
    process.send!(message);
  };
  const wss = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: DEFLATE ? { threshold: 0 } : false, backlog: 1024 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary, compress: DEFLATE }));
  });
  let idle: WebSocket[] = [];
  // Without its parent (it failed, or was stopped), the load process has nothing left to do.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: ChildCommand) => {
    const reply = async (): Promise<ChildReply> => {
      switch (message.cmd) {
        case 'run':
          return { id: message.id, result: await runLoad(message) };
        case 'open-idle': {
          let failed = 0;
          idle = await openClients(message.url, message.count, 100, () => {
            failed++;
          });
          return { id: message.id, opened: idle.length, ...(failed > 0 ? { error: `${failed} errors` } : {}) };
        }
        case 'close-idle':
          await closeClients(idle);
          idle = [];
          return { id: message.id };
        case 'exit':
          wss.close();
          setImmediate(() => process.exit(0));
          return { id: message.id };
      }
    };
    reply().then(send, (err: Error) => send({ id: message.id, error: err.message }));
  });
  send({ ready: true, port: (wss.address() as AddressInfo).port });
}

// ---------------------------------------------------------------------------------------------
// Parent: the proxies, the schedule, the table.

interface Options {
  rounds: number;
  warmupMs: number;
  durationMs: number;
  connections: number;
  idle: number;
  rows: string;
  scenarios: string[];
  soak: boolean;
  soakConnections: number;
  soakDurationMs: number;
  soakRows: string;
}

const HELP = `Usage: node dist/bench/proxy.js [options]
  --rounds N        rounds of every scenario, all rows alternating; 0: idle RSS only (default 3)
  --duration MS     measuring window of a run (default 3000)
  --warmup MS       unmeasured start of a run (default 500)
  --connections N   client connections per run (default 50)
  --idle N          idle connections for the RSS figure, 0 to skip (default 5000)
  --rows LETTERS    rows to run, e.g. cd (default abcd)
  --scenarios LIST  small1,small32,large (default all)
  --soak            run only the soak: connections echoing 64 B every 3-5 s, memory before/during/after
  --soak-connections N  connections of the soak, lowered to the open-files limit (default 10000)
  --soak-duration MS    length of the soak's exchange (default 60000)
  --soak-rows LETTERS   rows of the soak, letters of bc (default bc)
  --deflate         permessage-deflate on every hop, compressible payloads: (c) passes compressed
                    frames through, (d) inflates and deflates per hop`;

function parseOptions(): Options {
  const { values, int, letters } = benchArgs(HELP, {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '500' },
    connections: { type: 'string', default: '50' },
    idle: { type: 'string', default: '5000' },
    rows: { type: 'string', default: 'abcd' },
    scenarios: { type: 'string', default: 'small1,small32,large' },
    soak: { type: 'boolean', default: false },
    deflate: { type: 'boolean', default: false },
    'soak-connections': { type: 'string', default: '10000' },
    'soak-duration': { type: 'string', default: '60000' },
    'soak-rows': { type: 'string', default: 'bc' },
  });
  const soakRows = letters('soak-rows', values['soak-rows'], 'bc', true);
  return {
    rounds: int('rounds', values.rounds, 0),
    durationMs: int('duration', values.duration, 100),
    warmupMs: int('warmup', values.warmup, 0),
    connections: int('connections', values.connections, 1),
    idle: int('idle', values.idle, 0),
    rows: letters('rows', values.rows, 'abcd'),
    scenarios: (values.scenarios ?? '').split(',').filter((s) => s !== ''),
    soak: values.soak ?? false,
    soakConnections: int('soak-connections', values['soak-connections'], 1),
    soakDurationMs: int('soak-duration', values['soak-duration'], 1000),
    soakRows,
  };
}

interface Scenario {
  key: string;
  label: string;
  size: number;
  inFlight: number;
  maxMessages: number;
}
const SCENARIOS: Scenario[] = [
  { key: 'small1', label: '64 B, 1 in flight', size: 64, inFlight: 1, maxMessages: 5_000_000 },
  { key: 'small32', label: '64 B, 32 in flight', size: 64, inFlight: 32, maxMessages: 5_000_000 },
  { key: 'large', label: '1 MiB, 1 in flight', size: MiB, inFlight: 1, maxMessages: 20_000 },
];

interface Row {
  key: string;
  label: string;
  url: string;
  /** Connections the row's proxy holds now. */
  active(): number;
}

/**
 * Each process holds two sockets per idle connection (the proxy: client and upstream sides; the
 * child: the clients and the echo server's ends). Node raises its soft limit on open files to the
 * hard limit at startup, so what the shell reports from inside is the most the benchmark can get:
 * when it is too low, the count is lowered, and said so.
 */
function checkFileLimit(options: Options): void {
  if (options.idle === 0) return;
  const { count, limit, need } = idleFit(options.idle, 512);
  if (!(limit < need)) return;
  console.error(`ulimit -n is ${limit} (hard limit; ${options.idle} idle connections need ${need}): `
    + `measuring ${count} idle connections instead; raise it with 'ulimit -Hn ${need}' as root for the full count`);
  options.idle = count;
}

/** The GC, for settled memory figures (exposed at run time: no flag needed on the command line). */
function getGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** `--soak`: the soak alone, in processes of its own (see bench/proxy-soak.ts). */
async function soakMain(options: Options): Promise<void> {
  console.log(`${machine()}, bufferutil: ${hasNativeMask ? 'yes' : 'no'}${DEFLATE ? ', permessage-deflate on every hop (--deflate)' : ''}`);
  console.log(`load average before: ${loadAverage()}`);
  const lines = await runSoak({ connections: options.soakConnections, durationMs: options.soakDurationMs, rows: options.soakRows });
  console.log(`load average after: ${loadAverage()}\n`);
  console.log(lines.join('\n'));
}

async function main(): Promise<void> {
  const options = parseOptions();
  if (options.soak) {
    await soakMain(options);
    return;
  }
  checkFileLimit(options);
  const scenarios = options.scenarios.map((key) => {
    const scenario = SCENARIOS.find((s) => s.key === key);
    if (scenario === undefined) {
      console.error(`unknown scenario ${key}\n${HELP}`);
      process.exit(1);
    }
    return scenario;
  });

  const child = fork(fileURLToPath(import.meta.url), ['--load', ...(DEFLATE ? ['--deflate'] : [])], { execArgv: [], stdio: 'inherit' });
  const pending = new Map<number, (reply: ChildReply) => void>();
  let nextId = 1;
  const upstreamPort = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`load process exited (${code})`)));
    child.on('message', (message: ChildReply | ChildReady) => {
      if ('ready' in message) {
        resolve(message.port);
        return;
      }
      const done = pending.get(message.id);
      pending.delete(message.id);
      done?.(message);
    });
  });
  const request = (command: Omit<RunCommand, 'id'> | Omit<OpenIdleCommand, 'id'> | Omit<CloseIdleCommand, 'id'> | { cmd: 'exit' }): Promise<ChildReply> => {
    const id = nextId++;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      child.send({ ...command, id });
    });
  };

  const upstreamUrl = `ws://${HOST}:${upstreamPort}/`;
  const pipe = await startTcpPipe(upstreamPort, 1024);
  const plain = await startWsProxy(upstreamUrl, {}, 1024);
  const aggregated = await startWsProxy(upstreamUrl, {
    aggregateFragments: true,
    onFrame: (_proxy, _role, _type, payload) => payload,
  }, 1024);
  const allRows: Row[] = [
    { key: 'a', label: '(a) ws direct', url: upstreamUrl, active: () => 0 },
    { key: 'b', label: '(b) TCP pipe', url: `ws://${HOST}:${pipe.port}/`, active: () => pipe.active },
    { key: 'c', label: '(c) proxy', url: `ws://${HOST}:${plain.port}/`, active: () => plain.active },
    { key: 'd', label: '(d) proxy, aggregate + onFrame', url: `ws://${HOST}:${aggregated.port}/`, active: () => aggregated.active },
  ];
  const rows = allRows.filter((row) => options.rows.includes(row.key));

  const gc = getGc();
  const loadBefore = loadAverage();
  console.log(`${machine()}, bufferutil: ${hasNativeMask ? 'yes' : 'no'}`);
  console.log(`load average before: ${loadBefore}`);

  // Idle RSS first, while the heap is fresh: freed memory is not given back promptly, so a
  // measurement after the throughput runs would reuse it and read low.
  let idleLine = '';
  if (options.idle > 0) {
    // Warm-up: the first connections compile code and grow V8's spaces; not counted.
    await request({ cmd: 'open-idle', url: allRows[2]!.url, count: 200 });
    await request({ cmd: 'close-idle' });
    await waitFor('the warm-up connections to close', () => plain.active === 0, 20_000, 20);
    gc();
    await sleep(500);
    gc();
    const before = process.memoryUsage();
    const opened = await request({ cmd: 'open-idle', url: allRows[2]!.url, count: options.idle });
    await waitFor('the idle connections to be proxied', () => plain.executing >= (opened.opened ?? 0), 30_000, 20);
    await sleep(1000);
    gc();
    await sleep(500);
    gc();
    const after = process.memoryUsage();
    const n = plain.executing;
    const per = (key: 'rss' | 'heapUsed' | 'external') => (after[key] - before[key]) / n / 1024;
    idleLine = `Idle connections through (c): ${n} (of ${options.idle} asked${opened.error ? `, ${opened.error}` : ''}); `
      + `RSS ${fmt(before.rss / MiB, 1)} -> ${fmt(after.rss / MiB, 1)} MiB: ${fmt(per('rss'), 1)} KiB per connection `
      + `(heap ${fmt(per('heapUsed'), 1)} KiB, external ${fmt(per('external'), 2)} KiB)`;
    console.log(idleLine);
    await request({ cmd: 'close-idle' });
    await waitFor('the idle connections to close', () => plain.active === 0, 60_000, 20);
  }

  /** Per run: rates, and CPU per round trip of this process (the proxy) and of the load process. */
  type Sample = LoadResult & { msgsPerSec: number; mbPerSec: number; proxyCpu: number; proxyUser: number; loadCpu: number };
  const results = new Map<string, Sample[]>();
  for (let round = 0; round < options.rounds; round++) {
    for (const [s, scenario] of scenarios.entries()) {
      const shift = (round + s) % rows.length;
      const order = [...rows.slice(shift), ...rows.slice(0, shift)];
      for (const row of order) {
        const cpuStart = process.cpuUsage();
        const reply = await request({
          cmd: 'run',
          url: row.url,
          size: scenario.size,
          inFlight: scenario.inFlight,
          connections: options.connections,
          warmupMs: options.warmupMs,
          durationMs: options.durationMs,
          maxMessages: scenario.maxMessages,
        });
        if (reply.result === undefined) throw new Error(`${row.label}, ${scenario.label}: ${reply.error}`);
        const cpu = process.cpuUsage(cpuStart);
        const r = reply.result;
        const sample: Sample = {
          ...r,
          msgsPerSec: r.messages / (r.elapsedMs / 1000),
          mbPerSec: r.bytes / 1e6 / (r.elapsedMs / 1000),
          // Row (a) does not go through this process: its figure would be the benchmark's own idling.
          proxyCpu: row.key === 'a' ? NaN : (cpu.user + cpu.system) / r.total,
          // User time apart: system time (the socket calls) is the same for any relay of the same bytes.
          proxyUser: row.key === 'a' ? NaN : cpu.user / r.total,
          loadCpu: r.cpuMicros / r.total,
        };
        const key = `${scenario.key}/${row.key}`;
        results.set(key, [...(results.get(key) ?? []), sample]);
        console.error(`${new Date().toISOString().slice(11, 19)} round ${round + 1} ${scenario.label} ${row.label}: ${fmt(sample.msgsPerSec, 0)} msg/s, `
          + `${fmt(sample.mbPerSec, 1)} MB/s, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, `
          + `CPU/msg proxy ${fmt(sample.proxyCpu, 1)} us (user ${fmt(sample.proxyUser, 1)}), load ${fmt(sample.loadCpu, 1)} us${r.errors > 0 ? `, ${r.errors} errors` : ''}`);
        await waitFor(`${row.label} connections to close`, () => row.active() === 0, 20_000, 20);
      }
    }
  }
  const loadAfter = loadAverage();

  const lines: string[] = [];
  lines.push(`| Messages | Row | msg/s | MB/s | p50 ms | p99 ms | msg/s vs (b) | proxy CPU µs/msg | of it user | load CPU µs/msg |`);
  lines.push(`|---|---|---:|---:|---:|---:|---:|---:|---:|---:|`);
  for (const scenario of scenarios) {
    const base = median((results.get(`${scenario.key}/b`) ?? []).map((x) => x.msgsPerSec));
    for (const row of rows) {
      const samples = results.get(`${scenario.key}/${row.key}`) ?? [];
      const rate = median(samples.map((x) => x.msgsPerSec));
      const errors = samples.reduce((sum, x) => sum + x.errors, 0);
      lines.push(`| ${scenario.label} | ${row.label}${errors > 0 ? ` (${errors} errors)` : ''} | ${fmt(rate, 0)} | `
        + `${fmt(median(samples.map((x) => x.mbPerSec)), 1)} | ${fmt(median(samples.map((x) => x.p50)), 2)} | `
        + `${fmt(median(samples.map((x) => x.p99)), 2)} | ${fmt(rate / base, 2)}x | `
        + `${fmt(median(samples.map((x) => x.proxyCpu)), 1)} | ${fmt(median(samples.map((x) => x.proxyUser)), 1)} | `
        + `${fmt(median(samples.map((x) => x.loadCpu)), 1)} |`);
    }
  }
  // Goal ratios: the median of each round's ratio (rows of one round ran side by side).
  const roundRatios = (scenarioKey: string, metric: 'msgsPerSec' | 'mbPerSec' | 'proxyCpu' | 'proxyUser', row: string): number => {
    const d = results.get(`${scenarioKey}/${row}`) ?? [];
    const b = results.get(`${scenarioKey}/b`) ?? [];
    return medianRatio(d, b, (x) => x[metric]);
  };
  console.log('');
  console.log(`${options.connections} connections, ${options.rounds} rounds of ${options.warmupMs} + ${options.durationMs} ms per run, medians`);
  console.log(`load average before: ${loadBefore}; after: ${loadAfter}`);
  console.log('');
  if (options.rounds > 0) console.log(`${lines.join('\n')}\n`);
  if (idleLine !== '') console.log(`${idleLine}\n`);
  for (const [name, server] of [['(b)', pipe], ['(c)', plain], ['(d)', aggregated]] as const) {
    if (server.failures > 0) console.log(`warning: ${server.failures} connections failed in ${name}`);
  }
  // Issue 8's goals: 64 B x32 stays >= 0.90x; at 1 MiB, >= 0.95x without stages (c) and >= 0.85x with
  // aggregateFragments and a pass-through onFrame (d).
  const largeGoal: Record<string, string> = { c: '0.95', d: '0.85' };
  for (const row of ['c', 'd'].filter((r) => options.rounds > 0 && options.rows.includes(r) && options.rows.includes('b'))) {
    if (row === 'c' && options.scenarios.includes('small1')) {
      // Issue 8 section 4: without stages, the proxy's CPU per message at most the pipe's (user time apart).
      console.log(`(${row})/(b) proxy CPU per message, 64 B x1 (median of per-round ratios): ${fmt(roundRatios('small1', 'proxyCpu', row), 2)}x `
        + `(goal <= 1.00x; user time alone ${fmt(roundRatios('small1', 'proxyUser', row), 2)}x)`);
    }
    if (options.scenarios.includes('small32')) {
      console.log(`(${row})/(b) msg/s, 64 B x32 (median of per-round ratios): ${fmt(roundRatios('small32', 'msgsPerSec', row), 2)}x (goal >= 0.90x)`);
    }
    if (options.scenarios.includes('large')) {
      console.log(`(${row})/(b) MB/s, 1 MiB (median of per-round ratios): ${fmt(roundRatios('large', 'mbPerSec', row), 2)}x (goal >= ${largeGoal[row]}x)`);
    }
  }

  await request({ cmd: 'exit' });
  pipe.close();
  plain.close();
  aggregated.close();
  // Anything left (a stuck connection) must not keep the benchmark alive.
  setTimeout(() => process.exit(0), 2000).unref();
}

if (process.argv.includes('--load')) {
  childMain().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
