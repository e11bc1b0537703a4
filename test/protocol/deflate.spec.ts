import { expect } from 'chai';
import { once } from 'node:events';
import http from 'node:http';
import zlib from 'node:zlib';
import sinon from 'sinon';
import { WebSocket, WebSocketServer } from 'ws';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame, closeFrame } from '../../src/frame.js';
import { acceptClient } from '../../src/handshake/client.js';
import { connectUpstream } from '../../src/handshake/upstream.js';
import {
  DEFLATE_DEFAULTS,
  type DeflateParameters,
  MessageDeflater,
  MessageInflater,
  type ResolvedDeflateSettings,
  identicalParameters,
  passThroughDirections,
  resolvePerMessageDeflate,
  zlibMemory,
} from '../../src/protocol/deflate.js';
import { type WsPerMessageDeflate, wsDeflate } from '../../src/protocol/ws-deflate.js';
import { FrameReadable } from '../../src/streams/frame-readable.js';
import { FrameWritable } from '../../src/streams/frame-writable.js';
import { closeServer, listen, rejectionOf, trackSockets } from '../handshake/helpers.js';

const KIB = 1024;
const MIB = 1024 * 1024;

function params(overrides: Partial<DeflateParameters> = {}): DeflateParameters {
  return {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
    ...overrides,
  };
}

function settings(overrides: Record<string, unknown> = {}): ResolvedDeflateSettings {
  return resolvePerMessageDeflate(overrides) as ResolvedDeflateSettings;
}

/** A pair for the client-to-server direction of one hop: our client compresses, our server inflates. */
function pair(parameters: DeflateParameters, maxMessageSize?: number) {
  return {
    deflater: new MessageDeflater({ parameters, role: 'client' }),
    inflater: new MessageInflater({ parameters, role: 'server', ...(maxMessageSize === undefined ? {} : { maxMessageSize }) }),
  };
}

/** 3000 pseudo-random letters, the same for every message: compresses little alone, to almost nothing after itself. */
const BASE = (() => {
  let seed = 12345;
  let text = '';
  for (let n = 0; n < 3000; n++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    text += String.fromCharCode(97 + (seed >> 16) % 26);
  }
  return text;
})();

function message(i: number): Buffer {
  return Buffer.from(`{"round":${i},"text":"${BASE}"}`);
}

function expectCoded(err: Error, code: string, closeCode: number): void {
  expect(err).to.be.instanceOf(WebSocketProxyError);
  expect((err as WebSocketProxyError).code).to.equal(code);
  expect((err as WebSocketProxyError).closeCode).to.equal(closeCode);
}

/** Counts every byte each inflate stream created by ws emits, whatever ws keeps of them. */
function countInflated(): { total(): number; restore(): void } {
  const original = zlib.createInflateRaw;
  let total = 0;
  const stub = sinon.stub(zlib, 'createInflateRaw').callsFake((options?: zlib.ZlibOptions) => {
    const stream = original(options);
    stream.on('data', (chunk: Buffer) => {
      total += chunk.length;
    });
    return stream;
  });
  return { total: () => total, restore: () => stub.restore() };
}

