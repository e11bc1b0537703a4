import { once } from 'node:events';
import type net from 'node:net';
import { expect } from 'chai';
import { Duplex, Readable, pipeline } from 'readable-stream';
import sinon from 'sinon';
import { WebSocket, type RawData } from 'ws';
import { ErrorCodes, WebSocketProxyError } from '../../src/errors.js';
import {
  type Frame,
  binaryFrame,
  closeFrame,
  continuationFrame,
  pingFrame,
  pongFrame,
  textFrame,
} from '../../src/frame.js';
import { FrameReadable } from '../../src/streams/frame-readable.js';
import { FrameWritable, type FrameWritableOptions, transferPayload } from '../../src/streams/frame-writable.js';
import { MASK_IN_PLACE_MIN, encodeFrame } from '../../src/protocol/encode.js';
import { MASK_PIECE_SIZE } from '../../src/protocol/mask.js';
import { randomFrames, view } from '../helpers/frames.js';
import { SeededRandom } from '../helpers/random.js';
import {
  type TcpPair,
  rawUpgradeClient,
  rawUpgradeServer,
  relayedPair,
  settle,
  sink,
  tcpPair,
  waitFor,
  wsServer,
} from '../helpers/sockets.js';

const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const fixedKey = (key: Buffer): void => {
  KEY.copy(key);
};

function expectCoded(err: Error | null | undefined, code: keyof typeof ErrorCodes, closeCode: number): void {
  expect(err).to.be.instanceOf(WebSocketProxyError);
  const coded = err as WebSocketProxyError;
  expect(coded.code).to.equal(code);
  expect(coded.closeCode).to.equal(closeCode);
}

/** Writes a frame and resolves with the error its callback got (undefined on success). */
function write(writable: FrameWritable, frame: Frame): Promise<Error | null | undefined> {
  return new Promise((resolve) => {
    writable.write(frame, (err) => resolve(err));
  });
}

/** Masks `data` with `key` by the definition of RFC 6455 section 5.3, independently of src/. */
function xor(data: Buffer, key: Buffer): Buffer {
  return Buffer.from(data.map((b, i) => b ^ key[i % 4]!));
}

/**
 * `pipeline(source, writable)` as a promise of its error. The cast is needed because
 * `FrameWritable.write()` takes a `Frame`, which the typings of `pipeline` (byte streams) reject.
 */
function pipeInto(source: Readable, writable: FrameWritable): Promise<Error | null | undefined> {
  return new Promise((resolve) => {
    pipeline(source, writable as unknown as NodeJS.WritableStream, (err: Error | null | undefined) => resolve(err));
  });
}

function patterned(index: number, size: number): Buffer {
  const payload = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) payload[i] = (index * 31 + i) & 0xff;
  payload.writeUInt32BE(index, 0);
  return payload;
}

