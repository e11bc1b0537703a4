/**
 * Interop: the proxy between peers it shares no code with. Python's `websockets` (Debian's
 * python3-websockets, an RFC 6455 / RFC 7692 implementation with its own framing and
 * permessage-deflate) plays the client and the echo upstream (test/interop/python-websockets.py),
 * a real ProxyServer sits between them on 127.0.0.1. What is compared is what each Python end saw:
 * every message's type, size and digest in order, pongs, the negotiated extensions, how many
 * messages arrived compressed, and the close frames on both hops.
 *
 * Without `/usr/bin/python3` able to `import websockets` the suite is skipped, saying so once.
 * Every wait is bounded: the client script has its own timeout and is killed past it, the server's
 * port and reports are awaited with a deadline, and every child is killed after each test.
 */
import { expect } from 'chai';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'readable-stream';
import type { ProxyServerOptions } from '../../src/index.js';
import { mapText } from '../../src/transforms/index.js';
import { onCleanup, releaseAll } from '../proxy/rig.js';
import { listening } from '../server/helpers.js';

const PYTHON = '/usr/bin/python3';
/** From dist/test/interop back to the source tree (the script is not compiled). */
const SCRIPT = fileURLToPath(new URL('../../../test/interop/python-websockets.py', import.meta.url));
/** A bound on any one wait on a Python process, below mocha's timeout so that a failure says what it waited for. */
const WAIT_MS = 12_000;
const MIB = 1024 * 1024;

/** Keyword arguments of websockets' Client/ServerPerMessageDeflateFactory; null: no extension at all. */
type Deflate = Record<string, number | boolean> | null;
type Step = Record<string, unknown>;

interface Close { code: number; reason: string }
/** What one Python end saw of a connection (see `report` in the script). */
interface Report {
  /** Its `Sec-WebSocket-Extensions` response header: what the hop negotiated. */
  extensions: string | null;
  /** Data messages received, counted at their first frame (so also one that never completed). */
  messages: number;
  /** Those whose first frame had RSV1: that came compressed. */
  compressed: number;
  closeReceived: Close | null;
  closeSent: Close | null;
}
/** A message received, as the script reports it: `text` only for texts of 4 KiB or less. */
interface Received { type: 'text' | 'binary'; bytes: number; sha256: string; text?: string }
/** A message as compared: type, size, SHA-256 of its payload. */
type Digest = Omit<Received, 'text'>;
interface ClientResult extends Report {
  received: Received[];
  pongs: number;
  error?: string;
}
interface ServerReport extends Report { path: string }

/** Kills `child` (if still running) and waits for its exit. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Rejects after `ms` with `what`, unless `promise` settles first. */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A Python echo server: its URL, and the reports of the connections it has closed, in order. */
async function pythonServer(deflate: Deflate): Promise<{ url: string; nextReport(): Promise<ServerReport> }> {
  const child = spawn(PYTHON, [SCRIPT, 'server', JSON.stringify({ deflate })], { stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(() => kill(child));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const reports: ServerReport[] = [];
  const waiters: ((report: ServerReport) => void)[] = [];
  let port: (value: string) => void;
  const listeningPort = new Promise<string>((resolve) => { port = resolve; });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('PORT ')) return port(line.slice(5));
    const report = JSON.parse(line) as ServerReport;
    const waiter = waiters.shift();
    if (waiter === undefined) reports.push(report);
    else waiter(report);
  });
  // (handled by the race below, also when the process is killed after the test)
  const exited = once(child, 'exit').then(() => { throw new Error(`python server exited: ${stderr}`); });
  const url = `ws://127.0.0.1:${await bounded(Promise.race([listeningPort, exited]), WAIT_MS, 'the python server to listen')}`;
  return {
    url,
    nextReport: () => bounded(
      reports.length > 0 ? Promise.resolve(reports.shift()!) : new Promise<ServerReport>((resolve) => waiters.push(resolve)),
      WAIT_MS, `the python server's report (stderr: ${stderr})`,
    ),
  };
}

