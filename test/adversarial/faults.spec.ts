/**
 * Fault injection between the proxy and its peers (issue 10, section 3).
 *
 * The first describe tests the injector itself (test/helpers/fault-injector.ts). The second puts an
 * injector between the client and the proxy and another between the proxy and the upstream, and runs
 * seeded connections through them: each seed chooses the proxy (a `ProxyServer`, or a bare
 * `WebSocketProxy` on an http server), aggregation on or off, the traffic (messages, fragmented or
 * not, small to 40 KiB, permessage-deflate or not, who closes and with which code) and one fault
 * script per injector (resets in the middle of a frame, stalled reads or writes for a while or for
 * ever, 1-byte segments, half closes; now and then in the handshakes). Every run must end with:
 *
 * - the proxy settled: `execute()` resolved (a `'close'` event of the server), or the handshake was
 *   refused (a documented code or HTTP status, the one the client saw), and `summary.error` either
 *   unset or a documented code a fault can cause;
 * - each peer closed with a close code; 1006 (no close frame) only for a peer behind a fault that
 *   can prevent one (a reset, a half close, a stall for ever), for a client whose handshake the proxy
 *   refused, or for a peer that was receiving a frame relayed as it arrived (16 KiB or more,
 *   aggregation off) when a fault on the other side (not a split) left that frame unfinished: it is
 *   cut off (architecture.md, "A frame that cannot be finished");
 *   a peer behind an endless stall that is still open once the proxy is done gives up (1006);
 * - what each peer received a prefix, in order, of what the other sent; when no fault fired at all,
 *   all of it, the closing peer's code at the other peer and no `summary.error`;
 * - nothing left: the open handles (`process.getActiveResourcesInfo()`, counted by type: sockets,
 *   servers, timers, immediates) equal to what they were before the run, no live connection in the
 *   proxy or the servers, every relayed socket destroyed.
 *
 * Runs: `WSP_FAULT_RUNS` (default 200, split over the four proxy configurations; 5000 take about
 * 9 minutes), seeds 1 to N. A failing run names its seed, its scripts and the faults that fired;
 * `WSP_FAULT_SEED=<seed>` replays that run alone (the same scripts and traffic; the interleaving of
 * real sockets may differ). `WSP_FAULT_VERBOSE=1` prints one line per run.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { WebSocket, WebSocketServer } from 'ws';
import { PARTIAL_FRAME_MIN } from '../../src/streams/frame-readable.js';
import { ErrorCodes, type ProxySummary, type ProxyServer, WebSocketProxy, createProxyServer } from '../../src/index.js';
import { FaultInjector, type FaultScript, describeScript, randomScript } from '../helpers/fault-injector.js';
import { SeededRandom } from '../helpers/random.js';
import { fakeTimers, releaseAll } from '../proxy/rig.js';
import { settle, tick, waitFor } from '../helpers/sockets.js';

/** Captured at load time: sinon's fake timers (injector self-tests) must not stop the runs' waits. */
const realSetTimeout = globalThis.setTimeout;

// ---------------------------------------------------------------------------------------------
// The injector's self-test

/** A TCP server that accepts one connection, and a client connected to it through an injector. */
async function through(script: FaultScript, countFrom: 'start' | 'body' = 'start'): Promise<{
  client: net.Socket; server: net.Socket; injector: FaultInjector; received: { client: Buffer[]; server: Buffer[] }; close(): Promise<void>;
}> {
  const target = net.createServer({ allowHalfOpen: true });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  const injector = await FaultInjector.start({ target: { port: (target.address() as AddressInfo).port }, script: () => script, countFrom });
  const accepted = once(target, 'connection') as Promise<[net.Socket]>;
  const client = net.connect({ port: injector.port, host: '127.0.0.1', allowHalfOpen: true });
  const [server] = await accepted;
  target.close();
  const received = { client: [] as Buffer[], server: [] as Buffer[] };
  client.on('data', (chunk: Buffer) => received.client.push(chunk));
  server.on('data', (chunk: Buffer) => received.server.push(chunk));
  client.on('error', () => undefined);
  server.on('error', () => undefined);
  return {
    client, server, injector, received,
    async close() {
      client.destroy();
      server.destroy();
      await injector.close();
    },
  };
}

/** Resolves at the socket's 'close' (events.once would reject at the 'error' a reset brings first). */
const closeOf = (socket: net.Socket): Promise<void> => new Promise((resolve) => {
  if (socket.closed) resolve();
  else socket.once('close', () => resolve());
});