describe('FrameWritable over real sockets', () => {
  const cleanups: (() => unknown)[] = [];
  let clock: sinon.SinonFakeTimers | undefined;
  afterEach(async () => {
    clock?.restore();
    clock = undefined;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function pair(): Promise<TcpPair> {
    const p = await tcpPair();
    cleanups.push(() => p.close());
    return p;
  }

  /**
   * A writer on one end of a loopback pair and a byte sink on the other: a server-role writer writes
   * on `p.server`, a client-role writer on `p.client`.
   */
  async function writer(options: FrameWritableOptions): Promise<{
    p: TcpPair;
    writable: FrameWritable;
    socket: net.Socket;
    peer: net.Socket;
    errors: Error[];
  }> {
    const p = await pair();
    const socket = options.role === 'server' ? p.server : p.client;
    const peer = options.role === 'server' ? p.client : p.server;
    const writable = new FrameWritable(socket, options);
    const errors: Error[] = [];
    writable.on('error', (err: Error) => errors.push(err));
    cleanups.push(() => writable.destroy());
    return { p, writable, socket, peer, errors };
  }

  describe('bytes on the wire', () => {
    it('server role: unmasked frames, byte for byte (RFC 6455 section 5.7 examples and length forms)', async () => {
      const { writable, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      const b256 = Buffer.alloc(256, 0x5a);
      const b2000 = patterned(1, 2000);
      const b65536 = patterned(2, 65536);
      writable.write(textFrame('Hello'));
      writable.write(textFrame('Hel', false));
      writable.write(continuationFrame('lo'));
      writable.write(pingFrame('Hello'));
      writable.write(binaryFrame(b256));
      writable.write(binaryFrame(b2000));
      writable.write(binaryFrame(b65536));
      writable.write(closeFrame(1000, 'bye'));
      writable.end();
      await once(writable, 'finish');
      const bytes = await received.done;
      const expected = Buffer.concat([
        Buffer.from([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
        Buffer.from([0x01, 0x03, 0x48, 0x65, 0x6c]),
        Buffer.from([0x80, 0x02, 0x6c, 0x6f]),
        Buffer.from([0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
        Buffer.from([0x82, 0x7e, 0x01, 0x00]),
        b256,
        Buffer.from([0x82, 0x7e, 0x07, 0xd0]),
        b2000,
        Buffer.from([0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
        b65536,
        Buffer.from([0x88, 0x05, 0x03, 0xe8, 0x62, 0x79, 0x65]),
      ]);
      expect(bytes.length).to.equal(expected.length);
      expect(bytes.equals(expected)).to.equal(true);
    });

    it('client role: masked frames with the injected key, byte for byte; the payload is not modified', async () => {
      const keys = [KEY, Buffer.from([1, 2, 3, 4]), Buffer.from([0xff, 0, 0xff, 0]), Buffer.from([9, 8, 7, 6])];
      let n = 0;
      const generateMask = sinon.spy((key: Buffer) => {
        keys[n++ % keys.length]!.copy(key);
      });
      const { writable, peer } = await writer({ role: 'client', generateMask });
      const received = sink(peer);
      const hello = Buffer.from('Hello');
      const big = patterned(3, 2000);
      const copies = [Buffer.from(hello), Buffer.from(big)];
      writable.write(textFrame(hello));
      writable.write(pongFrame(hello));
      writable.write(binaryFrame(big));
      writable.write(closeFrame(1001));
      writable.end();
      // The server closes TCP first: play that part.
      await waitFor(() => received.bytes().length === 11 + 11 + 8 + 2000 + 8);
      peer.end();
      await once(writable, 'finish');
      const bytes = await received.done;
      const expected = Buffer.concat([
        Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]),
        Buffer.from([0x8a, 0x85, 1, 2, 3, 4]),
        xor(hello, keys[1]!),
        Buffer.from([0x82, 0xfe, 0x07, 0xd0, 0xff, 0, 0xff, 0]),
        xor(big, keys[2]!),
        Buffer.from([0x88, 0x82, 9, 8, 7, 6]),
        xor(Buffer.from([0x03, 0xe9]), keys[3]!),
      ]);
      expect(bytes.equals(expected)).to.equal(true);
      expect(generateMask.callCount).to.equal(4);
      expect(hello.equals(copies[0]!)).to.equal(true);
      expect(big.equals(copies[1]!)).to.equal(true);
    });
  });

  describe('payloads handed over with transferPayload()', () => {
    it('client role: a large transferred payload is masked in place; the others are left alone', async () => {
      const { writable, peer } = await writer({ role: 'client', generateMask: fixedKey });
      const received = sink(peer);
      const size = MASK_IN_PLACE_MIN + 5;
      const given = patterned(4, size);
      const kept = patterned(5, size);
      const small = patterned(6, 100);
      const copies = [Buffer.from(given), Buffer.from(kept), Buffer.from(small)];
      writable.write(transferPayload(binaryFrame(given)));
      writable.write(binaryFrame(kept));
      writable.write(transferPayload(binaryFrame(small)));
      const header = Buffer.from([0x82, 0xfe, size >> 8, size & 0xff, ...KEY]);
      const total = 2 * (8 + size) + 6 + 100;
      await waitFor(() => received.bytes().length === total);
      expect(received.bytes().equals(Buffer.concat([
        header, xor(copies[0]!, KEY), header, xor(copies[1]!, KEY), Buffer.from([0x82, 0xe4, ...KEY]), xor(copies[2]!, KEY),
      ]))).to.equal(true);
      // The transferred one was the writer's to mask: it holds the masked bytes now.
      expect(given.equals(xor(copies[0]!, KEY))).to.equal(true);
      expect(kept.equals(copies[1]!)).to.equal(true);
      expect(small.equals(copies[2]!)).to.equal(true);
    });

    it('server role: a transferred payload is written as it is, never modified', async () => {
      const { writable, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      const payload = patterned(7, MASK_IN_PLACE_MIN * 2);
      const copy = Buffer.from(payload);
      writable.write(transferPayload(binaryFrame(payload)));
      await waitFor(() => received.bytes().length === 4 + payload.length);
      expect(payload.equals(copy)).to.equal(true);
      expect(received.bytes().subarray(4).equals(copy)).to.equal(true);
    });
  });

  describe('large masked payloads the caller keeps (masked through scratch pieces)', () => {
    const SIZES = [MASK_IN_PLACE_MIN, MASK_PIECE_SIZE - 14, MASK_PIECE_SIZE - 13, MASK_PIECE_SIZE * 4 + 1, 1024 * 1024 + 3];

    /** The wire form of a binary frame masked with KEY, by the naive XOR of this spec. */
    function expectedWire(payload: Buffer, fin = true): Buffer {
      return Buffer.concat([Buffer.from([fin ? 0x82 : 0x02]), lengthBytes(payload.length), KEY, xor(payload, KEY)]);
    }
    function lengthBytes(n: number): Buffer {
      if (n < 126) return Buffer.from([0x80 | n]);
      if (n < 0x10000) return Buffer.from([0x80 | 126, n >> 8, n & 0xff]);
      const out = Buffer.alloc(9);
      out[0] = 0x80 | 127;
      out.writeUInt32BE(n >>> 0, 5);
      return out;
    }

    it('a payload held by user code is byte-identical after it was written masked, and the wire is right (net.Socket, reused pieces)', async function () {
      this.timeout(20000);
      const { writable, peer } = await writer({ role: 'client', generateMask: fixedKey });
      const received = sink(peer);
      const payloads = SIZES.map((size, i) => patterned(10 + i, size));
      const copies = payloads.map((payload) => Buffer.from(payload));
      const answers: boolean[] = [];
      for (const payload of payloads) {
        answers.push(writable.write(binaryFrame(payload)));
        // Control frames queued behind a large frame follow it, never inside it.
        writable.write(pingFrame('p'));
      }
      const expected = Buffer.concat(payloads.flatMap((payload) => [expectedWire(payload), Buffer.from([0x89, 0x81, ...KEY]), xor(Buffer.from('p'), KEY)]));
      await waitFor(() => received.bytes().length >= expected.length);
      expect(received.bytes().equals(expected)).to.equal(true);
      payloads.forEach((payload, i) => expect(payload.equals(copies[i]!), `payload ${i}`).to.equal(true));
      // A frame still being masked in pieces holds the next ones back: write() said so.
      expect(answers.at(-1)).to.equal(false);
    });

    it('writes the same bytes on a Duplex that is not a net.Socket (fresh pieces), payloads untouched', async () => {
      const chunks: Buffer[] = [];
      const duplex = new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, callback) {
          chunks.push(chunk);
          callback();
        },
      });
      const writable = new FrameWritable(duplex as unknown as net.Socket, { role: 'client', generateMask: fixedKey });
      cleanups.push(() => writable.destroy());
      const payloads = SIZES.map((size, i) => patterned(20 + i, size));
      const copies = payloads.map((payload) => Buffer.from(payload));
      for (const payload of payloads) {
        writable.write(binaryFrame(payload, false));
        writable.write(continuationFrame(Buffer.alloc(0)));
      }
      const expected = Buffer.concat(payloads.flatMap((payload) => [expectedWire(payload, false), Buffer.from([0x80, 0x80, ...KEY])]));
      await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) >= expected.length);
      // The chunks were kept by the Duplex after their callbacks: none was reused under it.
      expect(Buffer.concat(chunks).equals(expected)).to.equal(true);
      payloads.forEach((payload, i) => expect(payload.equals(copies[i]!), `payload ${i}`).to.equal(true));
    });

    it('backpressure: a masked 16 MiB frame to a peer that does not read holds at most 4 pieces, then completes intact', async function () {
      this.timeout(20000);
      const { writable, socket, peer } = await writer({ role: 'client', generateMask: fixedKey });
      peer.pause();
      const payload = patterned(30, 16 * 1024 * 1024);
      const copy = Buffer.from(payload);
      let done = false;
      expect(writable.write(binaryFrame(payload), () => {
        done = true;
      })).to.equal(false);
      // Whatever the kernel's buffers take, what waits in the process is a few pieces, never a
      // masked copy of the frame (the writer used to hand the socket one of 16 MiB).
      let most = 0;
      for (let i = 0; i < 10; i++) {
        await settle(10, 5);
        most = Math.max(most, socket.writableLength);
      }
      expect(most).to.be.at.most(4 * MASK_PIECE_SIZE);
      const received = sink(peer);
      peer.resume();
      await waitFor(() => done && received.bytes().length === 14 + payload.length);
      expect(received.bytes().equals(expectedWire(copy))).to.equal(true);
      expect(payload.equals(copy)).to.equal(true);
    });
  });

  describe('frames written in pieces (Frame.partial)', () => {
    /** Cuts `payload` into random pieces of `type`, each a Frame with `partial` set. */
    function pieces(rng: SeededRandom, type: 'binary' | 'continuation', payload: Buffer, fin: boolean): Frame[] {
      const out: Frame[] = [];
      let offset = 0;
      do {
        const n = Math.min(payload.length - offset, rng.int(1, 5000));
        out.push({ type, fin, rsv1: false, payload: payload.subarray(offset, offset + n), partial: { offset, length: payload.length } });
        offset += n;
      } while (offset < payload.length);
      return out;
    }

    for (const seed of [3, 31, 314]) {
      for (const role of ['client', 'server'] as const) {
        it(`puts the same bytes on the wire as the whole frames, pings between frames (seed ${seed}, ${role} role)`, async () => {
          const rng = new SeededRandom(seed);
          const { writable, peer } = await writer({ role, generateMask: fixedKey });
          const received = sink(peer);
          const expected: Buffer[] = [];
          const key = role === 'client' ? KEY : undefined;
          for (let i = 0; i < 6; i++) {
            const payload = patterned(i, rng.int(1, 40000));
            const first = rng.chance(0.5);
            // A fragmented message: its first fragment in pieces, a ping, then its last fragment in pieces.
            const cut = first ? payload.length : rng.int(1, payload.length);
            const head = payload.subarray(0, cut);
            for (const piece of pieces(rng, 'binary', head, first)) writable.write(piece);
            expected.push(Buffer.concat(encodeFrame(binaryFrame(head, first), key)));
            writable.write(pingFrame('between'));
            expected.push(Buffer.concat(encodeFrame(pingFrame('between'), key)));
            if (!first) {
              const rest = payload.subarray(cut);
              if (rest.length > 0) for (const piece of pieces(rng, 'continuation', rest, true)) writable.write(piece);
              else writable.write(continuationFrame(rest));
              expected.push(Buffer.concat(encodeFrame(continuationFrame(rest), key)));
            }
          }
          const total = Buffer.concat(expected);
          await waitFor(() => received.bytes().length >= total.length);
          expect(received.bytes().equals(total)).to.equal(true);
        });
      }
    }

    it('masks a piece handed over with transferPayload in place, and copies the others', async () => {
      const { writable, peer } = await writer({ role: 'client', generateMask: fixedKey });
      const received = sink(peer);
      const a = patterned(8, 10);
      const b = patterned(9, 7);
      const copies = [Buffer.from(a), Buffer.from(b)];
      writable.write(transferPayload({ type: 'binary', fin: true, rsv1: false, payload: a, partial: { offset: 0, length: 17 } }));
      writable.write({ type: 'binary', fin: true, rsv1: false, payload: b, partial: { offset: 10, length: 17 } });
      await waitFor(() => received.bytes().length === 6 + 17);
      const both = Buffer.concat(copies);
      expect(received.bytes().equals(Buffer.concat([Buffer.from([0x82, 0x91, ...KEY]), xor(both, KEY)]))).to.equal(true);
      // Key byte i % 4 for payload byte i: the second piece starts at key byte 2.
      expect(a.equals(xor(copies[0]!, KEY))).to.equal(true);
      expect(b.equals(copies[1]!)).to.equal(true);
    });

    it('refuses a frame inside a frame written in pieces, and pieces out of order, with WSP_ERR_INVALID_FRAME', async () => {
      const { writable } = await writer({ role: 'server' });
      const piece = (offset: number, n: number): Frame => ({ type: 'binary', fin: true, rsv1: false, payload: Buffer.alloc(n), partial: { offset, length: 10 } });
      expect(await write(writable, piece(0, 4))).to.equal(undefined);
      const inside = await write(writable, pingFrame('x'));
      expectCoded(inside, 'WSP_ERR_INVALID_FRAME', 1011);
      const { writable: other } = await writer({ role: 'server' });
      expect(await write(other, piece(0, 4))).to.equal(undefined);
      expectCoded(await write(other, piece(5, 2)), 'WSP_ERR_INVALID_FRAME', 1011);
      const { writable: third } = await writer({ role: 'server' });
      expectCoded(await write(third, piece(3, 2)), 'WSP_ERR_INVALID_FRAME', 1011);
    });
  });

  describe('sender rules', () => {
    const CLOSE_1000 = [0x88, 0x02, 0x03, 0xe8];

    async function endAndCollect(socket: net.Socket, received: { done: Promise<Buffer> }): Promise<Buffer> {
      socket.end();
      return received.done;
    }

    for (const frame of [textFrame('late'), binaryFrame(Buffer.from([1])), continuationFrame('x')]) {
      it(`a ${frame.type} frame after a close frame: WSP_ERR_WRITE_AFTER_CLOSE (1011), nothing written`, async () => {
        const { writable, socket, peer, errors } = await writer({ role: 'server' });
        const received = sink(peer);
        expect(await write(writable, closeFrame(1000))).to.equal(undefined);
        expect(writable.closeFrameSent).to.equal(true);
        const err = await write(writable, frame);
        expectCoded(err, 'WSP_ERR_WRITE_AFTER_CLOSE', 1011);
        await waitFor(() => errors.length > 0);
        expect(errors).to.deep.equal([err]);
        expect([...(await endAndCollect(socket, received))]).to.deep.equal(CLOSE_1000);
      });
    }

    it('a second close frame: WSP_ERR_WRITE_AFTER_CLOSE (1011), nothing written', async () => {
      const { writable, socket, peer, errors } = await writer({ role: 'server' });
      const received = sink(peer);
      expect(await write(writable, closeFrame(1000))).to.equal(undefined);
      const err = await write(writable, closeFrame(1001, 'again'));
      expectCoded(err, 'WSP_ERR_WRITE_AFTER_CLOSE', 1011);
      await waitFor(() => errors.length > 0);
      expect([...(await endAndCollect(socket, received))]).to.deep.equal(CLOSE_1000);
    });

    it('ping and pong after a close frame are written', async () => {
      const { writable, peer, errors } = await writer({ role: 'server' });
      const received = sink(peer);
      writable.write(closeFrame(1000));
      writable.write(pingFrame('p'));
      writable.end(pongFrame('q'));
      await once(writable, 'finish');
      expect(errors).to.deep.equal([]);
      expect([...(await received.done)]).to.deep.equal([...CLOSE_1000, 0x89, 0x01, 0x70, 0x8a, 0x01, 0x71]);
    });

    it('a ping payload of 126 bytes: WSP_ERR_INVALID_FRAME (1011), nothing written', async () => {
      const { writable, socket, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      expectCoded(await write(writable, pingFrame(Buffer.alloc(126))), 'WSP_ERR_INVALID_FRAME', 1011);
      expect((await endAndCollect(socket, received)).length).to.equal(0);
    });

    it('a close code of 1005: WSP_ERR_INVALID_FRAME (1011), nothing written, no close sent', async () => {
      const { writable, socket, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      expectCoded(await write(writable, closeFrame(1005)), 'WSP_ERR_INVALID_FRAME', 1011);
      expect(writable.closeFrameSent).to.equal(false);
      expect((await endAndCollect(socket, received)).length).to.equal(0);
    });

    it('a 200-byte close reason of multi-byte characters is cut at a character boundary to fit 125 bytes', async () => {
      const { writable, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      const reason = 'a' + '€'.repeat(66) + 'é'; // 1 + 198 + 2 = 201 bytes
      expect(Buffer.byteLength(reason)).to.equal(201);
      writable.end(closeFrame(1000, reason));
      await once(writable, 'finish');
      const bytes = await received.done;
      // 'a' then 40 euro signs: 121 bytes; a 41st would need bytes 122-124.
      const cut = Buffer.from('a' + '€'.repeat(40));
      expect(cut.length).to.equal(121);
      expect(bytes.equals(Buffer.concat([Buffer.from([0x88, 123, 0x03, 0xe8]), cut]))).to.equal(true);
    });

    it('a close reason of 4-byte characters is cut to whole characters', async () => {
      const { writable, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      writable.end(closeFrame(4000, '😀'.repeat(50)));
      await once(writable, 'finish');
      const bytes = await received.done;
      expect(bytes.equals(Buffer.concat([Buffer.from([0x88, 122, 0x0f, 0xa0]), Buffer.from('😀'.repeat(30))]))).to.equal(true);
    });

    it('a continuation frame without an open message: WSP_ERR_INVALID_FRAME (1011), nothing written', async () => {
      const { writable, socket, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      expectCoded(await write(writable, continuationFrame('x')), 'WSP_ERR_INVALID_FRAME', 1011);
      expect((await endAndCollect(socket, received)).length).to.equal(0);
    });

    it('a text frame inside an open message: WSP_ERR_INVALID_FRAME (1011), nothing written', async () => {
      const { writable, socket, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      expect(await write(writable, binaryFrame('ab', false))).to.equal(undefined);
      expect(await write(writable, pingFrame())).to.equal(undefined);
      expectCoded(await write(writable, textFrame('new')), 'WSP_ERR_INVALID_FRAME', 1011);
      expect([...(await endAndCollect(socket, received))]).to.deep.equal([0x02, 0x02, 0x61, 0x62, 0x89, 0x00]);
    });

    it('RSV1 without allowRsv1: WSP_ERR_INVALID_FRAME (1011), nothing written', async () => {
      const { writable, socket, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      expectCoded(await write(writable, { ...textFrame('x'), rsv1: true }), 'WSP_ERR_INVALID_FRAME', 1011);
      expect((await endAndCollect(socket, received)).length).to.equal(0);
    });
  });

  describe('backpressure', () => {
    const MIB = 1024 * 1024;
    const WIRE_1MIB = 10 + MIB;

    /**
     * Writes 1 MiB frames while the peer does not read, obeying write()'s return value, until a
     * false is not followed by 'drain'. Returns how many frames were written.
     */
    async function fillUntilStuck(
      writable: FrameWritable,
      socket: net.Socket,
      onCallback: (index: number, bytesWritten: number) => void,
    ): Promise<number> {
      let drains = 0;
      writable.on('drain', () => drains++);
      for (let i = 0; i < 64; i++) {
        const ret = writable.write(binaryFrame(patterned(i, MIB)), () => onCallback(i, socket.bytesWritten));
        // A 1 MiB frame always fills a socket buffer of 16 KiB.
        expect(ret, `write ${i}`).to.equal(false);
        expect(socket.writableLength).to.be.at.least(socket.writableHighWaterMark);
        const before = drains;
        await settle(30);
        if (drains === before) return i + 1;
      }
      throw new Error('the socket never stopped draining');
    }

    it('write() returns false while the socket is full, and drain comes once the peer reads', async function () {
      this.timeout(20000);
      const { writable, socket, peer } = await writer({ role: 'server' });
      peer.pause();
      const handed: number[] = [];
      const late: string[] = [];
      const written = await fillUntilStuck(writable, socket, (i, bytesWritten) => {
        handed.push(i);
        // The callback fires once the frame's bytes are in the socket (sent or buffered there).
        if (bytesWritten < (i + 1) * WIRE_1MIB) late.push(`frame ${i}: ${bytesWritten}`);
      });
      expect(written).to.be.below(64);
      expect(handed).to.have.length(written);
      // One more write waits: its callback does not fire while the socket is full.
      let waitingDone = false;
      const ret = writable.write(binaryFrame(patterned(written, MIB)), (err) => {
        waitingDone = err === undefined || err === null;
        handed.push(written);
        if (socket.bytesWritten < (written + 1) * WIRE_1MIB) late.push(`frame ${written}: ${socket.bytesWritten}`);
      });
      expect(ret).to.equal(false);
      const bytesBefore = socket.bytesWritten;
      await settle(30);
      expect(waitingDone).to.equal(false);
      expect(socket.bytesWritten).to.equal(bytesBefore);

      let received = 0;
      peer.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      const drain = once(writable, 'drain');
      peer.resume();
      await drain;
      expect(waitingDone).to.equal(true);
      expect(late).to.deep.equal([]);
      writable.end();
      await once(peer, 'end');
      expect(received).to.equal((written + 1) * WIRE_1MIB);
    });

    it('a pipeline into a FrameWritable slows down while the peer does not read, then completes', async function () {
      this.timeout(20000);
      const FRAME = 64 * 1024;
      const WIRE = 10 + FRAME;
      const COUNT = 512;
      const p = await pair();
      let pulled = 0;
      function* frames(): Generator<Frame> {
        for (let i = 0; i < COUNT; i++) {
          pulled++;
          yield binaryFrame(patterned(i, FRAME));
        }
      }
      const writable = new FrameWritable(p.server, { role: 'server' });
      cleanups.push(() => writable.destroy());
      const reader = new FrameReadable(p.client, { role: 'client' });
      cleanups.push(() => reader.destroy());
      const piped = pipeInto(Readable.from(frames()), writable);
      // Wait until the pipeline stops pulling frames.
      for (;;) {
        const before = pulled;
        await settle(30);
        if (pulled === before) break;
      }
      const dispatched = Math.floor((p.server.bytesWritten - p.server.writableLength) / WIRE);
      expect(pulled).to.be.below(COUNT);
      // Frames pulled but not yet handed to the kernel: the source's and this stream's queues, the
      // waiting write, and what sits in the socket's own buffer.
      expect(pulled - dispatched).to.be.at.most(1 + 16 + 1 + 2);
      expect(writable.writableLength).to.be.at.most(16);

      let next = 0;
      let bad = 0;
      reader.on('data', (frame: Frame) => {
        if (frame.payload.length !== FRAME || frame.payload.readUInt32BE(0) !== next) bad++;
        next++;
      });
      expect(await piped).to.equal(undefined);
      await once(reader, 'end');
      expect(bad).to.equal(0);
      expect(next).to.equal(COUNT);
      expect(pulled).to.equal(COUNT);
    });
  });

  describe('end()', () => {
    it('without a close frame, ends the socket: the peer sees end', async () => {
      const { writable, peer } = await writer({ role: 'client', generateMask: fixedKey });
      const received = sink(peer);
      writable.end(textFrame('Hello'));
      await once(writable, 'finish');
      expect([...(await received.done)]).to.deep.equal([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    });

    it('server role after a close frame: ends the socket at once', async () => {
      const { writable, socket, peer } = await writer({ role: 'server' });
      const received = sink(peer);
      writable.write(closeFrame(1000));
      writable.end();
      await once(writable, 'finish');
      expect(socket.writableEnded).to.equal(true);
      expect([...(await received.done)]).to.deep.equal([0x88, 0x02, 0x03, 0xe8]);
    });

    it('client role after a close frame: waits for the server\'s FIN, then finishes and ends its side', async () => {
      const { writable, socket, peer } = await writer({ role: 'client', generateMask: fixedKey });
      // The connection's reader keeps the socket flowing, as in a proxy.
      const reader = new FrameReadable(socket, { role: 'client' });
      cleanups.push(() => reader.destroy());
      reader.resume();
      const received = sink(peer);
      let finished = false;
      writable.on('finish', () => {
        finished = true;
      });
      writable.write(closeFrame(1000));
      writable.end();
      await waitFor(() => received.bytes().length === 8);
      await settle();
      expect(finished).to.equal(false);
      expect(socket.writableEnded).to.equal(false);
      expect(peer.readableEnded).to.equal(false);
      peer.end();
      await once(writable, 'finish');
      expect(socket.writableEnded).to.equal(true);
      expect(socket.destroyed).to.equal(false);
      const bytes = await received.done;
      expect(bytes.equals(Buffer.concat([Buffer.from([0x88, 0x82, ...KEY]), xor(Buffer.from([0x03, 0xe8]), KEY)]))).to.equal(
        true,
      );
    });

    for (const closeTimeout of [undefined, 100]) {
      const wait = closeTimeout ?? 5000;
      it(`client role after a close frame: the socket is destroyed after ${wait} ms without a FIN`, async () => {
        const { writable, socket, peer } = await writer({ role: 'client', generateMask: fixedKey, closeTimeout });
        const received = sink(peer);
        clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        let finished = false;
        writable.on('finish', () => {
          finished = true;
        });
        writable.write(closeFrame(1000));
        writable.end();
        const fake = clock;
        await waitFor(() => fake.countTimers() === 1);
        fake.tick(wait - 1);
        await settle(0);
        expect(socket.destroyed).to.equal(false);
        expect(finished).to.equal(false);
        fake.tick(1);
        expect(socket.destroyed).to.equal(true);
        await waitFor(() => finished);
        expect(fake.countTimers()).to.equal(0);
        expect((await received.done).length).to.equal(8);
      });
    }

    it('a socket closed under a waiting write: that write fails with WSP_ERR_SOCKET_CLOSED (1006)', async () => {
      const { writable, socket, peer, errors } = await writer({ role: 'server' });
      peer.pause();
      let i = 0;
      for (;;) {
        const ret = writable.write(binaryFrame(Buffer.alloc(1024 * 1024, i)));
        i++;
        if (!ret) {
          const drained = once(writable, 'drain').then(() => true);
          const stuck = settle(30).then(() => false);
          if (!(await Promise.race([drained, stuck]))) break;
        }
        if (i > 64) throw new Error('the socket never stopped draining');
      }
      const result = write(writable, textFrame('waiting'));
      await settle(0);
      socket.destroy();
      expectCoded(await result, 'WSP_ERR_SOCKET_CLOSED', 1006);
      await waitFor(() => errors.length > 0);
      expectCoded(errors[0], 'WSP_ERR_SOCKET_CLOSED', 1006);
    });

    for (const how of ['destroyed locally', 'reset by the peer'] as const) {
      it(`a socket ${how} while a pipeline waits for 'drain': the pipeline fails with WSP_ERR_SOCKET_CLOSED (1006)`, async () => {
        const { p, writable, socket, peer } = await writer({ role: 'server' });
        peer.pause();
        let pulled = 0;
        const source = Readable.from(
          (function* frames(): Generator<Frame> {
            for (let i = 0; i < 1000; i++) {
              pulled++;
              yield binaryFrame(patterned(i, 1024 * 1024));
            }
          })(),
        );
        const piped = pipeInto(source, writable);
        for (;;) {
          const before = pulled;
          await settle(30);
          if (pulled === before) break;
        }
        // Stalled on backpressure with no write in progress: only a 'drain' would move it on.
        expect(writable.writableLength).to.equal(0);
        expect(pulled).to.be.below(1000);
        if (how === 'destroyed locally') socket.destroy();
        else p.client.resetAndDestroy();
        const err = await piped;
        expectCoded(err, 'WSP_ERR_SOCKET_CLOSED', 1006);
        expect(source.destroyed).to.equal(true);
        expect(writable.destroyed).to.equal(true);
      });
    }

    it('a write on a socket that is already closed fails with WSP_ERR_SOCKET_CLOSED (1006)', async () => {
      const { writable, socket } = await writer({ role: 'server' });
      socket.destroy();
      await once(socket, 'close');
      expectCoded(await write(writable, textFrame('late')), 'WSP_ERR_SOCKET_CLOSED', 1006);
    });
  });

  describe('interop with ws', () => {
    it('a client-role FrameWritable talks to a ws WebSocketServer: messages, ping/pong, close', async function () {
      this.timeout(20000);
      const srv = await wsServer();
      cleanups.push(() => srv.close());
      const connected = once(srv.wss, 'connection') as Promise<[WebSocket]>;
      const { socket, head } = await rawUpgradeClient(srv.port);
      cleanups.push(() => socket.destroy());
      const [ws] = await connected;
      const messages: { data: Buffer; isBinary: boolean }[] = [];
      ws.on('message', (data: RawData, isBinary: boolean) => messages.push({ data: data as Buffer, isBinary }));
      const wsClosed = once(ws, 'close') as Promise<[number, Buffer]>;

      const writable = new FrameWritable(socket, { role: 'client' });
      const reader = new FrameReadable(socket, { role: 'client', head });
      cleanups.push(() => writable.destroy(), () => reader.destroy());
      const frames: Frame[] = [];
      reader.on('data', (frame: Frame) => frames.push(frame));
      const readerEnded = once(reader, 'end');

      const b70000 = patterned(7, 70000);
      const b1mib = patterned(8, 1024 * 1024);
      writable.write(textFrame('hello'));
      writable.write(binaryFrame(Buffer.from([0, 1, 2, 255])));
      writable.write(binaryFrame(b70000));
      writable.write(binaryFrame(b1mib));
      writable.write(textFrame(Buffer.from('frag-\xe2', 'latin1'), false));
      writable.write(continuationFrame(Buffer.from('\x82\xac', 'latin1'), false));
      writable.write(continuationFrame('-end'));
      writable.write(pingFrame('are you there'));
      await waitFor(() => frames.length === 1);
      expect(frames.map(view)).to.deep.equal([view(pongFrame('are you there'))]);
      expect(messages.map((m) => [m.isBinary, m.data.toString('hex')])).to.deep.equal([
        [false, Buffer.from('hello').toString('hex')],
        [true, '000102ff'],
        [true, b70000.toString('hex')],
        [true, b1mib.toString('hex')],
        [false, Buffer.from('frag-€-end').toString('hex')],
      ]);

      writable.end(closeFrame(4002, 'done here'));
      await once(writable, 'finish');
      await readerEnded;
      expect(frames.map(view)).to.deep.equal([view(pongFrame('are you there')), view(closeFrame(4002, 'done here'))]);
      const [code, reason] = await wsClosed;
      expect(code).to.equal(4002);
      expect(reason.toString()).to.equal('done here');
    });

    it('a server-role FrameWritable talks to a ws client: messages intact, close code and reason seen', async () => {
      const server = await rawUpgradeServer();
      cleanups.push(() => server.close());
      const client = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false });
      cleanups.push(() => client.terminate());
      const messages: { data: Buffer; isBinary: boolean }[] = [];
      client.on('message', (data: RawData, isBinary: boolean) => messages.push({ data: data as Buffer, isBinary }));
      const pings: Buffer[] = [];
      client.on('ping', (data: Buffer) => pings.push(data));
      const clientClosed = once(client, 'close') as Promise<[number, Buffer]>;
      const [{ socket, head }] = await Promise.all([server.accept(), once(client, 'open')]);
      const writable = new FrameWritable(socket, { role: 'server' });
      const reader = new FrameReadable(socket, { role: 'server', head });
      cleanups.push(() => writable.destroy(), () => reader.destroy());
      const frames: Frame[] = [];
      reader.on('data', (frame: Frame) => frames.push(frame));

      const b70000 = patterned(9, 70000);
      writable.write(textFrame('héllo'));
      writable.write(binaryFrame(b70000));
      writable.write(binaryFrame('ab', false));
      writable.write(pingFrame('inside'));
      writable.write(continuationFrame('cd'));
      writable.end(closeFrame(4001, 'bye'));
      const [code, reason] = await clientClosed;
      expect(code).to.equal(4001);
      expect(reason.toString()).to.equal('bye');
      expect(messages.map((m) => [m.isBinary, m.data.toString('hex')])).to.deep.equal([
        [false, Buffer.from('héllo').toString('hex')],
        [true, b70000.toString('hex')],
        [true, Buffer.from('abcd').toString('hex')],
      ]);
      expect(pings.map((b) => b.toString())).to.deep.equal(['inside']);
      // The ws client answered the ping and echoed the close.
      expect(frames.map(view)).to.deep.equal([view(pongFrame('inside')), view(closeFrame(4001, 'bye'))]);
    });
  });

  describe('seeded end to end through a re-chunking relay', () => {
    for (const seed of [0xc0ffee01, 0xc0ffee02, 0xc0ffee03]) {
      it(`client-role writer -> relay -> server-role reader: same frames (seed ${seed})`, async () => {
        const random = new SeededRandom(seed);
        const frames = randomFrames(random, 40);
        const p = await relayedPair(random, 32);
        cleanups.push(() => p.close());
        const writable = new FrameWritable(p.client, { role: 'client' });
        const reader = new FrameReadable(p.server, { role: 'server' });
        cleanups.push(() => writable.destroy(), () => reader.destroy());
        const got: Frame[] = [];
        const errors: Error[] = [];
        reader.on('data', (frame: Frame) => got.push(frame));
        reader.on('error', (err: Error) => errors.push(err));
        const ended = once(reader, 'end');
        const piped = pipeInto(Readable.from(frames), writable);
        await ended;
        expect(errors).to.deep.equal([]);
        expect(got.map(view)).to.deep.equal(frames.map(view));
        // The client waits for the server's FIN after its close frame: the server side closes.
        p.server.end();
        expect(await piped).to.equal(undefined);
      });
    }
  });

  describe('construction', () => {
    it('rejects a missing or invalid role with a TypeError', async () => {
      const p = await pair();
      expect(() => new FrameWritable(p.server, {} as FrameWritableOptions)).to.throw(TypeError, /role/);
      expect(() => new FrameWritable(p.server, { role: 'both' } as unknown as FrameWritableOptions)).to.throw(
        TypeError,
        /role/,
      );
      expect(() => new FrameWritable(p.server, undefined as unknown as FrameWritableOptions)).to.throw(TypeError, /role/);
      expect(p.server.listenerCount('drain')).to.equal(0);
    });

    it('rejects highWaterMark of 0, -1, 1.5, NaN with a TypeError', async () => {
      const p = await pair();
      for (const highWaterMark of [0, -1, 1.5, Number.NaN]) {
        expect(() => new FrameWritable(p.server, { role: 'server', highWaterMark }), `${highWaterMark}`).to.throw(
          TypeError,
          /highWaterMark/,
        );
      }
    });

    it('rejects closeTimeout of -1, NaN, Infinity and a generateMask that is not a function', async () => {
      const p = await pair();
      for (const closeTimeout of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(() => new FrameWritable(p.server, { role: 'client', closeTimeout }), `${closeTimeout}`).to.throw(
          TypeError,
          /closeTimeout/,
        );
      }
      expect(
        () => new FrameWritable(p.server, { role: 'client', generateMask: 'fixed' as unknown as () => void }),
      ).to.throw(TypeError, /generateMask/);
      expect(p.server.listenerCount('drain')).to.equal(0);
    });
  });
});