/** Runs the Python client on `url`; resolves with its result line (its exit status checked by the caller through `error`). */
async function pythonClient(url: string, deflate: Deflate, steps: Step[]): Promise<ClientResult> {
  const child = spawn(PYTHON, [SCRIPT, 'client', url, JSON.stringify({ deflate, steps, timeout: 10 })], { stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(() => kill(child));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  // 'close', not 'exit': its output is then read to the end
  const [status] = await bounded(once(child, 'close') as Promise<[number | null]>, WAIT_MS, 'the python client to finish');
  const line = stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) throw new Error(`python client printed no result (status ${status}): ${stderr}`);
  const result = JSON.parse(line) as ClientResult;
  expect(status, 'exit status').to.equal(result.error === undefined ? 0 : 1);
  return result;
}

/** The script's `pattern()`: letters for text, a byte ramp for binary. */
function pattern(type: 'text' | 'binary', size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = type === 'text' ? 97 + (i % 26) : (i * 7) % 256;
  return bytes;
}

function message(type: 'text' | 'binary', data: Buffer): Digest {
  return { type, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

const text = (s: string): Digest => message('text', Buffer.from(s));
const binary = (hex: string): Digest => message('binary', Buffer.from(hex, 'hex'));
const hex = (s: string): string => Buffer.from(s).toString('hex');

/** `café ✓`, its `é` cut between two frames (0xc3 | 0xa9), and its `✓` between the next two. */
const CUT_TEXT = 'café ✓';
const cutUtf8 = Buffer.from(CUT_TEXT);
const CUT_FRAMES = [['text', cutUtf8.subarray(0, 4).toString('hex')], ['cont', cutUtf8.subarray(4, 7).toString('hex')], ['cont', cutUtf8.subarray(7).toString('hex')]];

/** Messages sent back to back, then received: order kept, and (compressed) LZ77 context carried across them. */
const BURST = Array.from({ length: 24 }, (_, i) => (i % 3 === 2
  ? { type: 'binary' as const, data: pattern('binary', 100 * i) }
  : { type: 'text' as const, data: Buffer.from(`burst ${i} ${'✓'.repeat(i * 50)}`) }));

/**
 * The echo scenario: each message sent then received back before the next, then a {@link BURST},
 * so that what is received must equal {@link echoed}, in order; then two pings (one empty), each
 * awaiting its pong.
 */
function echoScenario(): Step[] {
  const steps: Step[] = [
    { send: 'hello' }, { send: 'héllo wörld ✓ 😀 ∑' }, { send: '' }, { send_hex: '' }, { send_hex: '00ff7f80' },
  ];
  for (const size of [125, 126, 65535, 65536, MIB + 1]) steps.push({ send_pattern: ['binary', size] });
  for (const size of [126, 65536, MIB + 1]) steps.push({ send_pattern: ['text', size] });
  steps.push(
    { fragments: ['frag', 'mént', '', 'ed ✓'] }, { frames: CUT_FRAMES }, { fragments_hex: ['0102', '', '03ff'] },
    { frames: [['text', hex('inter')], ['ping', hex('in a message')], ['cont', hex('leaved ✓')]] },
  );
  const burst = BURST.map((m) => (m.type === 'text' ? { send: m.data.toString() } : { send_hex: m.data.toString('hex') }));
  return steps.flatMap((step) => [step, { recv: 1 }]).concat(burst, [{ recv: BURST.length }, { ping: hex('ping') }, { ping: '' }]);
}

/** What the echo scenario gets back; `upper`: through a proxy that upper-cases text. */
function echoed(upper = false): Digest[] {
  const t = (s: string): Digest => text(upper ? s.toUpperCase() : s);
  const patternText = (size: number): Digest => message('text', upper ? Buffer.from(pattern('text', size).toString().toUpperCase()) : pattern('text', size));
  return [
    t('hello'), t('héllo wörld ✓ 😀 ∑'), t(''), binary(''), binary('00ff7f80'),
    ...[125, 126, 65535, 65536, MIB + 1].map((size) => message('binary', pattern('binary', size))),
    ...[126, 65536, MIB + 1].map(patternText),
    t('fragménted ✓'), t(CUT_TEXT), binary('010203ff'), t('interleaved ✓'),
    ...BURST.map((m) => (m.type === 'text' ? t(m.data.toString()) : message('binary', m.data))),
  ];
}
const ECHO_MESSAGES = echoed().length;

/** The client's received messages without the full texts, to compare with {@link echoed}. */
function digests(result: ClientResult): Digest[] {
  return result.received.map(({ type, bytes, sha256 }) => ({ type, bytes, sha256 }));
}

/** Compression parameters of each hop, and what each hop's negotiated extension must then say. */
const PARAMETER_SETS: readonly { name: string; client: Deflate; upstream: Deflate; clientHop: RegExp; upstreamHop: RegExp }[] = [
  {
    name: 'no context takeover either way, asked by the client',
    client: { client_no_context_takeover: true, server_no_context_takeover: true }, upstream: {},
    clientHop: /^permessage-deflate;(?=.*server_no_context_takeover)(?=.*client_no_context_takeover)/, upstreamHop: /^permessage-deflate\b/,
  },
  {
    name: 'small windows asked by the client (server 10 bits, client 9)',
    client: { server_max_window_bits: 10, client_max_window_bits: 9 }, upstream: {},
    clientHop: /^permessage-deflate;(?=.*server_max_window_bits=10)(?=.*client_max_window_bits=9)/, upstreamHop: /^permessage-deflate\b/,
  },
  {
    name: 'upstream with a 9-bit window and no context takeover',
    client: {}, upstream: { server_max_window_bits: 9, server_no_context_takeover: true },
    clientHop: /^permessage-deflate\b/, upstreamHop: /^permessage-deflate;(?=.*server_max_window_bits=9)(?=.*server_no_context_takeover)/,
  },
];

/** A ProxyServer in front of `upstream`, taking the tests' 1 MiB + 1 messages from the client. */
async function proxyTo(upstream: string, options: Omit<ProxyServerOptions, 'target'> = {}): Promise<string> {
  const { url } = await listening({ target: upstream, clientMaxFrameSize: 4 * MIB, ...options });
  return url;
}

/** How {@link echoThrough} runs. */
interface EchoOptions {
  /** The ProxyServer's options. */
  proxy?: Omit<ProxyServerOptions, 'target'>;
  /** Whether the proxy upper-cases text (what the echoes are compared with). */
  upper?: boolean;
  /** `/fragmented`: the upstream sends each echo in up to 5 frames, cut anywhere. */
  path?: '/echo' | '/fragmented';
}

/** Two stages that change nothing, one per direction: the proxy must inflate and compress again around them. */
const IDLE_STAGES = { client: () => [new PassThrough({ objectMode: true })], upstream: () => [new PassThrough({ objectMode: true })] };

/** Python client -> proxy -> Python echo server, the echo scenario then a client close of 1000. */
async function echoThrough(client: Deflate, upstream: Deflate, { proxy: options = {}, upper = false, path = '/echo' }: EchoOptions = {}): Promise<{ result: ClientResult; server: ServerReport }> {
  const server = await pythonServer(upstream);
  const proxy = await proxyTo(server.url, options);
  const result = await pythonClient(proxy + path, client, [...echoScenario(), { close: [1000, 'done'] }]);
  expect(result.error, JSON.stringify(result)).to.equal(undefined);
  expect(digests(result)).to.deep.equal(echoed(upper));
  expect(result.pongs).to.equal(2);
  expect(result.closeReceived).to.deep.equal({ code: 1000, reason: 'done' });
  const report = await server.nextReport();
  expect(report.path).to.equal(path);
  expect(report.messages).to.equal(ECHO_MESSAGES);
  expect(report.closeReceived).to.deep.equal({ code: 1000, reason: 'done' });
  return { result, server: report };
}

describe('interop: Python websockets through the proxy', function () {
  before(function () {
    if (spawnSync(PYTHON, ['-c', 'import websockets']).status !== 0) {
      console.log(`      interop tests skipped: ${PYTHON} cannot import websockets; install Debian's python3-websockets`);
      this.skip();
    }
  });

  afterEach(() => releaseAll());

  describe('no compression', () => {
    it('echoes text (UTF-8, empty), binary, every length encoding, fragmented messages and pings', async () => {
      const { result, server } = await echoThrough(null, null);
      expect(result.extensions).to.equal(null);
      expect(server.extensions).to.equal(null);
      expect(result.received[1]!.text).to.equal('héllo wörld ✓ 😀 ∑');
      expect(result.compressed).to.equal(0);
    });

    it('echoes sent fragmented by the upstream, cut inside characters', async () => {
      await echoThrough(null, null, { path: '/fragmented' });
    });

    for (const close of [{ code: 1000, reason: 'client done ✓' }, { code: 4000, reason: 'client 4000' }]) {
      it(`passes the client's close ${close.code} and its reason to the upstream, and the reply back`, async () => {
        const server = await pythonServer(null);
        const result = await pythonClient(await proxyTo(server.url), null, [{ send: 'x' }, { recv: 1 }, { close: [close.code, close.reason] }]);
        expect(result.error, JSON.stringify(result)).to.equal(undefined);
        expect(digests(result)).to.deep.equal([text('x')]);
        expect(result.closeSent).to.deep.equal(close);
        expect(result.closeReceived).to.deep.equal(close); // websockets replies with the code it got
        const report = await server.nextReport();
        expect(report.closeReceived).to.deep.equal(close);
        expect(report.closeSent).to.deep.equal(close);
      });
    }

    for (const close of [{ code: 1000, reason: 'server done ✓' }, { code: 4999, reason: 'server 4999' }, { code: 1001, reason: 'going away' }, { code: 1011, reason: 'upstream failed' }]) {
      it(`passes the upstream's close ${close.code} and its reason to the client, and the reply back`, async () => {
        const server = await pythonServer(null);
        const result = await pythonClient(await proxyTo(server.url), null, [
          { send: 'before' }, { recv: 1 }, { send: `CMD close ${close.code} ${close.reason}` }, { wait_closed: true },
        ]);
        expect(result.error, JSON.stringify(result)).to.equal(undefined);
        expect(digests(result)).to.deep.equal([text('before')]);
        expect(result.closeReceived).to.deep.equal(close);
        expect(result.closeSent).to.deep.equal(close);
        const report = await server.nextReport();
        expect(report.closeSent).to.deep.equal(close);
        expect(report.closeReceived).to.deep.equal(close);
      });
    }
  });

  describe('permessage-deflate', () => {
    for (const path of ['/echo', '/fragmented'] as const) {
      it(`both hops compressed (defaults): negotiated on each, compressed frames passed on, echoes on ${path} intact`, async () => {
        const { result, server } = await echoThrough({}, {}, { path });
        expect(result.extensions).to.match(/^permessage-deflate\b/);
        expect(server.extensions).to.match(/^permessage-deflate\b/);
        // websockets compresses every message: with no user code on a direction the proxy relays
        // its compressed frames as they came, so each message reaches either end compressed.
        expect(server.compressed).to.equal(ECHO_MESSAGES);
        expect(result.compressed).to.equal(ECHO_MESSAGES);
      });
    }

    it('both hops compressed, the upstream fragmenting its echoes, a stage on each direction', async () => {
      const { result, server } = await echoThrough({}, {}, { path: '/fragmented', proxy: { perMessageDeflate: { threshold: 0 }, transforms: IDLE_STAGES } });
      expect(server.compressed).to.equal(ECHO_MESSAGES);
      expect(result.compressed).to.equal(ECHO_MESSAGES);
    });

    for (const set of PARAMETER_SETS) {
      it(`${set.name}: echoes intact`, async () => {
        const { result, server } = await echoThrough(set.client, set.upstream);
        expect(result.extensions).to.match(set.clientHop);
        expect(server.extensions).to.match(set.upstreamHop);
      });

      it(`${set.name}, a stage on each direction: the proxy inflates, then compresses every message again`, async () => {
        const { result, server } = await echoThrough(set.client, set.upstream, { proxy: { perMessageDeflate: { threshold: 0 }, transforms: IDLE_STAGES } });
        expect(result.extensions).to.match(set.clientHop);
        expect(server.extensions).to.match(set.upstreamHop);
        expect(server.compressed).to.equal(ECHO_MESSAGES);
        expect(result.compressed).to.equal(ECHO_MESSAGES);
      });
    }

    it('client compressed, upstream without the extension: the proxy compresses and inflates', async () => {
      const { result, server } = await echoThrough({}, null);
      expect(result.extensions).to.match(/^permessage-deflate\b/);
      expect(server.extensions).to.equal(null);
      expect(server.compressed).to.equal(0);
      // the proxy compresses messages of `threshold` (1024) bytes or more
      expect(result.compressed).to.equal(echoed().filter((m) => m.bytes >= 1024).length);
    });

    it('upstream able to compress, client not: nothing is offered upstream, echoes intact', async () => {
      const { result, server } = await echoThrough(null, {});
      expect(result.extensions).to.equal(null);
      expect(server.extensions).to.equal(null);
      expect(result.compressed + server.compressed).to.equal(0);
    });

    for (const path of ['/echo', '/fragmented'] as const) {
      it(`a stage upper-casing text on compressed hops, echoes on ${path}: it sees plain text, the client gets it compressed`, async () => {
        const { result, server } = await echoThrough({}, {}, {
          path,
          upper: true,
          proxy: { perMessageDeflate: { threshold: 0 }, transforms: { upstream: () => [mapText((s) => s.toUpperCase())] } },
        });
        // the digests say it all; the same, readable, for the texts cut between frames
        expect(result.received.map((m) => m.text)).to.include.members(['HÉLLO WÖRLD ✓ 😀 ∑', 'CAFÉ ✓', 'FRAGMÉNTED ✓', 'INTERLEAVED ✓']);
        expect(result.compressed).to.equal(ECHO_MESSAGES);
        expect(server.compressed).to.equal(ECHO_MESSAGES);
      });
    }

    it("passes a compressed upstream's close 4001 and its reason to the client", async () => {
      const server = await pythonServer({});
      const result = await pythonClient(await proxyTo(server.url), {}, [{ send: 'CMD close 4001 compressed bye' }, { wait_closed: true }]);
      expect(result.error, JSON.stringify(result)).to.equal(undefined);
      expect(result.closeReceived).to.deep.equal({ code: 4001, reason: 'compressed bye' });
      expect((await server.nextReport()).closeReceived).to.deep.equal({ code: 4001, reason: 'compressed bye' });
    });
  });

  describe('protocol violations', () => {
    // websockets' write_frame() frames whatever it is given (through its own deflate when
    // negotiated); it refuses only what its Frame.check() catches (reserved bits, long or
    // fragmented control frames) and its Opcode enum (reserved opcodes), so those violations
    // cannot be produced with it and are left to the raw-frame conformance suites (test/conformance).
    //
    //
    // The echo of 'before' is awaited before the violation is sent: websockets' server answers a
    // close from its reading task, maybe before its handler has echoed the message that came just
    // before (its send then fails: no data after a close, RFC 6455 section 5.5.1), so that echo is
    // not the upstream's to guarantee. The proxy's own order (relay first) is checked with `ws`
    // peers in test/proxy and test/conformance.
    // `started`: messages the upstream saw begin. The frames before the offending one are relayed
    // as they come (the proxy does not hold fragments back), so it may see the bad message start.
    const violations: { name: string; frames: string[][]; code: number; started: number }[] = [
      { name: 'invalid UTF-8 in a text message', frames: [['text', '68c328']], code: 1007, started: 1 },
      { name: 'invalid UTF-8 across fragments', frames: [['text', '68c3'], ['cont', '28']], code: 1007, started: 2 },
      { name: 'a continuation frame with no message to continue', frames: [['cont', '6869']], code: 1002, started: 1 },
      { name: 'a new text frame inside a fragmented message', frames: [['text', '61'], ['text', '62']], code: 1002, started: 2 },
      { name: 'a close frame of code 999', frames: [['close', '03e7']], code: 1002, started: 1 },
      { name: 'a close frame of one byte', frames: [['close', '03']], code: 1002, started: 1 },
      { name: 'a close frame whose reason is invalid UTF-8', frames: [['close', '03e8ff']], code: 1007, started: 1 },
    ];
    for (const { name, frames, code, started } of violations) {
      it(`the client sending ${name}: it gets ${code}, the upstream 1001`, async () => {
        const server = await pythonServer(null);
        const result = await pythonClient(await proxyTo(server.url), null, [{ send: 'before' }, { recv: 1 }, { frames }, { wait_closed: true }]);
        expect(result.error, JSON.stringify(result)).to.equal(undefined);
        expect(digests(result)).to.deep.equal([text('before')]);
        expect(result.closeReceived?.code).to.equal(code);
        const report = await server.nextReport();
        expect(report.messages).to.equal(started);
        expect(report.closeReceived?.code).to.equal(1001);
      });
    }

    for (const { name, opcode, payload, code } of [
      { name: 'invalid UTF-8 in a text message', opcode: 'text', payload: '68c328', code: 1007 },
      { name: 'a close frame of code 999', opcode: 'close', payload: '03e7', code: 1002 },
    ]) {
      it(`the upstream sending ${name}: it gets ${code}, the client 1001`, async () => {
        const server = await pythonServer(null);
        const result = await pythonClient(await proxyTo(server.url), null, [{ send: `CMD raw ${opcode} ${payload}` }, { wait_closed: true }]);
        expect(result.error, JSON.stringify(result)).to.equal(undefined);
        expect(result.received).to.deep.equal([]);
        expect(result.closeReceived?.code).to.equal(1001);
        expect((await server.nextReport()).closeReceived?.code).to.equal(code);
      });
    }

    it('the client sending invalid UTF-8 in a compressed text message, both hops compressed: 1007 (the upstream\'s) reaches it', async () => {
      // passed through compressed, the text is checked by the upstream, whose 1007 the proxy relays
      const server = await pythonServer({});
      const result = await pythonClient(await proxyTo(server.url), {}, [{ send: 'before' }, { recv: 1 }, { frames: [['text', '68c328']] }, { wait_closed: true }]);
      expect(result.error, JSON.stringify(result)).to.equal(undefined);
      expect(digests(result)).to.deep.equal([text('before')]);
      expect(result.closeReceived?.code).to.equal(1007);
    });
  });
});
