/**
 * What one relay process spends per echo round trip, one message in flight per connection, for:
 *   pipe     a raw TCP pipe (`socket.pipe(upstream).pipe(socket)`), bench/proxy's row (b);
 *   upgrade  the same pipe behind HTTP upgrades on both hops (Node's http server and client, then
 *            bytes piped untouched): the least any WebSocket relay on Node's sockets does;
 *   proxy    WebSocketProxy with no stage, bench/proxy's row (c) (the direct path).
 * The clients and the `ws` echo upstream run in a child process, so the relay's figures are its own.
 *
 * CPU time per round trip, user and system apart (`process.cpuUsage()`), median of rounds with the
 * relays alternating: what issue 8's per-message goal reads. System time (the socket calls) is the
 * same for any relay of the same bytes; user time is where relays differ. All relays run in this one
 * process, as in bench/proxy, so they share Node's inline caches: the pipe's own figure is then a
 * little above what a process running only a pipe spends.
 *
 * Usage: node dist/bench/relay-cpu.js [--relays pipe,upgrade,proxy] [--connections 20] [--messages 2000]
 *   [--size 64] [--rounds 6]
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { benchArgs, usageError } from './args.js';
import { HOST, fmt, listen, loadAverage, machine, median } from './common.js';
import { startTcpPipe, startWsProxy } from './relays.js';

const HELP = `Usage: node dist/bench/relay-cpu.js [options]
  --relays LIST      relays to measure, of pipe, upgrade, proxy (default pipe,upgrade,proxy)
  --connections N    echo connections, one message in flight each (default 20)
  --messages N       round trips per connection per round (default 2000)
  --size N           payload bytes (default 64)
  --rounds N         rounds per relay, the first one not counted (default 6)
  --help`;

type Relay = 'pipe' | 'upgrade' | 'proxy';
const RELAYS: readonly Relay[] = ['pipe', 'upgrade', 'proxy'];

interface Job { url: string; connections: number; messages: number; size: number }

/** The child: a `ws` echo server, and clients that echo through the relay on request. */
async function runLoad(): Promise<void> {
  const wss = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data as Buffer, { binary })));
  await new Promise((resolve) => wss.once('listening', resolve));
  process.send!({ port: (wss.address() as net.AddressInfo).port });
  process.on('message', (job: Job | 'exit') => {
    if (job === 'exit') process.exit(0);
    void echo(job).then(() => process.send!({ done: true }));
  });
}

async function echo(job: Job): Promise<void> {
  const payload = Buffer.alloc(job.size, 1);
  const sockets = await Promise.all(Array.from({ length: job.connections }, () => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(job.url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  })));
  await Promise.all(sockets.map((ws) => new Promise<void>((resolve) => {
    let n = 0;
    ws.on('message', () => {
      if (++n === job.messages) resolve();
      else ws.send(payload);
    });
    ws.send(payload);
  })));
  await Promise.all(sockets.map((ws) => new Promise((resolve) => {
    ws.once('close', resolve);
    ws.close();
  })));
}

/**
 * The relay to measure, listening: bench/proxy's pipe and proxy (see relays.ts), or the pipe behind
 * HTTP upgrades on both hops.
 */
async function startRelay(relay: Relay, upstreamPort: number): Promise<{ port: number; close(): void }> {
  if (relay === 'pipe') return startTcpPipe(upstreamPort, 511);
  if (relay === 'proxy') return startWsProxy(`ws://${HOST}:${upstreamPort}/`, {}, 511);
  const server = http.createServer();
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const upstream = http.request({ host: HOST, port: upstreamPort, path: req.url, headers: req.headers });
    upstream.on('upgrade', (res: http.IncomingMessage, upstreamSocket: net.Socket, upstreamHead: Buffer) => {
      let response = 'HTTP/1.1 101 Switching Protocols\r\n';
      for (let i = 0; i < res.rawHeaders.length; i += 2) response += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
      socket.write(`${response}\r\n`);
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      socket.setNoDelay(true);
      upstreamSocket.setNoDelay(true);
      socket.pipe(upstreamSocket).pipe(socket);
      // Either one's end or error ends both.
      for (const [x, y] of [[socket, upstreamSocket], [upstreamSocket, socket]] as const) {
        x.on('error', () => y.destroy());
        x.on('close', () => y.destroy());
      }
    });
    upstream.on('error', () => socket.destroy());
    upstream.end();
  });
  return { port: await listen(server, 511), close: () => server.close() };
}

/**
 * Measures the relays in this process, alternating them round by round (so that a change in the
 * machine's load falls on all of them): CPU per round trip of each round, per relay.
 */
async function measure(relays: Relay[], job: Omit<Job, 'url'>, rounds: number): Promise<Map<Relay, Array<{ user: number; system: number }>>> {
  const child = fork(fileURLToPath(import.meta.url), ['--load'], { execArgv: [] });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', resolve as (m: unknown) => void));
  const servers = await Promise.all(relays.map((relay) => startRelay(relay, port)));
  const samples = new Map<Relay, Array<{ user: number; system: number }>>(relays.map((r) => [r, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [i, relay] of relays.entries()) {
      const start = process.cpuUsage();
      child.send({ ...job, url: `ws://${HOST}:${servers[i]!.port}/` });
      await new Promise((resolve) => child.once('message', resolve));
      const cpu = process.cpuUsage(start);
      const total = job.connections * job.messages;
      samples.get(relay)!.push({ user: cpu.user / total, system: cpu.system / total });
    }
  }
  child.send('exit');
  for (const server of servers) server.close();
  return samples;
}

async function main(): Promise<void> {
  const { values, int } = benchArgs(HELP, {
    relays: { type: 'string', default: RELAYS.join(',') },
    connections: { type: 'string', default: '20' },
    messages: { type: 'string', default: '2000' },
    size: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '6' },
  });
  const relays = (values.relays ?? '').split(',').filter((r) => r !== '');
  for (const r of relays) if (!RELAYS.includes(r as Relay)) usageError(`--relays takes ${RELAYS.join(', ')}`, HELP);
  const job = { connections: int('connections', values.connections, 1), messages: int('messages', values.messages, 10), size: int('size', values.size, 0) };
  const rounds = int('rounds', values.rounds, 1);
  console.log(`${machine()}\nload average before: ${loadAverage()}`);
  console.log(`\nCPU per round trip of the relay process (${job.connections} connections x ${job.messages} messages of ${job.size} B, `
    + `median of ${rounds - 1} rounds after a first one, the relays alternating)\n`);
  console.log('| Relay | user µs | system µs | total µs | total vs pipe |\n|---|---:|---:|---:|---:|');
  const measured = await measure(relays as Relay[], job, rounds);
  let pipe = NaN;
  for (const relay of relays as Relay[]) {
    const samples = measured.get(relay)!.slice(rounds > 1 ? 1 : 0);
    const user = median(samples.map((s) => s.user));
    const system = median(samples.map((s) => s.system));
    const total = median(samples.map((s) => s.user + s.system));
    if (relay === 'pipe') pipe = total;
    console.log(`| ${relay} | ${fmt(user, 1)} | ${fmt(system, 1)} | ${fmt(total, 1)} | ${Number.isFinite(pipe) ? `${fmt(total / pipe, 2)}x` : '-'} |`);
  }
  console.log(`\nload average after: ${loadAverage()}`);
}

if (process.argv.includes('--load')) void runLoad();
else void main();
