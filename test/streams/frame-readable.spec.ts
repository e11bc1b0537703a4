import { once } from 'node:events';
import type net from 'node:net';
import { expect } from 'chai';
import { Writable, pipeline } from 'readable-stream';
import { WebSocket } from 'ws';
import { ErrorCodes, WebSocketProxyError } from '../../src/errors.js';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { DEFAULT_HIGH_WATER_MARK_BYTES, FrameReadable, type FrameReadableOptions, PARTIAL_FRAME_MIN } from '../../src/streams/frame-readable.js';
import { randomFrames, view } from '../helpers/frames.js';
import { SeededRandom } from '../helpers/random.js';
import { type TcpPair, rawUpgradeServer, settle, tcpPair, tick, waitFor, wire } from '../helpers/sockets.js';

const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** What a FrameReadable produced: its frames, its errors and the order of its events. */
interface Outcome {
  frames: Frame[];
  errors: Error[];
  events: string[];
}

/** Consumes a FrameReadable in flowing mode and records everything it emits. */
function consume(readable: FrameReadable): { outcome: Outcome; done: Promise<Outcome> } {
  const outcome: Outcome = { frames: [], errors: [], events: [] };
  readable.on('data', (frame: Frame) => {
    outcome.frames.push(frame);
    outcome.events.push(`data:${frame.type}`);
  });
  readable.on('error', (err: Error) => {
    outcome.errors.push(err);
    outcome.events.push('error');
  });
  readable.on('end', () => outcome.events.push('end'));
  const done = new Promise<Outcome>((resolve) => {
    readable.on('close', () => {
      outcome.events.push('close');
      resolve(outcome);
    });
  });
  return { outcome, done };
}

function expectCoded(err: Error | undefined, code: keyof typeof ErrorCodes, closeCode: number): void {
  expect(err).to.be.instanceOf(WebSocketProxyError);
  const coded = err as WebSocketProxyError;
  expect(coded.code).to.equal(code);
  expect(coded.closeCode).to.equal(closeCode);
}

/** Writes `pieces` one by one, waiting until `reader` has read each before sending the next. */
async function writeApart(writer: net.Socket, reader: net.Socket, pieces: readonly Buffer[]): Promise<void> {
  let total = reader.bytesRead;
  for (const piece of pieces) {
    writer.write(piece);
    total += piece.length;
    await waitFor(() => reader.bytesRead >= total);
  }
}

/** Fills a payload with a pattern that identifies the frame and every byte's place in it. */
function patterned(index: number, size: number): Buffer {
  const payload = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) payload[i] = (index * 31 + i) & 0xff;
  payload.writeUInt32BE(index, 0);
  return payload;
}

function checkPattern(payload: Buffer, index: number): boolean {
  if (payload.readUInt32BE(0) !== index) return false;
  for (let i = 4; i < payload.length; i++) if (payload[i] !== ((index * 31 + i) & 0xff)) return false;
  return true;
}

