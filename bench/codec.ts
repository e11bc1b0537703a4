/**
 * Codec benchmark: our parser and encoder against ws's Receiver and Sender, on identical bytes.
 *
 * Run with `npm run bench:codec` (add `-- --help` for options). Not part of `npm test`.
 *
 * Parse: a stream of N equal frames is encoded once, cut into 64 KiB chunks the way a socket
 * delivers them (cuts fall anywhere inside frames), and each timed batch feeds a fresh copy of those
 * chunks (copied outside the timed region, because both parsers unmask in place) to
 *   - FrameReadable, fed by a minimal Duplex (`source.push(chunk)`) and consumed with on('data');
 *   - FrameParser alone (push + next until null);
 *   - ws's Receiver, fed by the same kind of Duplex (`source.on('data', c => receiver.write(c))`)
 *     and counted on 'message'.
 * Serialize: the same payload encoded again and again by
 *   - encodeFrame (with randomMask for a fresh key when masked) vs ws's Sender.frame
 *     (readOnly: true, so ws masks into a new buffer as we do and leaves the payload alone);
 *   - FrameWritable vs ws's Sender#send, both writing into a null-sink Duplex.
 *
 * Every case alternates the contenders (rotating who goes first) for several rounds of about
 * `--ms` milliseconds of timed work each, after a warm-up round, and reports medians. Time is the
 * process's CPU time (`process.cpuUsage`), not wall time: on a shared machine wall time also counts
 * other processes' turns, which made rounds of the same code differ by 30% or more.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Duplex } from 'node:stream';
import type { Frame } from '../src/frame.js';
import { encodeFrame } from '../src/protocol/encode.js';
import { hasNativeMask, randomMask } from '../src/protocol/mask.js';
import { FrameParser, type Role } from '../src/protocol/parser.js';
import { FrameReadable } from '../src/streams/frame-readable.js';
import { FrameWritable } from '../src/streams/frame-writable.js';

// ---------------------------------------------------------------------------------------------
// ws internals (not in @types/ws): narrow local declarations of what the benchmark uses.

interface WsReceiver {
  write(chunk: Buffer): boolean;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}
interface WsReceiverConstructor {
  new (options: { isServer: boolean; maxPayload: number; skipUTF8Validation: boolean }): WsReceiver;
}
interface WsFrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
interface WsSendOptions {
  binary: boolean;
  fin: boolean;
  mask: boolean;
  compress: boolean;
}
interface WsSender {
  send(data: Buffer, options: WsSendOptions, cb?: (err?: Error) => void): void;
}
interface WsSenderConstructor {
  new (socket: Duplex): WsSender;
  frame(data: Buffer, options: WsFrameOptions): Buffer[];
}

const require = createRequire(import.meta.url);
const ws = require('ws') as { Receiver: WsReceiverConstructor; Sender: WsSenderConstructor };
const wsVersion = (require('ws/package.json') as { version: string }).version;

function wsHasBufferUtil(): boolean {
  if (process.env.WS_NO_BUFFER_UTIL) return false;
  try {
    require('bufferutil');
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  ms: number;
  rounds: number;
  sizes: number[];
  parse: boolean;
  serialize: boolean;
  text: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    ms: 200,
    rounds: 5,
    sizes: [20, 125, 16 * 1024, 1024 * 1024],
    parse: true,
    serialize: true,
    text: true,
  };
  for (const arg of argv) {
    const [name, value] = arg.split('=', 2) as [string, string | undefined];
    if (name === '--ms') options.ms = Number(value);
    else if (name === '--rounds') options.rounds = Number(value);
    else if (name === '--sizes') options.sizes = (value ?? '').split(',').map(Number);
    else if (name === '--parse-only') options.serialize = false;
    else if (name === '--serialize-only') options.parse = false;
    else if (name === '--no-text') options.text = false;
    else {
      console.log(
        'usage: node dist/bench/codec.js [--ms=200] [--rounds=5] [--sizes=20,125,16384,1048576]\n' +
          '                               [--parse-only | --serialize-only] [--no-text]\n' +
          'env: WSP_NO_BUFFER_UTIL=1 WS_NO_BUFFER_UTIL=1 for JS masking in both contenders',
      );
      process.exit(name === '--help' ? 0 : 1);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Measurement

/** One contender of a case: `setup` runs untimed before each round, `batch` is timed. */
interface Contender {
  name: string;
  /** Prepares a round (fresh instances); resolves when ready. */
  setup(): Promise<void>;
  /** Untimed preparation of the next batch (fresh input copies). */
  prepare(): void;
  /** One timed batch; returns the number of frames it handled. */
  batch(): number | Promise<number>;
}