/** Resolves once the socket's reading ends: EOF, an error (a reset) or its close. */
const cutOff = (socket: net.Socket): Promise<void> => new Promise((resolve) => {
  if (socket.readableEnded || socket.closed) resolve();
  for (const event of ['end', 'error', 'close']) socket.once(event, () => resolve());
});

const total = (chunks: Buffer[]): number => chunks.reduce((n, c) => n + c.length, 0);
const bytes = (n: number, fill = 0x61): Buffer => Buffer.alloc(n, fill);

describe('adversarial: fault injector (test/helpers/fault-injector.ts)', () => {
  afterEach(releaseAll);

  it('relays both ways and passes a half close on, the other direction still flowing', async () => {
    const t = await through({});
    t.client.write('hello');
    t.server.write('world');
    await waitFor(() => total(t.received.server) === 5 && total(t.received.client) === 5);
    t.client.end();
    await once(t.server, 'end');
    t.server.write('after');
    await waitFor(() => Buffer.concat(t.received.client).toString() === 'worldafter');
    t.server.end();
    await Promise.all([closeOf(t.client), t.injector.settled()]);
    expect(t.injector.connections[0]!.destroyed).to.equal(true);
    await t.close();
  });

  it('reset: delivers the bytes before the offset, then resets both ends', async () => {
    const t = await through({ forward: [{ kind: 'reset', at: 7 }] });
    const ends: string[] = [];
    t.client.on('error', (err: NodeJS.ErrnoException) => ends.push(`client:${err.code}`));
    t.server.on('error', (err: NodeJS.ErrnoException) => ends.push(`server:${err.code}`));
    t.server.on('end', () => ends.push('server:end'));
    t.client.write(bytes(20));
    await Promise.all([closeOf(t.client), cutOff(t.server)]);
    expect(total(t.received.server)).to.equal(7);
    expect(t.injector.connections[0]!.fired).to.deep.equal([{ direction: 'forward', fault: { kind: 'reset', at: 7 } }]);
    // Linux sends the RST; the reader sees ECONNRESET, or EOF when the error was taken by another
    // call on the socket first (libuv's poll): both are a connection that ended without notice.
    expect(ends.filter((e) => e.startsWith('server:'))).to.have.length(1);
    expect(ends.filter((e) => e.startsWith('client:'))).to.deep.equal(['client:ECONNRESET']);
    await t.close();
  });

  it('stallRead for a time: stops reading the source at the offset, then resumes', async () => {
    const clock = fakeTimers();
    const t = await through({ backward: [{ kind: 'stallRead', at: 3, ms: 1000 }] });
    t.server.write(bytes(10));
    await settle();
    expect(total(t.received.client)).to.equal(3);
    expect(t.injector.connections[0]!.target.isPaused()).to.equal(true);
    clock.tick(1000);
    await waitFor(() => total(t.received.client) === 10);
    await t.close();
  });

  it('stallRead for ever: the source is not read again, so its writes back up', async () => {
    const t = await through({ forward: [{ kind: 'stallRead', at: 0, ms: 'forever' }] });
    // More than the kernel buffers take: the client's socket ends up holding bytes.
    const chunk = bytes(1024 * 1024);
    for (let i = 0; i < 64 && t.client.writableLength === 0; i++) {
      t.client.write(chunk);
      await settle(5, 2);
    }
    expect(t.client.writableLength).to.be.greaterThan(0);
    expect(total(t.received.server)).to.equal(0);
    await t.close();
  });

  it('stallWrite: keeps reading but holds the bytes (and a FIN) until the stall ends', async () => {
    const clock = fakeTimers();
    const t = await through({ forward: [{ kind: 'stallWrite', at: 4, ms: 500 }] });
    t.client.end(bytes(9));
    await settle();
    expect(total(t.received.server)).to.equal(4);
    expect(t.injector.connections[0]!.source.readableEnded).to.equal(true); // read, FIN included
    expect(t.server.readableEnded).to.equal(false);
    clock.tick(500);
    await once(t.server, 'end');
    expect(total(t.received.server)).to.equal(9);
    await t.close();
  });

  it('split: the next bytes reach the receiver one segment each', async () => {
    const t = await through({ forward: [{ kind: 'split', at: 2, bytes: 5 }] });
    t.client.write(bytes(10));
    await waitFor(() => total(t.received.server) === 10);
    const sizes = t.received.server.map((c) => c.length);
    expect(sizes.slice(0, 6)).to.deep.equal([2, 1, 1, 1, 1, 1]);
    await t.close();
  });

  it('halfClose: sends a FIN at the offset and drops what follows; the other way still flows', async () => {
    const t = await through({ forward: [{ kind: 'halfClose', at: 6 }] });
    t.client.write(bytes(10));
    await once(t.server, 'end');
    t.client.write(bytes(10));
    t.server.write('back');
    await waitFor(() => total(t.received.client) === 4);
    await settle();
    expect(total(t.received.server)).to.equal(6);
    await t.close();
  });

  it("countFrom 'body': offsets start after the HTTP head (\\r\\n\\r\\n)", async () => {
    const t = await through({ forward: [{ kind: 'reset', at: 2 }] }, 'body');
    t.client.write('GET / HTTP/1.1\r\nHost: x\r\n\r');
    t.client.write('\nabcdef');
    await cutOff(t.server);
    expect(Buffer.concat(t.received.server).toString()).to.equal('GET / HTTP/1.1\r\nHost: x\r\n\r\nab');
    await t.close();
  });

  it('randomScript is a function of the seed', () => {
    const a = describeScript(randomScript(new SeededRandom(42), { faultChance: 1 }));
    const b = describeScript(randomScript(new SeededRandom(42), { faultChance: 1 }));
    expect(a).to.equal(b);
    expect(a).to.not.equal(describeScript(randomScript(new SeededRandom(43), { faultChance: 1 })));
  });

  it('close() releases every socket and timer, stalled connections included', async () => {
    await settle(0, 1); // mocha arms its own timeout timer once the test's promise is returned
    const before = handleCounts();
    const t = await through({ forward: [{ kind: 'stallWrite', at: 0, ms: 60_000 }], backward: [{ kind: 'stallRead', at: 0, ms: 'forever' }] });
    t.client.write('x');
    t.server.write('y');
    await settle(20, 5);
    await t.close();
    await settle(20, 5);
    expect(handleCounts()).to.deep.equal(before);
    expect(t.injector.connections.every((c) => c.destroyed)).to.equal(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Handles

/** Open handles by type (TCPSocketWrap, TCPServerWrap, Timeout, Immediate...). */
function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => (a[k] ?? 0) === (b[k] ?? 0));
}

// ---------------------------------------------------------------------------------------------
// Seeded runs

const RUNS = Number(process.env.WSP_FAULT_RUNS ?? 200);
/** `WSP_FAULT_VERBOSE=1` prints one line per run: the faults that fired and how each side ended. */
const VERBOSE = process.env.WSP_FAULT_VERBOSE === '1';
const ONLY_SEED = process.env.WSP_FAULT_SEED === undefined ? undefined : Number(process.env.WSP_FAULT_SEED);

interface Config {
  readonly mode: 'server' | 'bare';
  readonly aggregate: boolean;
}

/** Seed `s` runs with `CONFIGS[s % 4]`: the seed alone replays a run. */
const CONFIGS: readonly Config[] = [
  { mode: 'server', aggregate: false },
  { mode: 'server', aggregate: true },
  { mode: 'bare', aggregate: false },
  { mode: 'bare', aggregate: true },
];

/** The proxy's deadlines: short, so that a stalled run ends quickly, all far below the guards. */
const PROXY_OPTIONS = {
  idleTimeout: 300,
  sendTimeout: 300,
  lingeringTime: 600,
  lingeringTimeout: 150,
  connectTimeout: 500,
} as const;

/** A peer behind an endless stall still open once the proxy is done waits this long, then gives up. */
const GIVE_UP_MS = 100;

/** Guard turning a hang into a failure (not a timed assertion: every deadline involved is far below). */
const GUARD_MS = 8000;

/** Close codes the peers choose. */
const APP_CODES = [1000, 1001, 3000, 4000, 4999] as const;

/** Error codes a fault may end a connection with (all in ErrorCodes and docs/errors.md). */
const FAULT_ERRORS = new Set<string>([
  'WSP_ERR_CONNECTION_LOST', 'WSP_ERR_TRUNCATED_FRAME', 'WSP_ERR_SEND_TIMEOUT', 'WSP_ERR_IDLE_TIMEOUT', 'WSP_ERR_CLOSE_TIMEOUT',
]);

interface Message {
  readonly data: Buffer;
  readonly binary: boolean;
  /** Fragment sizes (one entry: not fragmented). */
  readonly pieces: readonly number[];
}

/** What a seed decides. */
interface Plan {
  readonly seed: number;
  readonly config: Config;
  readonly clientScript: FaultScript;
  readonly upstreamScript: FaultScript;
  readonly clientCountFrom: 'start' | 'body';
  readonly upstreamCountFrom: 'start' | 'body';
  readonly messages: readonly Message[];
  readonly closer: 'client' | 'upstream';
  /** The upstream closes after this many messages (when it is the closer). */
  readonly closeAfter: number;
  readonly code: number;
  /** Both peers use permessage-deflate (the proxy then relays compressed frames). */
  readonly deflate: boolean;
}

function makePlan(seed: number): Plan {
  const random = new SeededRandom(seed);
  const config = CONFIGS[seed % CONFIGS.length]!;
  // Now and then a script counts from the connection's first byte, its faults within the first 400
  // bytes: in the upgrade request or response, or just after.
  const clientCountFrom = random.chance(0.1) ? 'start' : 'body';
  const upstreamCountFrom = random.chance(0.1) ? 'start' : 'body';
  const script = (from: 'start' | 'body'): FaultScript =>
    randomScript(random, { faultChance: from === 'start' ? 0.8 : 0.45, maxAt: from === 'start' ? 400 : 3000, maxStallMs: 250, foreverChance: 0.25 });
  const clientScript = script(clientCountFrom);
  const upstreamScript = script(upstreamCountFrom);
  const messages: Message[] = [];
  const count = random.int(0, 10);
  for (let i = 0; i < count; i++) {
    const sizeClass = random.int(0, 19);
    const size = sizeClass < 12 ? random.int(0, 125) : sizeClass < 18 ? random.int(126, 3000) : random.int(16 * 1024, 40 * 1024);
    const binary = random.chance(0.5);
    // Text stays ASCII, so that any cut between fragments is valid UTF-8.
    const data = binary ? random.bytes(size) : Buffer.from('x'.repeat(size));
    const pieces = random.chance(0.3) && size > 1 ? random.split(data, 4).map((p) => p.length) : [size];
    messages.push({ data, binary, pieces });
  }
  const closer = random.chance(0.7) ? 'client' : 'upstream';
  return {
    seed, config, clientScript, upstreamScript, clientCountFrom, upstreamCountFrom, messages, closer,
    closeAfter: random.int(0, count), code: random.pick(APP_CODES), deflate: random.chance(0.25),
  };
}

/** What a `ws` peer saw. */
interface PeerRecord {
  ws: WebSocket | undefined;
  received: Buffer[];
  sent: Buffer[];
  code: number | undefined;
  /** The status of a non-101 answer to its upgrade request (a client refused by the proxy). */
  httpStatus: number | undefined;
  /** It was still open once the proxy was done, behind an endless stall, and gave up. */
  gaveUp: boolean;
  closed: Promise<void>;
}

function peerRecord(ws: WebSocket): PeerRecord {
  const record: PeerRecord = { ws, received: [], sent: [], code: undefined, httpStatus: undefined, gaveUp: false, closed: Promise.resolve() };
  ws.on('error', (err: Error) => {
    const status = /^Unexpected server response: (\d+)/.exec(err.message);
    if (status !== null) record.httpStatus = Number(status[1]);
  });
  ws.on('message', (data: Buffer) => record.received.push(Buffer.from(data)));
  record.closed = new Promise((resolve) => ws.once('close', (code: number) => {
    record.code = code;
    resolve();
  }));
  return record;
}

/** Sends a message, fragmented as planned. */
function sendMessage(ws: WebSocket, message: Message): void {
  let offset = 0;
  message.pieces.forEach((size, i) => {
    ws.send(message.data.subarray(offset, offset + size), { binary: message.binary, fin: i === message.pieces.length - 1 });
    offset += size;
  });
}

/** One configuration's fixtures: the upstream, the proxy, and what the run in progress sees. */
interface Fixture {
  readonly config: Config;
  /** The upstreams: without and with permessage-deflate. */
  readonly upstreams: readonly [WebSocketServer, WebSocketServer];
  /** The http server the proxy takes upgrades on. */
  readonly http: http.Server;
  readonly port: number;
  readonly proxyServer: ProxyServer | undefined;
  /** The run in progress: its plan and what the proxy and the upstream report. */
  run: RunState | undefined;
  close(): Promise<void>;
}

interface RunState {
  readonly plan: Plan;
  upstreamPeer: PeerRecord | undefined;
  upgrades: number;
  /** Upstream connections that are not the run's one (their path), refused. */
  strays: string[];
  /** One per upgrade request once it is settled: the summary, or how the handshake ended. */
  outcomes: ({ summary: ProxySummary } | { refused: string })[];
}

/**
 * Every proxy's upstream URL, from the client's path `/u/<port>/<seed>`: the run's upstream injector,
 * and the seed as the upstream path, so that the upstream knows which run a connection belongs to.
 */
function upstreamOf(req: http.IncomingMessage): string {
  const [, , port = '0', seed = ''] = (req.url ?? '').split('/');
  return `ws://127.0.0.1:${port}/${seed}`;
}

async function startFixture(config: Config): Promise<Fixture> {
  const upstreams = [
    new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false }),
    new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true }),
  ] as const;
  await Promise.all(upstreams.map((u) => once(u, 'listening')));
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  let proxyServer: ProxyServer | undefined;
  const fixture: Fixture = {
    config, upstreams, http: server, port: 0, proxyServer: undefined, run: undefined,
    async close() {
      await proxyServer?.close({ timeout: 100 });
      for (const upstream of upstreams) {
        for (const ws of upstream.clients) ws.terminate();
        await new Promise<void>((resolve) => upstream.close(() => resolve()));
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const onConnection = (ws: WebSocket, req: http.IncomingMessage): void => {
    const run = fixture.run;
    if (run === undefined || req.url !== `/${run.plan.seed}` || run.upstreamPeer !== undefined) {
      // Not this run's, or a second one: the run reports it.
      run?.strays.push(req.url ?? '');
      return void ws.terminate();
    }
    const peer = peerRecord(ws);
    run.upstreamPeer = peer;
    const { plan } = run;
    let count = 0;
    const closeNow = (): void => ws.close(plan.code, 'upstream bye');
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      count++;
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(data, { binary: isBinary });
      peer.sent.push(Buffer.from(data));
      if (plan.closer === 'upstream' && count === plan.closeAfter) closeNow();
    });
    if (plan.closer === 'upstream' && plan.closeAfter === 0) closeNow();
  };
  for (const upstream of upstreams) upstream.on('connection', onConnection);
  const options = { ...PROXY_OPTIONS, aggregateFragments: config.aggregate };
  const settleOne = (outcome: { summary: ProxySummary } | { refused: string }): void => {
    fixture.run?.outcomes.push(outcome);
  };
  if (config.mode === 'server') {
    proxyServer = createProxyServer({ ...options, routes: [{ path: '/u/:port/:seed', target: (req) => upstreamOf(req) }] });
    proxyServer.on('close', (summary) => settleOne({ summary }));
    proxyServer.on('refuse', (info) => settleOne({ refused: String(info.outcome) }));
    proxyServer.on('error', () => undefined);
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (fixture.run !== undefined) fixture.run.upgrades++;
      void proxyServer!.handleUpgrade(req, socket, head);
    });
  } else {
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (fixture.run !== undefined) fixture.run.upgrades++;
      socket.on('error', () => undefined);
      const proxy = new WebSocketProxy(options);
      void (async () => {
        try {
          await proxy.connect(upstreamOf(req), req, socket, head);
        } catch (err) {
          return settleOne({ refused: (err as { code?: string }).code ?? String(err) });
        }
        settleOne({ summary: await proxy.execute() });
      })();
    });
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(fixture, { port: (server.address() as AddressInfo).port, proxyServer });
}