describe('FrameReadable over real sockets', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function pair(): Promise<TcpPair> {
    const p = await tcpPair();
    cleanups.push(() => p.close());
    return p;
  }

  /** A server-role reader on `pair.server`; `pair.client` plays the raw WebSocket client. */
  async function serverReader(options: Partial<FrameReadableOptions> = {}): Promise<{
    p: TcpPair;
    readable: FrameReadable;
  }> {
    const p = await pair();
    const readable = new FrameReadable(p.server, { role: 'server', ...options });
    cleanups.push(() => readable.destroy());
    return { p, readable };
  }

  const FIXED: Frame[] = [
    textFrame('héllo wörld'),
    pingFrame('p1'),
    binaryFrame(Buffer.alloc(300, 0xab)),
    textFrame('frag-', false),
    pongFrame(Buffer.from([0, 1, 2])),
    continuationFrame('ment-€', false),
    continuationFrame('ed'),
    binaryFrame(Buffer.alloc(0)),
    closeFrame(1000, 'bye'),
  ];

  describe('chunking', () => {
    it('parses frames sent one byte per write, control frames included, in order', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      let chunks = 0;
      p.server.on('data', () => chunks++);
      const bytes = wire(FIXED, KEY);
      await writeApart(p.client, p.server, [...bytes].map((b) => Buffer.from([b])));
      p.client.end();
      const outcome = await done;
      expect(chunks).to.equal(bytes.length);
      expect(outcome.errors).to.deep.equal([]);
      expect(outcome.frames.map(view)).to.deep.equal(FIXED.map(view));
      expect(outcome.events.slice(-2)).to.deep.equal(['end', 'close']);
    });

    for (const seed of [0x5eed01, 0x5eed02, 0x5eed03]) {
      it(`parses random frames split at random points (seed ${seed})`, async () => {
        const random = new SeededRandom(seed);
        const frames = randomFrames(random, 25);
        const { p, readable } = await serverReader();
        const { done } = consume(readable);
        let chunks = 0;
        p.server.on('data', () => chunks++);
        const pieces = random.split(wire(frames, random.bytes(4)), 300);
        await writeApart(p.client, p.server, pieces);
        p.client.end();
        const outcome = await done;
        expect(chunks).to.equal(pieces.length);
        expect(outcome.errors).to.deep.equal([]);
        expect(outcome.frames.map(view)).to.deep.equal(frames.map(view));
      });
    }
  });

  describe('head', () => {
    it('parses head first and leaves the caller\'s head buffer untouched', async () => {
      const p = await pair();
      const bytes = wire(FIXED, KEY);
      // The head holds the first frame, and the header and part of the payload of the second one.
      const cut = wire([FIXED[0]!], KEY).length + 4;
      const head = Buffer.from(bytes.subarray(0, cut));
      const headCopy = Buffer.from(head);
      const readable = new FrameReadable(p.server, { role: 'server', head });
      cleanups.push(() => readable.destroy());
      const { done } = consume(readable);
      await writeApart(p.client, p.server, [bytes.subarray(cut, cut + 1), bytes.subarray(cut + 1)]);
      p.client.end();
      const outcome = await done;
      expect(outcome.errors).to.deep.equal([]);
      expect(outcome.frames.map(view)).to.deep.equal(FIXED.map(view));
      expect(head.equals(headCopy)).to.equal(true);
    });

    it('parses a head that holds only the start of a frame header', async () => {
      const p = await pair();
      const bytes = wire([binaryFrame(Buffer.alloc(70000, 7)), textFrame('x')], KEY);
      const head = Buffer.from(bytes.subarray(0, 1));
      const readable = new FrameReadable(p.server, { role: 'server', head });
      cleanups.push(() => readable.destroy());
      const { done } = consume(readable);
      p.client.end(bytes.subarray(1));
      const outcome = await done;
      expect(outcome.errors).to.deep.equal([]);
      expect(outcome.frames.map(view)).to.deep.equal([binaryFrame(Buffer.alloc(70000, 7)), textFrame('x')].map(view));
      expect(head).to.deep.equal(Buffer.from([0x82]));
    });
  });

  describe('protocol violations reach the stream', () => {
    it('server role, unmasked frame: one WSP_ERR_MASK_REQUIRED (1002), no data after it', async () => {
      const { p, readable } = await serverReader();
      const { outcome, done } = consume(readable);
      p.client.write(wire([textFrame('ok')], KEY));
      p.client.write(wire([textFrame('unmasked')]));
      p.client.write(wire([textFrame('after-1'), textFrame('after-2')], KEY));
      const result = await done;
      expect(result.frames.map(view)).to.deep.equal([view(textFrame('ok'))]);
      expect(result.errors).to.have.length(1);
      expectCoded(result.errors[0], 'WSP_ERR_MASK_REQUIRED', 1002);
      // The socket stays the caller's: not destroyed; only a discarding 'data' listener is left.
      expect(p.server.destroyed).to.equal(false);
      expect(p.server.listenerCount('data')).to.equal(1);
      // More valid frames and the peer's FIN change nothing.
      p.client.end(wire([textFrame('after-3')], KEY));
      await settle();
      expect(outcome.events).to.deep.equal(['data:text', 'error', 'close']);
    });

    it('a violation parsed while the socket is paused for backpressure: later bytes are discarded and the FIN is seen', async () => {
      const p = await pair();
      const readable = new FrameReadable(p.server, { role: 'server', highWaterMark: 1 });
      cleanups.push(() => readable.destroy());
      const errors: Error[] = [];
      readable.on('error', (err: Error) => errors.push(err));
      // Many valid frames then a violation, and more bytes behind it; nobody reads yet, so the
      // reader stops after one frame and pauses the socket.
      const valid = Array.from({ length: 50 }, (_, i) => textFrame(`m${i}`));
      p.client.write(Buffer.concat([wire(valid, KEY), wire([textFrame('unmasked')]), wire([binaryFrame(Buffer.alloc(100000))], KEY)]));
      readable.read(0);
      await waitFor(() => p.server.isPaused() && readable.readableLength >= 1);
      // Now read: the violation is reached with the socket paused.
      const frames: Frame[] = [];
      readable.on('data', (frame: Frame) => frames.push(frame));
      await waitFor(() => errors.length === 1);
      expectCoded(errors[0], 'WSP_ERR_MASK_REQUIRED', 1002);
      expect(frames).to.have.length(50);
      const ended = once(p.server, 'end');
      p.client.end(wire([textFrame('after')], KEY));
      await ended;
      expect(p.server.isPaused()).to.equal(false);
    });

    it('client role, masked frame: WSP_ERR_MASK_FORBIDDEN (1002)', async () => {
      const p = await pair();
      const readable = new FrameReadable(p.client, { role: 'client' });
      cleanups.push(() => readable.destroy());
      const { done } = consume(readable);
      p.server.write(wire([textFrame('ok')]));
      p.server.write(wire([textFrame('masked')], KEY));
      const result = await done;
      expect(result.frames.map(view)).to.deep.equal([view(textFrame('ok'))]);
      expect(result.errors).to.have.length(1);
      expectCoded(result.errors[0], 'WSP_ERR_MASK_FORBIDDEN', 1002);
    });

    it('invalid UTF-8 in a text frame: WSP_ERR_INVALID_UTF8 (1007)', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      p.client.write(wire([textFrame(Buffer.from([0x68, 0xc3, 0x28]))], KEY));
      const result = await done;
      expect(result.frames).to.deep.equal([]);
      expect(result.errors).to.have.length(1);
      expectCoded(result.errors[0], 'WSP_ERR_INVALID_UTF8', 1007);
    });

    it('invalid UTF-8 across fragments: WSP_ERR_INVALID_UTF8 (1007) at the bad fragment', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      // '€' is e2 82 ac: a valid start cut by the fragment boundary, then a wrong continuation byte.
      p.client.write(wire([textFrame(Buffer.from([0x61, 0xe2, 0x82]), false)], KEY));
      p.client.write(wire([continuationFrame(Buffer.from([0x41]))], KEY));
      const result = await done;
      expect(result.frames.map(view)).to.deep.equal([view(textFrame(Buffer.from([0x61, 0xe2, 0x82]), false))]);
      expectCoded(result.errors[0], 'WSP_ERR_INVALID_UTF8', 1007);
    });

    it('maxFrameSize exceeded: WSP_ERR_FRAME_TOO_LARGE (1009) as soon as the header arrives', async () => {
      const { p, readable } = await serverReader({ maxFrameSize: 1000 });
      const { done } = consume(readable);
      p.client.write(wire([binaryFrame(Buffer.alloc(1000, 1))], KEY));
      // Header only: FIN+binary, masked, 16-bit length 1001, masking key; no payload byte follows.
      const header = Buffer.from([0x82, 0xfe, 0x03, 0xe9, ...KEY]);
      p.client.write(header);
      const result = await done;
      expect(result.frames.map(view)).to.deep.equal([view(binaryFrame(Buffer.alloc(1000, 1)))]);
      expect(result.errors).to.have.length(1);
      expectCoded(result.errors[0], 'WSP_ERR_FRAME_TOO_LARGE', 1009);
      expect(p.server.bytesRead).to.equal(wire([binaryFrame(Buffer.alloc(1000, 1))], KEY).length + header.length);
    });

    it('a huge frame with the default limits: WSP_ERR_FRAME_TOO_LARGE (1009) from its header alone', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      // 64-bit length 2^40, masked; only these 14 bytes are ever sent.
      p.client.write(Buffer.from([0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, ...KEY]));
      const result = await done;
      expect(result.errors).to.have.length(1);
      expectCoded(result.errors[0], 'WSP_ERR_FRAME_TOO_LARGE', 1009);
      expect(result.errors[0]!.message).to.contain('1099511627776 > 16777216');
    });

    it('a close frame with a code that may not be sent: WSP_ERR_INVALID_CLOSE_CODE (1002)', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      const body = Buffer.from([0x03, 0xed]); // 1005
      p.client.write(Buffer.concat([Buffer.from([0x88, 0x82, ...KEY]), Buffer.from(body.map((b, i) => b ^ KEY[i]!))]));
      const result = await done;
      expectCoded(result.errors[0], 'WSP_ERR_INVALID_CLOSE_CODE', 1002);
      expect(result.errors).to.have.length(1);
    });

    it('a reserved opcode: WSP_ERR_INVALID_OPCODE (1002)', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      p.client.write(Buffer.from([0x83, 0x80, ...KEY]));
      const result = await done;
      expectCoded(result.errors[0], 'WSP_ERR_INVALID_OPCODE', 1002);
      expect(result.errors).to.have.length(1);
    });
  });

  describe('frames parsed before a violation', () => {
    /** Violations a peer may send whatever came before (no message open), with their codes. */
    const VIOLATIONS: { bytes: () => Buffer; code: keyof typeof ErrorCodes; closeCode: number }[] = [
      { bytes: () => Buffer.from([0x83, 0x80, ...KEY]), code: 'WSP_ERR_INVALID_OPCODE', closeCode: 1002 },
      // FIN, RSV2, text.
      { bytes: () => wire([textFrame('rsv2')], KEY).fill(0xa1, 0, 1), code: 'WSP_ERR_UNEXPECTED_RSV', closeCode: 1002 },
      { bytes: () => wire([textFrame('unmasked')]), code: 'WSP_ERR_MASK_REQUIRED', closeCode: 1002 },
      { bytes: () => Buffer.from([0x09, 0x80, ...KEY]), code: 'WSP_ERR_FRAGMENTED_CONTROL', closeCode: 1002 },
      { bytes: () => wire([textFrame(Buffer.from([0x68, 0xc3, 0x28]))], KEY), code: 'WSP_ERR_INVALID_UTF8', closeCode: 1007 },
      // A 64-bit length of 2^21 against a maxFrameSize of 2^20: refused at its header.
      { bytes: () => Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, ...KEY]), code: 'WSP_ERR_FRAME_TOO_LARGE', closeCode: 1009 },
    ];

    /** How a reader told of its violation: once, with how many frames were out and how many queued. */
    interface Announced {
      err: Error;
      framesOut: number;
      queued: number;
    }

    /**
     * Reads in paused mode, `perTurn()` frames per event-loop turn, until the stream closes (or a
     * guard of turns passes): the reader parses ahead up to its high-water marks meanwhile, so a
     * violation is parsed with frames still queued. Records what `consume()` records, and the
     * `'violation'` announcements.
     */
    async function readSlowly(readable: FrameReadable, perTurn: () => number): Promise<Outcome & { announced: Announced[] }> {
      const outcome = { frames: [] as Frame[], errors: [] as Error[], events: [] as string[], announced: [] as Announced[] };
      readable.on('violation', (err: Error) => outcome.announced.push({ err, framesOut: outcome.frames.length, queued: readable.readableLength }));
      readable.on('error', (err: Error) => {
        outcome.errors.push(err);
        outcome.events.push('error');
      });
      readable.on('end', () => outcome.events.push('end'));
      let closed = false;
      readable.on('close', () => {
        outcome.events.push('close');
        closed = true;
      });
      for (let turn = 0; turn < 20000 && !closed; turn++) {
        for (let n = perTurn(); n > 0; n--) {
          const frame = readable.read() as Frame | null;
          if (frame === null) break;
          outcome.frames.push(frame);
          outcome.events.push(`data:${frame.type}`);
        }
        await tick();
      }
      return outcome;
    }

    for (const seed of [61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72]) {
      it(`valid frames, a violation and more frames split across writes: every frame before it, then the coded error (seed ${seed})`, async () => {
        const random = new SeededRandom(seed);
        const violation = VIOLATIONS[seed % VIOLATIONS.length]!;
        // No close frame: the stream must end at the violation.
        const valid = randomFrames(random, random.int(10, 40), 20000).slice(0, -1);
        const bad = violation.bytes();
        const cut = random.int(1, bad.length - 1);
        const before = Buffer.concat([wire(valid, random.bytes(4)), bad.subarray(0, cut)]);
        const after = Buffer.concat([bad.subarray(cut), wire([textFrame('after'), binaryFrame(Buffer.alloc(10))], KEY)]);
        // The violation itself is split across writes.
        const pieces = [...random.split(before, 15), ...random.split(after, 5)];
        const { p, readable } = await serverReader({
          maxFrameSize: 1 << 20,
          highWaterMark: random.int(2, 8),
          highWaterMarkBytes: random.int(1024, 16384),
        });
        const reading = readSlowly(readable, () => random.int(1, 3));
        for (const piece of pieces) {
          p.client.write(piece);
          if (random.chance(0.5)) await tick();
        }
        const result = await reading;
        expect(result.frames.map(view)).to.deep.equal(valid.map(view));
        expect(result.errors).to.have.length(1);
        expectCoded(result.errors[0], violation.code, violation.closeCode);
        expect(result.events).to.deep.equal([...valid.map((frame) => `data:${frame.type}`), 'error', 'close']);
        // Announced once, at once: the same error, while the frames then queued had not been read.
        expect(result.announced).to.have.length(1);
        expect(result.announced[0]!.err).to.equal(result.errors[0]);
        expect(result.announced[0]!.framesOut + result.announced[0]!.queued).to.equal(valid.length);
        expect(readable.violation).to.equal(result.errors[0]);
      });
    }

    it('a violation parsed with frames queued: they are read out first, the error only after the last', async () => {
      const { p, readable } = await serverReader({ highWaterMark: 4 });
      const valid = Array.from({ length: 20 }, (_, i) => textFrame(`m${i}`));
      p.client.write(Buffer.concat([wire(valid, KEY), Buffer.from([0x83, 0x80, ...KEY]), wire([textFrame('after')], KEY)]));
      const result = await readSlowly(readable, () => 1);
      expect(result.frames.map(view)).to.deep.equal(valid.map(view));
      expect(result.events).to.deep.equal([...valid.map(() => 'data:text'), 'error', 'close']);
      expectCoded(result.errors[0], 'WSP_ERR_INVALID_OPCODE', 1002);
      expect(result.announced).to.have.length(1);
      expect(result.announced[0]!.queued).to.be.greaterThan(0);
    });

    it('a frame cut by the end of input, with frames queued: they come out first, then WSP_ERR_TRUNCATED_FRAME (1006)', async () => {
      const { p, readable } = await serverReader({ highWaterMark: 3 });
      const valid = Array.from({ length: 10 }, (_, i) => binaryFrame(Buffer.alloc(100, i)));
      const bytes = wire([...valid, textFrame('cut')], KEY);
      p.client.end(bytes.subarray(0, bytes.length - 1));
      const result = await readSlowly(readable, () => 1);
      expect(result.frames.map(view)).to.deep.equal(valid.map(view));
      expect(result.events.slice(-2)).to.deep.equal(['error', 'close']);
      expectCoded(result.errors[0], 'WSP_ERR_TRUNCATED_FRAME', 1006);
      expect(result.announced).to.have.length(1);
      expect(result.announced[0]!.queued).to.be.greaterThan(0);
    });

    describe('endOnViolation', () => {
      /** A slow consumer: each frame is taken a turn after the previous one. */
      function slowSink(into: Frame[]): Writable {
        return new Writable({
          objectMode: true,
          highWaterMark: 1,
          write(frame: Frame, _encoding: string, callback: (error?: Error | null) => void) {
            into.push(frame);
            setImmediate(callback);
          },
        });
      }

      function run(readable: FrameReadable, sink: Writable): Promise<Error | null | undefined> {
        return new Promise((resolve) => {
          pipeline(readable, sink, (err: Error | null | undefined) => resolve(err));
        });
      }

      const valid = Array.from({ length: 40 }, (_, i) => textFrame(`message ${i}`));
      const bytes = (): Buffer => Buffer.concat([wire(valid, KEY), wire([textFrame('unmasked')]), wire([textFrame('after')], KEY)]);

      it('ends the stream after every frame before the violation: a pipeline loses none of them', async () => {
        const { p, readable } = await serverReader({ endOnViolation: true, highWaterMark: 4 });
        const announced: Error[] = [];
        readable.on('violation', (err: Error) => announced.push(err));
        const got: Frame[] = [];
        const ended = run(readable, slowSink(got));
        p.client.write(bytes());
        expect(await ended).to.equal(undefined);
        expect(got.map(view)).to.deep.equal(valid.map(view));
        expectCoded(readable.violation, 'WSP_ERR_MASK_REQUIRED', 1002);
        expect(announced).to.deep.equal([readable.violation]);
        // The socket is left paused to its owner: nothing after the violation is read or parsed.
        expect(p.server.isPaused()).to.equal(true);
        expect(p.server.listenerCount('data')).to.equal(0);
        expect(p.server.destroyed).to.equal(false);
      });

      it('without it, the same pipeline fails with the coded error (later stages drop what they hold)', async () => {
        const { p, readable } = await serverReader({ highWaterMark: 4 });
        const got: Frame[] = [];
        const ended = run(readable, slowSink(got));
        p.client.write(bytes());
        expectCoded((await ended) ?? undefined, 'WSP_ERR_MASK_REQUIRED', 1002);
        expect(got.map(view)).to.deep.equal(valid.slice(0, got.length).map(view));
      });

      it('rejects an endOnViolation that is not a boolean with a TypeError', async () => {
        const p = await pair();
        expect(() => new FrameReadable(p.server, { role: 'server', endOnViolation: 'yes' as unknown as boolean }))
          .to.throw(TypeError, 'options.endOnViolation must be a boolean');
      });
    });
  });

  describe('end of input', () => {
    it('a close frame ends the stream; later bytes are discarded; the socket still sees the peer\'s FIN', async () => {
      const { p, readable } = await serverReader();
      const { outcome, done } = consume(readable);
      const socketEnd = once(p.server, 'end');
      p.client.write(wire([textFrame('a'), closeFrame(1001, 'going')], KEY));
      // Garbage that would be a protocol error if it were parsed (reserved opcode, unmasked).
      p.client.write(Buffer.from([0x83, 0x00, 0xff, 0xff, 0xff]));
      p.client.write(Buffer.alloc(100000, 0xee));
      p.client.end();
      await done;
      await socketEnd;
      expect(outcome.errors).to.deep.equal([]);
      expect(outcome.frames.map(view)).to.deep.equal([view(textFrame('a')), view(closeFrame(1001, 'going'))]);
      expect(outcome.frames[1]!.code).to.equal(1001);
      expect(outcome.events).to.deep.equal(['data:text', 'data:close', 'end', 'close']);
      expect(p.server.bytesRead).to.equal(wire([textFrame('a'), closeFrame(1001, 'going')], KEY).length + 100005);
    });

    it('a close frame parsed while the socket is paused: the socket resumes and sees the FIN', async () => {
      const p = await pair();
      // One frame of queue: every frame is parsed from _read() while the socket is paused.
      const readable = new FrameReadable(p.server, { role: 'server', highWaterMark: 1 });
      cleanups.push(() => readable.destroy());
      const socketEnd = once(p.server, 'end');
      p.client.write(wire([textFrame('1'), textFrame('2'), textFrame('3'), closeFrame(1000)], KEY));
      readable.read(0);
      await waitFor(() => readable.readableLength === 1 && p.server.isPaused());
      // Bytes after the close frame arrive while the socket is paused: they wait in its buffer, and
      // its 'end' can only come once someone reads them.
      p.client.end(Buffer.alloc(100000, 0xee));
      await waitFor(() => p.server.readableLength > 0);
      const frames: Frame[] = [];
      let ended = false;
      readable.once('end', () => {
        ended = true;
      });
      while (!ended) {
        const frame = readable.read() as Frame | null;
        if (frame !== null) frames.push(frame);
        await tick();
      }
      expect(frames.map(view)).to.deep.equal([textFrame('1'), textFrame('2'), textFrame('3'), closeFrame(1000)].map(view));
      await socketEnd;
      expect(p.server.bytesRead).to.equal(wire([textFrame('1'), textFrame('2'), textFrame('3'), closeFrame(1000)], KEY).length + 100000);
    });

    it('the peer ending TCP between frames ends the stream', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      p.client.end(wire([textFrame('one'), binaryFrame(Buffer.from([1, 2]))], KEY));
      const result = await done;
      expect(result.errors).to.deep.equal([]);
      expect(result.frames.map(view)).to.deep.equal([textFrame('one'), binaryFrame(Buffer.from([1, 2]))].map(view));
      expect(result.events).to.deep.equal(['data:text', 'data:binary', 'end', 'close']);
    });

    it('the peer ending TCP inside a payload: WSP_ERR_TRUNCATED_FRAME (1006)', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      const bytes = wire([textFrame('one'), binaryFrame(Buffer.alloc(500, 3))], KEY);
      p.client.end(bytes.subarray(0, bytes.length - 1));
      const result = await done;
      expect(result.frames.map(view)).to.deep.equal([view(textFrame('one'))]);
      expect(result.errors).to.have.length(1);
      expectCoded(result.errors[0], 'WSP_ERR_TRUNCATED_FRAME', 1006);
      expect(result.events).to.not.include('end');
    });

    it('the peer ending TCP inside a header: WSP_ERR_TRUNCATED_FRAME (1006)', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      p.client.end(Buffer.from([0x82, 0xfe, 0x01]));
      const result = await done;
      expect(result.errors).to.have.length(1);
      expectCoded(result.errors[0], 'WSP_ERR_TRUNCATED_FRAME', 1006);
    });

    it('the peer ending TCP with a fragmented message open but no frame cut ends the stream', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      p.client.end(wire([textFrame('open', false)], KEY));
      const result = await done;
      expect(result.errors).to.deep.equal([]);
      expect(result.frames.map(view)).to.deep.equal([view(textFrame('open', false))]);
      expect(readable.midMessage).to.equal(true);
    });

    it('a connection reset is an error event, not an uncaught exception', async () => {
      const { p, readable } = await serverReader();
      const { done } = consume(readable);
      p.client.write(wire([textFrame('before')], KEY));
      await waitFor(() => p.server.bytesRead > 0);
      p.client.resetAndDestroy();
      const result = await done;
      expect(result.frames.map(view)).to.deep.equal([view(textFrame('before'))]);
      expect(result.errors).to.have.length(1);
      expect((result.errors[0] as NodeJS.ErrnoException).code).to.equal('ECONNRESET');
    });
  });

  describe('backpressure', () => {
    it('a consumer that does not read keeps the socket paused and the queue bounded (64 MiB offered)', async function () {
      this.timeout(20000);
      const p = await pair();
      const readable = new FrameReadable(p.client, { role: 'client' });
      cleanups.push(() => readable.destroy());
      const FRAME = 64 * 1024;
      const COUNT = 1024;
      let lastWrite = true;
      for (let i = 0; i < COUNT; i++) {
        lastWrite = p.server.write(wire([binaryFrame(patterned(i, FRAME))]));
      }
      // A 64 KiB payload takes the 64-bit length form: a 10-byte header.
      const sent = COUNT * (10 + FRAME);
      expect(lastWrite).to.equal(false);
      // Start the reader without consuming anything.
      readable.read(0);
      await settle(100);
      const queuedBytes = readable.readableLength * FRAME;
      expect(queuedBytes).to.be.at.most(DEFAULT_HIGH_WATER_MARK_BYTES + FRAME);
      expect(readable.readableLength).to.be.at.least(1);
      expect(p.client.isPaused()).to.equal(true);
      expect(p.client.bytesRead).to.be.below(2 * 1024 * 1024);
      // The peer cannot drain: nearly everything is still in its own buffer.
      expect(p.server.writableLength).to.be.above(sent - 16 * 1024 * 1024);
      const held = p.client.bytesRead;
      await settle(50);
      expect(p.client.bytesRead).to.equal(held);

      // Now consume everything and check every frame, in order.
      let next = 0;
      let bad = 0;
      let maxQueued = 0;
      readable.on('data', (frame: Frame) => {
        if (frame.payload.length !== FRAME || !checkPattern(frame.payload, next)) bad++;
        next++;
        maxQueued = Math.max(maxQueued, readable.readableLength);
      });
      readable.resume();
      await waitFor(() => next === COUNT);
      p.server.end();
      await once(readable, 'end');
      expect(bad).to.equal(0);
      expect(next).to.equal(COUNT);
      expect(maxQueued * FRAME).to.be.at.most(DEFAULT_HIGH_WATER_MARK_BYTES + FRAME);
      expect(p.client.bytesRead).to.equal(sent);
    });

    it('highWaterMarkBytes 64 KiB with 20 KiB frames: the queue stays within it plus one frame', async () => {
      const p = await pair();
      const HWM = 64 * 1024;
      const FRAME = 20 * 1024;
      const COUNT = 200;
      const readable = new FrameReadable(p.client, { role: 'client', highWaterMarkBytes: HWM });
      cleanups.push(() => readable.destroy());
      const sent = COUNT * (4 + FRAME);
      for (let i = 0; i < COUNT; i++) p.server.write(wire([binaryFrame(patterned(i, FRAME))]));
      p.server.end();
      readable.read(0);
      await settle();
      expect(readable.readableLength).to.equal(4);
      expect(p.client.isPaused()).to.equal(true);
      expect(p.client.bytesRead).to.be.below(sent);

      // A slow consumer: one frame per event-loop turn, checking the bound every time.
      let next = 0;
      let bad = 0;
      let maxQueued = 0;
      let ended = false;
      readable.once('end', () => {
        ended = true;
      });
      while (!ended) {
        const frame = readable.read() as Frame | null;
        maxQueued = Math.max(maxQueued, readable.readableLength);
        if (frame !== null) {
          if (!checkPattern(frame.payload, next)) bad++;
          next++;
        }
        await tick();
      }
      expect(bad).to.equal(0);
      expect(next).to.equal(COUNT);
      expect(maxQueued * FRAME).to.be.at.most(HWM + FRAME);
      expect(p.client.bytesRead).to.equal(sent);
    });
  });

  describe('partialFrames (cut-through)', () => {
    it('pushes a large frame arriving in parts as pieces, a small one whole; the pieces join into the payload', async () => {
      const { p, readable } = await serverReader({ partialFrames: true });
      const { outcome } = consume(readable);
      const big = patterned(1, 200 * 1024);
      const bytes = wire([binaryFrame(big), textFrame('small')], KEY);
      await writeApart(p.client, p.server, [bytes.subarray(0, 1000), bytes.subarray(1000, 70000), bytes.subarray(70000)]);
      await waitFor(() => outcome.frames.some((f) => f.type === 'text'));
      const pieces = outcome.frames.filter((f) => f.partial !== undefined);
      expect(pieces.length).to.be.at.least(3);
      expect(Buffer.concat(pieces.map((f) => f.payload)).equals(big)).to.equal(true);
      expect(pieces.map((f) => f.partial!.length)).to.deep.equal(pieces.map(() => big.length));
      expect(outcome.frames.at(-1)!.partial).to.equal(undefined);
      expect(outcome.frames.at(-1)!.payload.toString()).to.equal('small');
    });

    it('holds a frame under PARTIAL_FRAME_MIN, and any frame without the option, until it is whole', async () => {
      for (const [options, size] of [[{ partialFrames: true }, PARTIAL_FRAME_MIN - 1], [{}, 200 * 1024]] as const) {
        const { p, readable } = await serverReader(options);
        const { outcome } = consume(readable);
        const payload = patterned(2, size);
        const bytes = wire([binaryFrame(payload)], KEY);
        await writeApart(p.client, p.server, [bytes.subarray(0, 1000), bytes.subarray(1000)]);
        await waitFor(() => outcome.frames.length > 0);
        expect(outcome.frames.map((f) => [f.partial ?? null, f.payload.equals(payload)])).to.deep.equal([[null, true]]);
      }
    });

    it('enablePartialFrames() turns pieces on from the next frame', async () => {
      const { p, readable } = await serverReader();
      readable.enablePartialFrames();
      const { outcome } = consume(readable);
      const bytes = wire([binaryFrame(patterned(3, 100 * 1024))], KEY);
      await writeApart(p.client, p.server, [bytes.subarray(0, 1000), bytes.subarray(1000)]);
      await waitFor(() => outcome.frames.some((f) => f.partial !== undefined && f.partial.offset + f.payload.length === f.partial.length));
      expect(outcome.frames.length).to.be.at.least(2);
    });

    it('rejects a partialFrames that is not a boolean with a TypeError', async () => {
      const p = await pair();
      expect(() => new FrameReadable(p.server, { role: 'server', partialFrames: 1 } as unknown as FrameReadableOptions))
        .to.throw(TypeError, 'options.partialFrames must be a boolean');
    });
  });

  describe('consumePong', () => {
    it('a pong it returns true for is never pushed; other pongs and frames are, in order; `this` is the reader', async () => {
      const seen: { self: unknown; data: string }[] = [];
      function consumeMine(this: FrameReadable, frame: Frame): boolean {
        seen.push({ self: this, data: frame.payload.toString() });
        return frame.payload.toString().startsWith('mine');
      }
      const { p, readable } = await serverReader({ consumePong: consumeMine });
      const { done } = consume(readable);
      p.client.end(wire([
        textFrame('a'), pongFrame('mine-1'), pongFrame('theirs'), pingFrame('mine-ping'), textFrame('b', false),
        pongFrame('mine-2'), continuationFrame('c'), closeFrame(1000),
      ], KEY));
      const outcome = await done;
      expect(outcome.errors).to.deep.equal([]);
      expect(outcome.frames.map(view)).to.deep.equal([
        textFrame('a'), pongFrame('theirs'), pingFrame('mine-ping'), textFrame('b', false), continuationFrame('c'), closeFrame(1000),
      ].map(view));
      // Asked about pongs only.
      expect(seen.map((s) => s.data)).to.deep.equal(['mine-1', 'theirs', 'mine-2']);
      expect(seen.every((s) => s.self === readable)).to.equal(true);
    });

    it('rejects a consumePong that is not a function with a TypeError', async () => {
      const p = await pair();
      expect(() => new FrameReadable(p.server, { role: 'server', consumePong: 'yes' } as unknown as FrameReadableOptions))
        .to.throw(TypeError, 'options.consumePong must be a function');
    });
  });

  describe('bytesReceived, reading, stalls', () => {
    it('bytesReceived counts socket bytes (head excluded), also of a frame not complete yet', async () => {
      const head = wire([textFrame('head')], KEY);
      const { p, readable } = await serverReader({ head });
      const { outcome } = consume(readable);
      expect(readable.bytesReceived).to.equal(0);
      const bytes = wire([binaryFrame(Buffer.alloc(1000, 7))], KEY);
      await writeApart(p.client, p.server, [bytes.subarray(0, 300)]);
      await waitFor(() => readable.bytesReceived === 300);
      expect(outcome.frames.map(view)).to.deep.equal([view(textFrame('head'))]);
      await writeApart(p.client, p.server, [bytes.subarray(300)]);
      await waitFor(() => outcome.frames.length === 2);
      expect(readable.bytesReceived).to.equal(bytes.length);
    });

    it('reading is false until the consumer asks, true while it keeps up, false while it is behind; stalls counts the stops', async () => {
      const p = await pair();
      const readable = new FrameReadable(p.client, { role: 'client', highWaterMark: 2 });
      cleanups.push(() => readable.destroy());
      expect(readable.reading).to.equal(false);
      expect(readable.stalls).to.equal(0);
      p.server.write(wire([textFrame('1'), textFrame('2'), textFrame('3'), textFrame('4')]));
      readable.read(0);
      await waitFor(() => readable.readableLength === 2);
      await settle();
      // Two frames queued, nobody reads them: the socket is paused.
      expect(readable.reading).to.equal(false);
      expect(readable.stalls).to.equal(1);
      expect(p.client.isPaused()).to.equal(true);
      const frames: Frame[] = [];
      readable.on('data', (frame: Frame) => frames.push(frame));
      await waitFor(() => frames.length === 4);
      await settle();
      // All read, the consumer keeps up: the reader reads its socket.
      expect(readable.reading).to.equal(true);
      expect(readable.stalls).to.be.at.least(1);
      p.server.end(wire([closeFrame(1000)]));
      await once(readable, 'end');
      expect(readable.reading).to.equal(false);
    });
  });

  describe('interop with a ws client', () => {
    it('parses what a real ws client sends: text, binary, fragments, ping, close with reason', async () => {
      const server = await rawUpgradeServer();
      cleanups.push(() => server.close());
      const client = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false });
      cleanups.push(() => client.terminate());
      const [{ socket, head }] = await Promise.all([server.accept(), once(client, 'open')]);
      const readable = new FrameReadable(socket, { role: 'server', head });
      cleanups.push(() => readable.destroy());
      const { done } = consume(readable);
      const big = Buffer.alloc(70000);
      for (let i = 0; i < big.length; i++) big[i] = i % 251;
      client.send('hello');
      client.send(Buffer.from([1, 2, 3]));
      client.send('frag-1', { fin: false });
      client.send('frag-2', { fin: false });
      client.ping(Buffer.from('ping-data'));
      client.send('frag-€', { fin: true });
      client.send(big, { binary: true });
      client.close(4001, 'going away now');
      const result = await done;
      expect(result.errors).to.deep.equal([]);
      expect(result.frames.map(view)).to.deep.equal(
        [
          textFrame('hello'),
          binaryFrame(Buffer.from([1, 2, 3])),
          textFrame('frag-1', false),
          continuationFrame('frag-2', false),
          pingFrame('ping-data'),
          continuationFrame('frag-€', true),
          binaryFrame(big),
          closeFrame(4001, 'going away now'),
        ].map(view),
      );
      const close = result.frames[7]!;
      expect(close.code).to.equal(4001);
      expect(close.payload.toString()).to.equal('going away now');
    });
  });

  describe('seeded random input', () => {
    const codes = Object.keys(ErrorCodes);

    /** Sends `bytes` in random pieces, ends, and checks the reader ends or fails once, coded. */
    async function feed(random: SeededRandom, bytes: Buffer): Promise<Outcome> {
      const { p, readable } = await serverReader({ maxFrameSize: 1 << 20 });
      const { done } = consume(readable);
      for (const piece of random.split(bytes, 20)) {
        p.client.write(piece);
        if (random.chance(0.5)) await tick();
      }
      p.client.end();
      const outcome = await done;
      const last = outcome.events.slice(-2);
      if (outcome.errors.length === 0) {
        expect(last).to.deep.equal(['end', 'close']);
      } else {
        expect(outcome.errors).to.have.length(1);
        expect(outcome.errors[0]).to.be.instanceOf(WebSocketProxyError);
        expect(codes).to.include((outcome.errors[0] as WebSocketProxyError).code);
        expect(last).to.deep.equal(['error', 'close']);
      }
      return outcome;
    }

    for (const seed of [101, 102, 103, 104, 105, 106, 107, 108]) {
      it(`random bytes end in 'end' or one coded error (seed ${seed})`, async () => {
        const random = new SeededRandom(seed);
        await feed(random, random.bytes(random.int(1, 3000)));
      });

      it(`a valid stream with random bytes changed ends in 'end' or one coded error (seed ${seed})`, async () => {
        const random = new SeededRandom(seed);
        const frames = randomFrames(random, 10, 5000);
        const key = random.bytes(4);
        const bytes = wire(frames, key);
        let firstDamage = bytes.length;
        const flips = random.int(1, 3);
        for (let i = 0; i < flips; i++) {
          const at = random.int(0, bytes.length - 1);
          bytes[at] = random.int(0, 255);
          firstDamage = Math.min(firstDamage, at);
        }
        // The frames that lie wholly before the first changed byte must come out intact.
        let intact = 0;
        for (let end = 0; intact < frames.length; intact++) {
          end += wire([frames[intact]!], key).length;
          if (end > firstDamage) break;
        }
        const outcome = await feed(random, bytes);
        expect(outcome.frames.length).to.be.at.least(intact);
        expect(outcome.frames.slice(0, intact).map(view)).to.deep.equal(frames.slice(0, intact).map(view));
      });

      it(`a valid stream cut at a random point ends in 'end' or WSP_ERR_TRUNCATED_FRAME (seed ${seed})`, async () => {
        const random = new SeededRandom(seed);
        const frames = randomFrames(random, 10, 5000);
        const bytes = wire(frames, random.bytes(4));
        const outcome = await feed(random, bytes.subarray(0, random.int(1, bytes.length - 1)));
        expect(outcome.frames.map(view)).to.deep.equal(frames.slice(0, outcome.frames.length).map(view));
        if (outcome.errors.length > 0) expectCoded(outcome.errors[0], 'WSP_ERR_TRUNCATED_FRAME', 1006);
      });
    }
  });

  describe('construction', () => {
    it('on a socket that has already ended: parses head, then ends', async () => {
      const p = await pair();
      p.client.end();
      await once(p.server, 'end');
      const readable = new FrameReadable(p.server, { role: 'server', head: wire([textFrame('last words')], KEY) });
      const { done } = consume(readable);
      const result = await done;
      expect(result.frames.map(view)).to.deep.equal([view(textFrame('last words'))]);
      expect(result.events).to.deep.equal(['data:text', 'end', 'close']);
    });

    it('a default maxBufferedBytes that fits a 125-byte control frame under a small maxFrameSize', async () => {
      const { p, readable } = await serverReader({ maxFrameSize: 2 });
      const { done } = consume(readable);
      p.client.end(wire([pingFrame(Buffer.alloc(125, 1)), binaryFrame('ab')], KEY));
      const result = await done;
      expect(result.errors).to.deep.equal([]);
      expect(result.frames.map(view)).to.deep.equal([view(pingFrame(Buffer.alloc(125, 1))), view(binaryFrame('ab'))]);
    });

    it('rejects a missing or invalid role with a TypeError', async () => {
      const p = await pair();
      expect(() => new FrameReadable(p.server, {} as FrameReadableOptions)).to.throw(TypeError, /role/);
      expect(() => new FrameReadable(p.server, { role: 'proxy' } as unknown as FrameReadableOptions)).to.throw(
        TypeError,
        /role/,
      );
      expect(() => new FrameReadable(p.server, undefined as unknown as FrameReadableOptions)).to.throw(TypeError, /role/);
      expect(p.server.listenerCount('data')).to.equal(0);
    });

    for (const name of ['maxFrameSize', 'maxBufferedBytes', 'highWaterMark', 'highWaterMarkBytes'] as const) {
      it(`rejects ${name} of 0, -1, 1.5, NaN with a TypeError`, async () => {
        const p = await pair();
        for (const value of [0, -1, 1.5, Number.NaN]) {
          expect(() => new FrameReadable(p.server, { role: 'server', [name]: value }), `${name}=${value}`).to.throw(
            TypeError,
            name,
          );
        }
        expect(p.server.listenerCount('data')).to.equal(0);
        const ok = new FrameReadable(p.server, { role: 'server', [name]: 1 });
        ok.destroy();
      });
    }
  });
});