interface Result {
  framesPerSecond: number;
}

async function measureRound(contender: Contender, ms: number): Promise<number> {
  await contender.setup();
  let elapsed = 0; // CPU nanoseconds: on a shared machine, wall time also counts other processes' turns
  let frames = 0;
  const budget = ms * 1e6;
  while (elapsed < budget) {
    contender.prepare();
    const start = process.cpuUsage();
    const done = contender.batch();
    const n = typeof done === 'number' ? done : await done;
    const used = process.cpuUsage(start);
    elapsed += (used.user + used.system) * 1000;
    frames += n;
  }
  return frames / (elapsed / 1e9);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Alternates the contenders round by round (rotating the order) and returns median rates. */
async function compare(contenders: Contender[], options: Options): Promise<Result[]> {
  const samples: number[][] = contenders.map(() => []);
  // Warm-up: a short round each, results discarded.
  for (const contender of contenders) await measureRound(contender, Math.max(50, options.ms / 2));
  for (let round = 0; round < options.rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + round) % contenders.length;
      samples[i]!.push(await measureRound(contenders[i]!, options.ms));
    }
  }
  return samples.map((s) => ({ framesPerSecond: median(s) }));
}

// ---------------------------------------------------------------------------------------------
// Input

const CHUNK = 64 * 1024;
const PARSE_BATCH_BYTES = 2 * 1024 * 1024;

/** Payload bytes of the given size: random for binary, printable ASCII for text. */
function payloadOf(size: number, text: boolean): Buffer {
  const bytes = randomBytes(size);
  if (text) for (let i = 0; i < size; i++) bytes[i] = 0x20 + (bytes[i]! % 95);
  return bytes;
}

interface Input {
  chunks: Buffer[];
  frames: number;
}

/** A run of equal frames, each masked with its own random key when `masked`, cut into 64 KiB chunks. */
function buildInput(size: number, masked: boolean, text: boolean): Input {
  const payload = payloadOf(size, text);
  const frame: Frame = { type: text ? 'text' : 'binary', fin: true, payload, rsv1: false };
  const frameBytes = size + 14;
  const frames = Math.max(4, Math.ceil(PARSE_BATCH_BYTES / frameBytes));
  const parts: Buffer[] = [];
  const key = Buffer.alloc(4);
  for (let i = 0; i < frames; i++) {
    if (masked) {
      do randomMask(key);
      while ((key[0]! | key[1]! | key[2]! | key[3]!) === 0); // ws skips unmasking for a zero key
    }
    parts.push(...encodeFrame(frame, masked ? key : undefined));
  }
  const all = Buffer.concat(parts);
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < all.length; offset += CHUNK) {
    chunks.push(Buffer.from(all.subarray(offset, Math.min(offset + CHUNK, all.length))));
  }
  return { chunks, frames };
}

/** Fresh copies of the chunks, as a socket hands out fresh buffers. */
function copyChunks(chunks: Buffer[]): Buffer[] {
  return chunks.map((chunk) => Buffer.from(chunk));
}

function sourceSocket(): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function check(name: string, got: number, want: number): number {
  if (got !== want) throw new Error(`${name}: ${got} frames parsed, ${want} expected`);
  return got;
}

// ---------------------------------------------------------------------------------------------
// Parse contenders