/** Resolves after `ms` real milliseconds. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** Resolves with true once `condition` holds, or false after `ms` (checked on each turn, then less often). */
async function within(ms: number, condition: () => boolean): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (let i = 0; !condition(); i++) {
    if (performance.now() > deadline) return false;
    if (i < 50) await tick();
    else await sleep(2);
  }
  return true;
}

/** Whether every buffer of `got` equals the one at its index in `sent` (a prefix, in order). */
function isPrefix(got: readonly Buffer[], sent: readonly Buffer[]): boolean {
  return got.length <= sent.length && got.every((b, i) => b.equals(sent[i]!));
}

/** What a run found: its problems (none when it holds) and the proxy's summary, if it got that far. */
interface RunResult {
  problems: string[];
  summary: ProxySummary | undefined;
  /** Close codes the peers saw (undefined: no such peer). */
  codes: { client: number | undefined; upstream: number | undefined };
}

/** Runs one plan. */
async function runOnce(fixture: Fixture, plan: Plan): Promise<RunResult> {
  const problems: string[] = [];
  const before = handleCounts();
  const run: RunState = { plan, upstreamPeer: undefined, upgrades: 0, strays: [], outcomes: [] };
  fixture.run = run;
  const upstreamPort = (fixture.upstreams[plan.deflate ? 1 : 0].address() as AddressInfo).port;
  const upstreamSide = await FaultInjector.start({ target: { port: upstreamPort }, script: () => plan.upstreamScript, countFrom: plan.upstreamCountFrom });
  const clientSide = await FaultInjector.start({ target: { port: fixture.port }, script: () => plan.clientScript, countFrom: plan.clientCountFrom });
  const ws = new WebSocket(`ws://127.0.0.1:${clientSide.port}/u/${upstreamSide.port}/${plan.seed}`, { perMessageDeflate: plan.deflate, handshakeTimeout: 700 });
  const client = peerRecord(ws);
  let closed = false;
  void client.closed.then(() => {
    closed = true;
  });
  // The client: every message, then (when it closes) waits for all the echoes, then closes.
  ws.once('open', () => {
    for (const message of plan.messages) {
      sendMessage(ws, message);
      client.sent.push(message.data);
    }
    if (plan.closer !== 'client') return;
    const closeWhenEchoed = (): void => {
      if (client.received.length >= plan.messages.length && ws.readyState === WebSocket.OPEN) ws.close(plan.code, 'client bye');
    };
    ws.on('message', closeWhenEchoed);
    closeWhenEchoed();
  });

  const proxyDone = (): boolean => run.outcomes.length === run.upgrades;
  // 1. The proxy settles (and the client ends, or a request that never reached the proxy ends).
  if (!(await within(GUARD_MS, () => (run.upgrades > 0 && proxyDone()) || (closed && proxyDone())))) {
    problems.push(`the proxy did not settle: ${run.upgrades} upgrade(s), ${run.outcomes.length} outcome(s)`);
  }
  // 2. The peers end. A peer behind an endless stall may never learn the proxy is gone: it gives up.
  const clientConn = clientSide.connections[0];
  const upstreamConn = upstreamSide.connections[0];
  const peers: [string, () => PeerRecord | undefined, typeof clientConn][] = [
    ['client', () => client, clientConn],
    ['upstream', () => run.upstreamPeer, upstreamConn],
  ];
  for (const [name, get, conn] of peers) {
    const peer = get();
    if (peer === undefined) continue;
    const blackHoled = conn?.fired.some(({ fault }) => 'ms' in fault && fault.ms === 'forever') ?? false;
    if (await within(blackHoled ? GIVE_UP_MS : GUARD_MS, () => peer.code !== undefined)) continue;
    if (!blackHoled) problems.push(`the ${name} never closed`);
    peer.gaveUp = true;
    peer.ws?.terminate();
    await peer.closed;
  }

  // 3. Outcomes.
  // A frame being relayed as it arrives (cut-through: aggregation off, at least PARTIAL_FRAME_MIN
  // bytes) that its sender's connection cuts short can never be finished: its receiver is cut off
  // too, without a close frame (architecture.md, "A frame that cannot be finished").
  // The client's fragments, or the upstream's echoes (whole messages, one frame each).
  const cutThrough = !plan.config.aggregate && plan.messages.some((m) => m.data.length >= PARTIAL_FRAME_MIN);
  const outcome = run.outcomes[0];
  const summary = outcome !== undefined && 'summary' in outcome ? outcome.summary : undefined;
  if (run.outcomes.length > 1 || run.upgrades > 1) problems.push(`${run.upgrades} upgrades for one client`);
  if (run.strays.length > 0) problems.push(`unexpected upstream connections: ${run.strays.join(', ')}`);
  const firedList = [clientConn, upstreamConn].map((c) => (c?.fired ?? []).map((f) => `${f.direction[0]}:${f.fault.kind}`).join('+') || '-');
  const fired = `fired: client path [${firedList[0]}], upstream path [${firedList[1]}]`;
  const refused = outcome !== undefined && 'refused' in outcome ? outcome.refused : undefined;
  if (refused !== undefined) {
    // The upstream handshake failed (a fault on its path): the client was answered, or was gone.
    const documented = fixture.config.mode === 'server' ? /^(4|5)\d\d$|^aborted$/.test(refused) : refused in ErrorCodes;
    if (!documented) problems.push(`the handshake was refused with ${refused}, not a documented outcome`);
    if (client.httpStatus !== undefined && fixture.config.mode === 'server' && String(client.httpStatus) !== refused) {
      problems.push(`the server refused with ${refused}, the client saw ${client.httpStatus}`);
    }
    if (client.httpStatus !== undefined && !(client.httpStatus >= 400 && client.httpStatus <= 599)) problems.push(`the client was answered ${client.httpStatus}`);
  }
  if (summary !== undefined) {
    const code = summary.error?.code;
    if (code !== undefined && !(code in ErrorCodes)) problems.push(`summary.error ${code} is not a documented code`);
    if (code !== undefined && !FAULT_ERRORS.has(code)) problems.push(`summary.error ${code} (${summary.error!.message}) is not one a fault causes`);
  }
  for (const [name, get, conn] of peers) {
    const peer = get();
    if (peer === undefined) continue;
    const code = peer.code;
    const other = conn === clientConn ? upstreamConn : clientConn;
    // Any fault but a split can leave such a frame unfinished when a deadline of the proxy falls
    // (a stall past lingeringTimeout after a close, say) or the connection breaks.
    const cutOff = cutThrough && (other?.fired.some(({ fault }) => fault.kind !== 'split') ?? false);
    if (code === 1006) {
      // A client refused by the proxy sees its upgrade fail: ws reports that as 1006 too.
      const refusedClient = name === 'client' && refused !== undefined;
      if (!(conn?.broken ?? false) && !peer.gaveUp && !cutOff && !refusedClient) problems.push(`the ${name} got 1006, though its own connection was not broken`);
    } else if (code !== 1005 && !(APP_CODES as readonly number[]).includes(code ?? -1)) {
      problems.push(`the ${name} closed with ${code}`);
    }
  }
  const upstreamPeer = run.upstreamPeer;
  if (upstreamPeer !== undefined) {
    if (!isPrefix(upstreamPeer.received, client.sent)) problems.push('the upstream received messages out of order or altered');
    if (!isPrefix(client.received, upstreamPeer.sent)) problems.push('the client received echoes out of order or altered');
  }
  const noFault = clientConn?.fired.length === 0 && upstreamConn?.fired.length === 0;
  if (noFault && summary !== undefined) {
    // Nothing happened to the bytes: the connection is the one a proxy without faults gives.
    if (summary.error !== undefined) problems.push(`no fault fired, yet summary.error is ${summary.error.code}`);
    const closerPeer = plan.closer === 'client' ? upstreamPeer : client;
    if (closerPeer?.code !== plan.code) problems.push(`no fault fired, yet the ${plan.closer}'s ${plan.code} arrived as ${closerPeer?.code}`);
    if (plan.closer === 'client' && client.received.length !== plan.messages.length) {
      problems.push(`no fault fired, yet ${client.received.length} of ${plan.messages.length} echoes arrived`);
    }
  }

  if (VERBOSE) {
    const fired = [clientConn, upstreamConn].map((c) => (c?.fired ?? []).map((f) => `${f.direction[0]}:${f.fault.kind}${'ms' in f.fault ? `(${f.fault.ms})` : ''}`).join('+') || '-');
    const proxy = outcome === undefined ? 'none' : 'summary' in outcome ? (outcome.summary.error?.code ?? 'clean') : `refused ${outcome.refused}`;
    const ab = summary === undefined ? '' : ` aborted c=${summary.client.aborted} u=${summary.upstream.aborted} sent c=${summary.client.closeSent?.code} u=${summary.upstream.closeSent?.code}`;
    console.log(`    seed ${plan.seed}: fired client[${fired[0]}] upstream[${fired[1]}]; proxy ${proxy}${ab}; client ${client.code}${client.gaveUp ? ' (gave up)' : ''}, upstream ${upstreamPeer?.code ?? 'none'}${upstreamPeer?.gaveUp ? ' (gave up)' : ''}`);
  }

  // 4. Nothing left: the test's own injectors first, then every count back where it was.
  await upstreamSide.close();
  await clientSide.close();
  fixture.run = undefined;
  const live = (): number => (fixture.proxyServer?.connections.length ?? 0) + fixture.upstreams[0].clients.size + fixture.upstreams[1].clients.size;
  const connections = (): Promise<number> => new Promise((resolve) => fixture.http.getConnections((_err, n) => resolve(n)));
  let httpConnections = await connections();
  const clean = await within(2000, () => sameCounts(handleCounts(), before) && live() === 0);
  httpConnections = await connections();
  if (!clean || httpConnections !== 0) {
    const after = handleCounts();
    const diff = Object.keys({ ...before, ...after }).filter((k) => (before[k] ?? 0) !== (after[k] ?? 0)).map((k) => `${k} ${before[k] ?? 0} -> ${after[k] ?? 0}`);
    problems.push(`leaked: ${diff.join(', ') || 'no handle'}; live connections ${live()}, proxy http connections ${httpConnections}`);
  }
  if (![...clientSide.connections, ...upstreamSide.connections].every((c) => c.destroyed)) problems.push('a relayed socket was not destroyed');
  if (problems.length > 0) problems.push(fired);
  return { problems, summary, codes: { client: client.code, upstream: upstreamPeer?.code } };
}