describe('protocol/deflate', () => {
  describe('resolvePerMessageDeflate', () => {
    it('returns false for false, and the defaults for true and undefined', () => {
      expect(resolvePerMessageDeflate(false)).to.equal(false);
      for (const value of [true, undefined, {}]) {
        const resolved = resolvePerMessageDeflate(value) as ResolvedDeflateSettings;
        const { limiter, ...rest } = resolved;
        expect(rest).to.deep.equal(DEFLATE_DEFAULTS);
        expect(limiter.concurrency).to.equal(10);
      }
    });

    it('keeps given settings and shares one limiter per concurrency', () => {
      const a = settings({ serverNoContextTakeover: true, clientMaxWindowBits: 9, memLevel: 8, threshold: 0, concurrencyLimit: 3 });
      const b = settings({ concurrencyLimit: 3 });
      expect(a.serverNoContextTakeover).to.equal(true);
      expect(a.clientMaxWindowBits).to.equal(9);
      expect(a.memLevel).to.equal(8);
      expect(a.threshold).to.equal(0);
      expect(a.limiter).to.equal(b.limiter);
      expect(a.limiter).to.not.equal(settings().limiter);
    });

    const invalid: Array<[unknown, string]> = [
      ['yes', 'options.perMessageDeflate must be a boolean or an object'],
      [null, 'options.perMessageDeflate must be a boolean or an object'],
      [{ serverMaxWindowBits: 7 }, 'options.perMessageDeflate.serverMaxWindowBits must be an integer from 8 to 15'],
      [{ clientMaxWindowBits: 16 }, 'options.perMessageDeflate.clientMaxWindowBits must be an integer from 8 to 15'],
      [{ memLevel: 0 }, 'options.perMessageDeflate.memLevel must be an integer from 1 to 9'],
      [{ threshold: -1 }, 'options.perMessageDeflate.threshold must be an integer from 0'],
      [{ concurrencyLimit: 0.5 }, 'options.perMessageDeflate.concurrencyLimit must be an integer from 1 to 1024'],
      [{ serverNoContextTakeover: 1 }, 'options.perMessageDeflate.serverNoContextTakeover must be a boolean'],
      [{ level: 9 }, 'options.perMessageDeflate.level is not a permessage-deflate setting'],
    ];
    for (const [value, message] of invalid) {
      it(`throws a TypeError for ${JSON.stringify(value)}`, () => {
        expect(() => resolvePerMessageDeflate(value)).to.throw(TypeError, message);
      });
    }
  });

  describe('zlibMemory', () => {
    it('applies zlib\'s formulas: the defaults cost at most 64 KiB per hop when the peer window is bounded', () => {
      expect(zlibMemory(15, 8, 15)).to.equal(128 * KIB + 128 * KIB + 32 * KIB + 7 * KIB);
      const d = DEFLATE_DEFAULTS;
      expect(zlibMemory(d.serverMaxWindowBits, d.memLevel, d.clientMaxWindowBits)).to.equal(43 * KIB);
      expect(zlibMemory(d.clientMaxWindowBits, d.memLevel, d.serverMaxWindowBits)).to.be.at.most(64 * KIB);
      // A client that does not offer client_max_window_bits leaves its window at 15.
      expect(zlibMemory(d.serverMaxWindowBits, d.memLevel, 15)).to.equal(71 * KIB);
    });
  });

  describe('identicalParameters and passThroughDirections', () => {
    it('lets identical parameters pass through both ways', () => {
      const p = params({ serverMaxWindowBits: 12, clientNoContextTakeover: true });
      expect(identicalParameters(p, { ...p })).to.equal(true);
      expect(passThroughDirections(p, { ...p })).to.deep.equal({ clientToUpstream: true, upstreamToClient: true });
    });

    it('needs the sender window to fit the receiver and the sender to reset when the receiver does', () => {
      const clientHop = params({ clientMaxWindowBits: 10, serverMaxWindowBits: 12 });
      // Upstream accepts 15 from us: the client's 10-bit stream fits. It compresses with 13 > 12.
      const upstreamHop = params({ clientMaxWindowBits: 15, serverMaxWindowBits: 13 });
      expect(identicalParameters(clientHop, upstreamHop)).to.equal(false);
      expect(passThroughDirections(clientHop, upstreamHop)).to.deep.equal({ clientToUpstream: true, upstreamToClient: false });
      // The upstream resets its inflater after each message; a client keeping context cannot pass.
      expect(passThroughDirections(params(), params({ clientNoContextTakeover: true })).clientToUpstream).to.equal(false);
      expect(passThroughDirections(params({ clientNoContextTakeover: true }), params()).clientToUpstream).to.equal(true);
      // The client expects server_no_context_takeover; an upstream keeping context cannot pass.
      expect(passThroughDirections(params({ serverNoContextTakeover: true }), params()).upstreamToClient).to.equal(false);
    });
  });

  describe('MessageDeflater and MessageInflater', () => {
    it('round-trips messages with context takeover: later messages compress smaller', async () => {
      const { deflater, inflater } = pair(params());
      const sizes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const compressed = await deflater.deflate(message(i), true);
        sizes.push(compressed.length);
        expect(await inflater.inflate(compressed, true)).to.deep.equal(message(i));
      }
      expect(sizes[1]).to.be.below(sizes[0]! / 2);
      // Without the first message as context, the second cannot be inflated.
      const fresh = new MessageInflater({ parameters: params(), role: 'server' });
      const { deflater: d2 } = pair(params());
      await d2.deflate(message(0), true);
      const second = await d2.deflate(message(1), true);
      expectCoded(await rejectionOf(fresh.inflate(second, true)), 'WSP_ERR_INFLATE_FAILED', 1007);
    });

    it('round-trips messages without context takeover: each message stands alone', async () => {
      const p = params({ clientNoContextTakeover: true });
      const { deflater, inflater } = pair(p);
      const first = await deflater.deflate(message(1), true);
      const second = await deflater.deflate(message(1), true);
      expect(second).to.deep.equal(first);
      expect(await inflater.inflate(first, true)).to.deep.equal(message(1));
      expect(await inflater.inflate(second, true)).to.deep.equal(message(1));
      // A fresh inflater reads the second message alone.
      const fresh = new MessageInflater({ parameters: p, role: 'server' });
      expect(await fresh.inflate(second, true)).to.deep.equal(message(1));
    });

    it('compresses with our role\'s window, bounded by the settings even where the peer allows 15', async () => {
      const stub = sinon.spy(zlib, 'createDeflateRaw');
      try {
        const deflater = new MessageDeflater({ parameters: params(), role: 'client', settings: settings({ clientMaxWindowBits: 10, memLevel: 4 }) });
        await deflater.deflate(message(0), true);
        expect(stub.firstCall.args[0]).to.include({ windowBits: 10, memLevel: 4 });
      } finally {
        stub.restore();
      }
    });

    it('inflates a message deflated in fragments, and fragments given as several chunks', async () => {
      const { deflater, inflater } = pair(params());
      const whole = message(3);
      const parts = [whole.subarray(0, 500), whole.subarray(500, 1500), whole.subarray(1500)];
      const compressed: Buffer[] = [];
      for (let i = 0; i < parts.length; i++) compressed.push(await deflater.deflate(parts[i]!, i === parts.length - 1));
      const first = await inflater.inflate(compressed[0]!, false);
      const rest = await inflater.inflate([compressed[1]!, compressed[2]!.subarray(0, 3), compressed[2]!.subarray(3)], true);
      expect(Buffer.concat([first, rest])).to.deep.equal(whole);
    });

    it('never modifies the buffers it is given', async () => {
      const { deflater, inflater } = pair(params());
      const payload = message(4);
      const copy = Buffer.from(payload);
      const compressed = await deflater.deflate(payload, true);
      const compressedCopy = Buffer.from(compressed);
      await inflater.inflate(compressed, true);
      expect(payload).to.deep.equal(copy);
      expect(compressed).to.deep.equal(compressedCopy);
    });

    it('exposes the threshold below which a message is better sent uncompressed', () => {
      expect(new MessageDeflater({ parameters: params(), role: 'server' }).threshold).to.equal(1024);
      expect(new MessageDeflater({ parameters: params(), role: 'server', settings: settings({ threshold: 0 }) }).threshold).to.equal(0);
    });

    it('fails garbage with WSP_ERR_INFLATE_FAILED (1007), and every later call with the same error', async () => {
      const { inflater } = pair(params());
      const err = await rejectionOf(inflater.inflate(Buffer.from([0xff, 0xff, 0xff, 0xff]), true));
      expectCoded(err, 'WSP_ERR_INFLATE_FAILED', 1007);
      expect(await rejectionOf(inflater.inflate(Buffer.alloc(1), true))).to.equal(err);
    });

    it('rejects calls after close() with WSP_ERR_SOCKET_CLOSED, letting calls made before finish', async () => {
      const { deflater, inflater } = pair(params());
      const compressed = await deflater.deflate(message(0), true);
      const running = inflater.inflate(compressed, true);
      inflater.close();
      expect(await running).to.deep.equal(message(0));
      expectCoded(await rejectionOf(inflater.inflate(compressed, true)), 'WSP_ERR_SOCKET_CLOSED', 1006);
      deflater.close();
      expectCoded(await rejectionOf(deflater.deflate(message(0), true)), 'WSP_ERR_SOCKET_CLOSED', 1006);
    });

    it('validates maxMessageSize', () => {
      for (const bad of [-1, 1.5, Number.NaN]) {
        expect(() => new MessageInflater({ parameters: params(), role: 'server', maxMessageSize: bad }))
          .to.throw(TypeError, 'options.maxMessageSize must be an integer >= 0 or Infinity');
      }
    });
  });

  describe('maxMessageSize while inflating', () => {
    let counter: ReturnType<typeof countInflated> | undefined;
    afterEach(() => counter?.restore());

    it('accepts a message of exactly maxMessageSize and refuses one byte more', async () => {
      const { deflater } = pair(params({ clientNoContextTakeover: true }));
      const compressed = await deflater.deflate(message(0), true);
      const size = message(0).length;
      const exact = new MessageInflater({ parameters: params({ clientNoContextTakeover: true }), role: 'server', maxMessageSize: size });
      expect((await exact.inflate(compressed, true)).length).to.equal(size);
      expect((await exact.inflate(compressed, true)).length).to.equal(size);
      const under = new MessageInflater({ parameters: params({ clientNoContextTakeover: true }), role: 'server', maxMessageSize: size - 1 });
      expectCoded(await rejectionOf(under.inflate(compressed, true)), 'WSP_ERR_MESSAGE_TOO_LARGE', 1009);
    });

    it('fails a deflate bomb (10 MiB of zeros in a few KiB) with 1009 before holding more than the limit and one chunk', async () => {
      const { deflater } = pair(params());
      const bomb = await deflater.deflate(Buffer.alloc(10 * MIB), true);
      expect(bomb.length).to.be.below(20 * KIB);
      counter = countInflated();
      const inflater = new MessageInflater({ parameters: params(), role: 'server', maxMessageSize: MIB });
      const err = await rejectionOf(inflater.inflate(bomb, true));
      expectCoded(err, 'WSP_ERR_MESSAGE_TOO_LARGE', 1009);
      expect(err.message).to.contain(`inflated message exceeds ${MIB} bytes`);
      expect(counter.total()).to.be.above(MIB - 16 * KIB);
      expect(counter.total()).to.be.at.most(MIB + 16 * KIB);
    });

    it('counts the whole message across fragments, each fragment limited to what is left', async () => {
      const { deflater } = pair(params());
      const first = await deflater.deflate(Buffer.alloc(900 * KIB, 0x61), false);
      const second = await deflater.deflate(Buffer.alloc(10 * MIB), true);
      counter = countInflated();
      const inflater = new MessageInflater({ parameters: params(), role: 'server', maxMessageSize: MIB });
      expect((await inflater.inflate(first, false)).length).to.equal(900 * KIB);
      expectCoded(await rejectionOf(inflater.inflate(second, true)), 'WSP_ERR_MESSAGE_TOO_LARGE', 1009);
      expect(counter.total()).to.be.at.most(MIB + 16 * KIB);
    });

    it('restarts the count with each message', async () => {
      const { deflater, inflater } = pair(params(), 600 * KIB);
      for (let i = 0; i < 3; i++) {
        const compressed = await deflater.deflate(Buffer.alloc(500 * KIB, 0x62), true);
        expect((await inflater.inflate(compressed, true)).length).to.equal(500 * KIB);
      }
    });
  });

  describe('zlib concurrency', () => {
    it('never runs more zlib calls at once than concurrencyLimit, across codecs', async () => {
      const prototype = (wsDeflate().PerMessageDeflate as unknown as { prototype: WsPerMessageDeflate }).prototype;
      const original = prototype.decompress;
      let running = 0;
      let peak = 0;
      const stub = sinon.stub(prototype, 'decompress').callsFake(function (this: WsPerMessageDeflate, data, fin, callback) {
        running += 1;
        peak = Math.max(peak, running);
        original.call(this, data, fin, (err, result) => {
          running -= 1;
          callback(err, result);
        });
      });
      try {
        const limited = settings({ concurrencyLimit: 2 });
        const { deflater } = pair(params({ clientNoContextTakeover: true }));
        const compressed = await deflater.deflate(Buffer.alloc(2 * MIB, 0x63), true);
        const inflaters = Array.from({ length: 8 }, () => new MessageInflater({
          parameters: params({ clientNoContextTakeover: true }), role: 'server', settings: limited,
        }));
        const results = await Promise.all(inflaters.map((inflater) => inflater.inflate(compressed, true)));
        for (const result of results) expect(result.length).to.equal(2 * MIB);
        expect(peak).to.equal(2);
        expect(limited.limiter.active).to.equal(0);
      } finally {
        stub.restore();
      }
    });
  });

  describe('interop with ws peers', () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it('inflates what a ws server compressed and a ws server inflates what we compressed (we are the client)', async () => {
      const server = http.createServer();
      const sockets = trackSockets(server);
      const wss = new WebSocketServer({ server, perMessageDeflate: { threshold: 0 } });
      const received: string[] = [];
      wss.on('connection', (ws) => {
        ws.on('message', (data) => {
          received.push(String(data));
          ws.send(`echo ${String(data)}`);
        });
      });
      const port = await listen(server);
      cleanups.push(async () => {
        for (const client of wss.clients) client.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await closeServer(server, sockets);
      });

      const conn = await connectUpstream(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true });
      expect(conn.perMessageDeflate).to.deep.equal(params({ serverMaxWindowBits: 12, clientMaxWindowBits: 12 }));
      const reader = new FrameReadable(conn.socket, { role: 'client', head: conn.head, allowRsv1: true });
      const writer = new FrameWritable(conn.socket, { role: 'client', allowRsv1: true });
      cleanups.push(() => {
        reader.destroy();
        writer.destroy();
      });
      const deflater = new MessageDeflater({ parameters: conn.perMessageDeflate!, role: 'client' });
      const inflater = new MessageInflater({ parameters: conn.perMessageDeflate!, role: 'client' });
      for (let i = 0; i < 3; i++) {
        const text = message(i).toString();
        const payload = await deflater.deflate(Buffer.from(text), true);
        const frameIn = once(reader, 'data') as Promise<[Frame]>;
        writer.write({ type: 'text', fin: true, rsv1: true, payload });
        const [frame] = await frameIn;
        expect(frame.rsv1).to.equal(true);
        expect((await inflater.inflate(frame.payload, true)).toString()).to.equal(`echo ${text}`);
      }
      expect(received).to.deep.equal([0, 1, 2].map((i) => message(i).toString()));
      writer.write(closeFrame(1000));
    });

    it('inflates what a ws client compressed and a ws client inflates what we compressed (we are the server)', async () => {
      const server = http.createServer();
      const sockets = trackSockets(server);
      const accepted = new Promise<Awaited<ReturnType<typeof acceptClient>>>((resolve, reject) => {
        server.on('upgrade', (req, socket, head) => {
          acceptClient(req, socket, head, { perMessageDeflate: { clientNoContextTakeover: true } }).then(resolve, reject);
        });
      });
      const port = await listen(server);
      cleanups.push(() => closeServer(server, sockets));
      const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } });
      client.on('error', () => {});
      cleanups.push(() => client.terminate());
      const messages: string[] = [];
      client.on('message', (data) => messages.push(String(data)));
      const [{ socket, head, perMessageDeflate }] = await Promise.all([accepted, once(client, 'open')]);
      expect(perMessageDeflate).to.deep.equal(params({ serverMaxWindowBits: 12, clientMaxWindowBits: 12, clientNoContextTakeover: true }));
      expect(client.extensions).to.equal('permessage-deflate');
      const reader = new FrameReadable(socket, { role: 'server', head, allowRsv1: true });
      const writer = new FrameWritable(socket, { role: 'server', allowRsv1: true });
      cleanups.push(() => {
        reader.destroy();
        writer.destroy();
      });
      const inflater = new MessageInflater({ parameters: perMessageDeflate!, role: 'server' });
      const deflater = new MessageDeflater({ parameters: perMessageDeflate!, role: 'server' });
      for (let i = 0; i < 3; i++) {
        const frameIn = once(reader, 'data') as Promise<[Frame]>;
        client.send(message(i).toString());
        const [frame] = await frameIn;
        expect(frame.rsv1).to.equal(true);
        const text = (await inflater.inflate(frame.payload, true)).toString();
        expect(text).to.equal(message(i).toString());
        writer.write({ type: 'text', fin: true, rsv1: true, payload: await deflater.deflate(Buffer.from(`echo ${text}`), true) });
      }
      while (messages.length < 3) await once(client, 'message');
      expect(messages).to.deep.equal([0, 1, 2].map((i) => `echo ${message(i).toString()}`));
    });
  });
});