function parseContenders(input: Input, masked: boolean): Contender[] {
  const role: Role = masked ? 'server' : 'client';
  const maxFrameSize = 64 * 1024 * 1024;
  let copies: Buffer[] = [];
  const prepare = (): void => {
    copies = copyChunks(input.chunks);
  };

  let readableSource: Duplex | undefined;
  let readable: FrameReadable | undefined;
  let readableCount = 0;
  const ours: Contender = {
    name: 'FrameReadable',
    async setup() {
      readable?.destroy();
      readableSource = sourceSocket();
      readable = new FrameReadable(readableSource, { role, maxFrameSize });
      readable.on('data', () => {
        readableCount++;
      });
      readable.on('error', (err) => {
        throw err;
      });
      await nextTurn(); // the socket resumes on the next tick
    },
    prepare,
    batch() {
      readableCount = 0;
      const source = readableSource!;
      for (let i = 0; i < copies.length; i++) source.push(copies[i]);
      return check('FrameReadable', readableCount, input.frames);
    },
  };

  let parser: FrameParser | undefined;
  const bare: Contender = {
    name: 'FrameParser',
    async setup() {
      parser = new FrameParser({
        role,
        maxFrameSize,
        maxBufferedBytes: maxFrameSize + 14,
        validateUtf8: true,
        allowRsv1: false,
      });
    },
    prepare,
    batch() {
      const p = parser!;
      let count = 0;
      for (let i = 0; i < copies.length; i++) {
        p.push(copies[i]!);
        while (p.next() !== null) count++;
      }
      return check('FrameParser', count, input.frames);
    },
  };

  let wsSource: Duplex | undefined;
  let wsCount = 0;
  const theirs: Contender = {
    name: 'ws Receiver',
    async setup() {
      wsSource?.destroy();
      wsSource = sourceSocket();
      const receiver = new ws.Receiver({ isServer: masked, maxPayload: maxFrameSize, skipUTF8Validation: false });
      receiver.on('message', () => {
        wsCount++;
      });
      receiver.on('error', (err) => {
        throw err;
      });
      wsSource.on('data', (chunk: Buffer) => receiver.write(chunk));
      await nextTurn();
    },
    prepare,
    batch() {
      wsCount = 0;
      const source = wsSource!;
      for (let i = 0; i < copies.length; i++) source.push(copies[i]);
      return check('ws Receiver', wsCount, input.frames);
    },
  };

  return [ours, bare, theirs];
}

// ---------------------------------------------------------------------------------------------
// Serialize contenders

function serializeContenders(size: number, masked: boolean): Contender[] {
  const payload = payloadOf(size, false);
  const frame: Frame = { type: 'binary', fin: true, payload, rsv1: false };
  // Frames per batch: about 1 MiB of payload, at least 8.
  const n = Math.max(8, Math.ceil((1024 * 1024) / size));
  let sink = 0;

  const key = Buffer.alloc(4);
  const encode: Contender = {
    name: 'encodeFrame',
    async setup() {},
    prepare() {},
    batch() {
      for (let i = 0; i < n; i++) {
        let out: Buffer[];
        if (masked) {
          randomMask(key);
          out = encodeFrame(frame, key);
        } else {
          out = encodeFrame(frame);
        }
        sink += out.length;
      }
      return n;
    },
  };

  const frameOptions: WsFrameOptions = { fin: true, rsv1: false, opcode: 2, mask: masked, readOnly: true };
  const wsFrame: Contender = {
    name: 'Sender.frame',
    async setup() {},
    prepare() {},
    batch() {
      for (let i = 0; i < n; i++) sink += ws.Sender.frame(payload, frameOptions).length;
      return n;
    },
  };

  let writable: FrameWritable | undefined;
  const stream: Contender = {
    name: 'FrameWritable',
    async setup() {
      writable?.destroy();
      writable = new FrameWritable(nullSink(), { role: masked ? 'client' : 'server' });
    },
    prepare() {},
    async batch() {
      const w = writable!;
      for (let i = 0; i < n - 1; i++) {
        if (!w.write(frame)) await new Promise((resolve) => w.once('drain', resolve));
      }
      await new Promise((resolve) => w.write(frame, resolve));
      return n;
    },
  };

  let sender: WsSender | undefined;
  const sendOptions: WsSendOptions = { binary: true, fin: true, mask: masked, compress: false };
  const wsSend: Contender = {
    name: 'Sender#send',
    async setup() {
      sender = new ws.Sender(nullSink());
    },
    prepare() {},
    async batch() {
      const s = sender!;
      for (let i = 0; i < n - 1; i++) s.send(payload, sendOptions);
      await new Promise((resolve) => s.send(payload, sendOptions, resolve));
      return n;
    },
  };

  void sink;
  return [encode, wsFrame, stream, wsSend];
}