/** One line about a run, for failure messages. */
function describeRun(plan: Plan): string {
  const { config } = plan;
  const sizes = plan.messages.map((m) => (m.pieces.length > 1 ? `${m.data.length}/${m.pieces.length}` : `${m.data.length}`)).join(',');
  return `seed ${plan.seed} (${config.mode}, aggregate ${config.aggregate ? 'on' : 'off'}; client path [${describeScript(plan.clientScript)}] from ${plan.clientCountFrom}; ` +
    `upstream path [${describeScript(plan.upstreamScript)}] from ${plan.upstreamCountFrom}; messages [${sizes}]${plan.deflate ? ' deflate' : ''}; ${plan.closer} closes ${plan.code}` +
    `${plan.closer === 'upstream' ? ` after ${plan.closeAfter}` : ''}): replay with WSP_FAULT_SEED=${plan.seed}`;
}

describe('adversarial: fault injection between the proxy and its peers', function () {
  this.timeout(Math.max(60_000, RUNS * 2000));
  afterEach(releaseAll);

  CONFIGS.forEach((config, index) => {
    const seeds = ONLY_SEED !== undefined
      ? (ONLY_SEED % CONFIGS.length === index ? [ONLY_SEED] : [])
      : Array.from({ length: RUNS }, (_, i) => i + 1).filter((s) => s % CONFIGS.length === index);
    const title = `${config.mode === 'server' ? 'ProxyServer' : 'bare WebSocketProxy'}, aggregation ${config.aggregate ? 'on' : 'off'}: ${seeds.length} seeded runs end defined, leak nothing`;
    (seeds.length === 0 ? it.skip : it)(title, async () => {
      const fixture = await startFixture(config);
      const failures: string[] = [];
      const tally = new Map<string, number>();
      const started = performance.now();
      try {
        for (const seed of seeds) {
          const plan = makePlan(seed);
          const { problems, summary } = await runOnce(fixture, plan);
          if (problems.length > 0) failures.push(`${describeRun(plan)}\n    - ${problems.join('\n    - ')}`);
          const ending = summary === undefined ? 'no summary (handshake)' : summary.error?.code ?? 'clean';
          tally.set(ending, (tally.get(ending) ?? 0) + 1);
        }
      } finally {
        await fixture.close();
      }
      if (process.env.WSP_FAULT_RUNS !== undefined) {
        const endings = [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
        console.log(`      ${seeds.length} runs, ${failures.length} failed, ${Math.round(performance.now() - started)} ms; endings: ${endings}`);
      }
      // The first few are enough to act on; the rest would mostly repeat them.
      expect(failures, `${failures.length} of ${seeds.length} runs failed:\n${failures.slice(0, 5).join('\n')}`).to.deep.equal([]);
    });
  });

  // Found by the seeded runs (aggregation off, a frame of 16 KiB or more being relayed as it
  // arrives): the client's connection is reset, or stalls until idleTimeout, in the middle of that
  // frame; the upstream, whose frame can never be finished, is cut off (Outbox.abortFrame() destroys
  // its socket) and gets no close frame (1006); its summary said neither `aborted` nor
  // `closeSent`. Now such a side is marked aborted (SideSummary.aborted: "ended without a close
  // handshake"), through the Outbox's onFrameAborted hook.
  const cutOffScripts: [string, FaultScript][] = [
    ['a reset', { forward: [{ kind: 'reset', at: 1000 }] }],
    ['a stall, then idleTimeout', { forward: [{ kind: 'stallRead', at: 1000, ms: 'forever' }] }],
  ];
  for (const [what, clientScript] of cutOffScripts) {
    it(`a side cut off in the middle of a relayed frame by ${what} on the other side is summarised as aborted`, async () => {
      const fixture = await startFixture({ mode: 'bare', aggregate: false });
      try {
        const plan: Plan = {
          ...makePlan(2), // only its shape: every field that matters is set here
          config: fixture.config,
          clientScript,
          upstreamScript: {},
          clientCountFrom: 'body',
          upstreamCountFrom: 'body',
          messages: [{ data: Buffer.alloc(20_000, 1), binary: true, pieces: [20_000] }],
          closer: 'client',
          deflate: false,
        };
        const { problems, summary, codes } = await runOnce(fixture, plan);
        expect(problems).to.deep.equal([]);
        expect(codes.upstream).to.equal(1006);
        expect(summary?.upstream.closeSent).to.equal(undefined);
        expect(summary?.upstream.aborted).to.equal(true);
      } finally {
        await fixture.close();
      }
    });
  }
});