function nullSink(): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
    writev(_chunks, callback) {
      callback();
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Report

function sizeLabel(size: number): string {
  if (size >= 1024 * 1024 && size % (1024 * 1024) === 0) return `${size / (1024 * 1024)} MiB`;
  if (size >= 1024 && size % 1024 === 0) return `${size / 1024} KiB`;
  return `${size} B`;
}

function rate(framesPerSecond: number): string {
  if (framesPerSecond >= 1e6) return `${(framesPerSecond / 1e6).toFixed(2)} M`;
  if (framesPerSecond >= 1e3) return `${(framesPerSecond / 1e3).toFixed(1)} k`;
  return framesPerSecond.toFixed(0);
}

function mbps(framesPerSecond: number, size: number): string {
  return ((framesPerSecond * size) / 1e6).toFixed(0);
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  console.log(`# Codec benchmark (bench/codec)\n`);
  console.log(
    `Node ${process.version}, ${process.platform}/${process.arch}, ws ${wsVersion}; ` +
      `bufferutil: ours ${hasNativeMask ? 'loaded' : 'not loaded'}, ws ${wsHasBufferUtil() ? 'loaded' : 'not loaded'}; ` +
      `${options.rounds} rounds of ~${options.ms} ms CPU time per contender, medians; rates per CPU second. ` +
      `MB = 10^6 payload bytes.\n`,
  );

  if (options.parse) {
    console.log('## Parse\n');
    console.log('Ratio = FrameReadable / ws Receiver (stream level); bare = FrameParser / ws Receiver.\n');
    console.log(
      '| payload | type | masked | FrameReadable frames/s | MB/s | ws Receiver frames/s | MB/s | ratio | FrameParser frames/s | bare ratio |',
    );
    console.log('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
    const cases: { size: number; text: boolean }[] = options.sizes.map((size) => ({ size, text: false }));
    if (options.text && options.sizes.includes(20)) cases.push({ size: 20, text: true });
    for (const { size, text } of cases) {
      for (const masked of [true, false]) {
        const input = buildInput(size, masked, text);
        const [readable, parser, receiver] = await compare(parseContenders(input, masked), options);
        const r = readable!.framesPerSecond, p = parser!.framesPerSecond, w = receiver!.framesPerSecond;
        console.log(
          `| ${sizeLabel(size)} | ${text ? 'text' : 'binary'} | ${masked ? 'yes' : 'no'} | ${rate(r)} | ${mbps(r, size)} | ` +
            `${rate(w)} | ${mbps(w, size)} | **${ratio(r, w)}** | ${rate(p)} | ${ratio(p, w)} |`,
        );
      }
    }
    console.log();
  }

  if (options.serialize) {
    console.log('## Serialize\n');
    console.log('Ratio = encodeFrame / Sender.frame; stream ratio = FrameWritable / Sender#send (null-sink Duplex).\n');
    console.log(
      '| payload | masked | encodeFrame frames/s | MB/s | Sender.frame frames/s | MB/s | ratio | FrameWritable frames/s | Sender#send frames/s | stream ratio |',
    );
    console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const size of options.sizes) {
      for (const masked of [true, false]) {
        const [encode, frame, writable, send] = await compare(serializeContenders(size, masked), options);
        const e = encode!.framesPerSecond, f = frame!.framesPerSecond;
        const w = writable!.framesPerSecond, s = send!.framesPerSecond;
        console.log(
          `| ${sizeLabel(size)} | ${masked ? 'yes' : 'no'} | ${rate(e)} | ${mbps(e, size)} | ${rate(f)} | ${mbps(f, size)} | ` +
            `**${ratio(e, f)}** | ${rate(w)} | ${rate(s)} | ${ratio(w, s)} |`,
        );
      }
    }
    console.log();
  }
}

await main();
