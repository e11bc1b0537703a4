import { expect } from 'chai';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import {
  type AggregateOptions, AggregateTransform, COPY_FRAGMENTS_BELOW, DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, MessageAssembler, aggregate,
} from '../../src/transforms/aggregate.js';

interface Run {
  out: Frame[];
  error: WebSocketProxyError | undefined;
}

/** Writes `frames` into a fresh aggregate() and collects what comes out, until its end or error. */
function run(frames: Frame[], options?: AggregateOptions): Promise<Run> {
  const stage = aggregate(options);
  const out: Frame[] = [];
  return new Promise<Run>((resolve) => {
    stage.on('data', (frame: Frame) => out.push(frame));
    stage.on('end', () => resolve({ out, error: undefined }));
    stage.on('error', (err: WebSocketProxyError) => resolve({ out, error: err }));
    for (const frame of frames) stage.write(frame);
    stage.end();
  });
}

function plain(frames: Frame[]): { type: string; fin: boolean; data: string; code?: number }[] {
  return frames.map((f) => ({ type: f.type, fin: f.fin, data: f.payload.toString(), ...(f.code === undefined ? {} : { code: f.code }) }));
}

describe('aggregate()', () => {
  it('returns an AggregateTransform; defaults are 16 MiB and 16384 fragments', () => {
    expect(aggregate()).to.be.instanceOf(AggregateTransform);
    expect(DEFAULT_MAX_MESSAGE_SIZE).to.equal(16 * 1024 * 1024);
    expect(DEFAULT_MAX_FRAGMENTS).to.equal(16384);
  });

  it('validates its options', () => {
    expect(() => aggregate({ maxMessageSize: 0 })).to.throw(TypeError, 'options.maxMessageSize must be a number >= 1');
    expect(() => aggregate({ maxFragments: NaN })).to.throw(TypeError, 'options.maxFragments must be a number >= 1');
    expect(() => aggregate({ highWaterMark: -1 })).to.throw(TypeError, 'options.highWaterMark must be a number >= 1');
    expect(() => aggregate({ maxFragments: '3' as unknown as number })).to.throw(TypeError, 'options.maxFragments must be a number >= 1');
  });

  it('assembles fragments into one frame of the first fragment\'s type, FIN set', async () => {
    const { out, error } = await run([
      textFrame('hello', false), continuationFrame(' ', false), continuationFrame('world'),
      binaryFrame('ab', false), continuationFrame('cd'),
    ]);
    expect(error).to.equal(undefined);
    expect(plain(out)).to.deep.equal([
      { type: 'text', fin: true, data: 'hello world' },
      { type: 'binary', fin: true, data: 'abcd' },
    ]);
  });

  it('passes control frames interleaved in a message at once, ahead of the message', async () => {
    const { out } = await run([
      textFrame('', false), continuationFrame('a', false), pingFrame('1'), continuationFrame('b', false),
      pongFrame('2'), continuationFrame('c', false), closeFrame(1000, 'x'), continuationFrame(''),
    ]);
    expect(plain(out)).to.deep.equal([
      { type: 'ping', fin: true, data: '1' },
      { type: 'pong', fin: true, data: '2' },
      { type: 'close', fin: true, data: 'x', code: 1000 },
      { type: 'text', fin: true, data: 'abc' },
    ]);
  });

  it('passes an unfragmented frame unchanged (the same object)', async () => {
    const frame = textFrame('whole');
    const { out } = await run([frame]);
    expect(out).to.have.length(1);
    expect(out[0]).to.equal(frame);
  });

  it('passes a stray final continuation as it is', async () => {
    const stray = continuationFrame('stray');
    const { out, error } = await run([stray, textFrame('next')]);
    expect(error).to.equal(undefined);
    expect(out[0]).to.equal(stray);
    expect(plain(out)).to.deep.equal([
      { type: 'continuation', fin: true, data: 'stray' },
      { type: 'text', fin: true, data: 'next' },
    ]);
  });

  it('resets between messages', async () => {
    const { out } = await run([
      textFrame('hello', false), continuationFrame('world'),
      binaryFrame('good', false), continuationFrame('bye', false), continuationFrame(''),
    ], { maxFragments: 3, maxMessageSize: 10 });
    expect(plain(out)).to.deep.equal([
      { type: 'text', fin: true, data: 'helloworld' },
      { type: 'binary', fin: true, data: 'goodbye' },
    ]);
  });

  it('keeps the first fragment\'s RSV1', async () => {
    const first: Frame = { ...binaryFrame('a', false), rsv1: true };
    const { out } = await run([first, continuationFrame('b')]);
    expect(out[0]!.rsv1).to.equal(true);
    const { out: plainOut } = await run([binaryFrame('a', false), continuationFrame('b')]);
    expect(plainOut[0]!.rsv1).to.equal(false);
  });

  it('hands a message of one non-empty part on without a copy', async () => {
    const part = Buffer.from('the only bytes');
    const { out } = await run([textFrame('', false), continuationFrame(part, false), continuationFrame('')]);
    expect(out).to.have.length(1);
    expect(out[0]!.payload.toString()).to.equal('the only bytes');
    expect(out[0]!.payload).to.equal(part);
  });

  it('assembles a message of empty fragments into an empty frame', async () => {
    const { out } = await run([binaryFrame('', false), continuationFrame('', false), continuationFrame('')]);
    expect(plain(out)).to.deep.equal([{ type: 'binary', fin: true, data: '' }]);
  });

  it('drops an unfinished message at the end of the stream', async () => {
    const { out, error } = await run([pingFrame('p'), textFrame('never', false), continuationFrame('finished', false)]);
    expect(error).to.equal(undefined);
    expect(plain(out)).to.deep.equal([{ type: 'ping', fin: true, data: 'p' }]);
  });

  describe('limits (strictly over)', () => {
    it('maxMessageSize: exactly the limit passes', async () => {
      const { out, error } = await run([textFrame('12345', false), continuationFrame('67890')], { maxMessageSize: 10 });
      expect(error).to.equal(undefined);
      expect(plain(out)).to.deep.equal([{ type: 'text', fin: true, data: '1234567890' }]);
    });

    it('maxMessageSize: one byte more fails with WSP_ERR_MESSAGE_TOO_LARGE (1009), nothing of it emitted', async () => {
      const { out, error } = await run([
        textFrame('12345', false), pingFrame('p'), continuationFrame('67890', false), continuationFrame('1'),
      ], { maxMessageSize: 10 });
      expect(error).to.be.instanceOf(WebSocketProxyError);
      expect(error!.code).to.equal('WSP_ERR_MESSAGE_TOO_LARGE');
      expect(error!.closeCode).to.equal(1009);
      expect(error!.message).to.equal('message exceeds its size limit: 11 > 10');
      expect(plain(out)).to.deep.equal([{ type: 'ping', fin: true, data: 'p' }]);
    });

    it('maxMessageSize: a first fragment over the limit fails at once', async () => {
      const { out, error } = await run([binaryFrame('12345678901', false)], { maxMessageSize: 10 });
      expect(error?.code).to.equal('WSP_ERR_MESSAGE_TOO_LARGE');
      expect(error?.message).to.equal('message exceeds its size limit: 11 > 10');
      expect(out).to.deep.equal([]);
    });

    it('maxMessageSize: an unfragmented message over the limit fails too; exactly the limit passes', async () => {
      const over = await run([textFrame('ok'), binaryFrame('12345678901')], { maxMessageSize: 10 });
      expect(over.error?.code).to.equal('WSP_ERR_MESSAGE_TOO_LARGE');
      expect(over.error?.closeCode).to.equal(1009);
      expect(plain(over.out)).to.deep.equal([{ type: 'text', fin: true, data: 'ok' }]);
      const exact = await run([binaryFrame('1234567890')], { maxMessageSize: 10 });
      expect(exact.error).to.equal(undefined);
      expect(exact.out).to.have.length(1);
    });

    it('maxFragments: exactly the limit passes', async () => {
      const { out, error } = await run([textFrame('a', false), continuationFrame('b', false), continuationFrame('c')], { maxFragments: 3 });
      expect(error).to.equal(undefined);
      expect(plain(out)).to.deep.equal([{ type: 'text', fin: true, data: 'abc' }]);
    });

    it('maxFragments: one more fails with WSP_ERR_TOO_MANY_FRAGMENTS (1009)', async () => {
      const { out, error } = await run([
        textFrame('a', false), continuationFrame('b', false), continuationFrame('c', false), continuationFrame('d'),
      ], { maxFragments: 3 });
      expect(error?.code).to.equal('WSP_ERR_TOO_MANY_FRAGMENTS');
      expect(error?.closeCode).to.equal(1009);
      expect(error?.message).to.equal('message exceeds its fragment limit: more than 3');
      expect(out).to.deep.equal([]);
    });

    it('maxFragments: empty fragments count', async () => {
      const { error } = await run([textFrame('', false), continuationFrame('', false), continuationFrame('')], { maxFragments: 2 });
      expect(error?.code).to.equal('WSP_ERR_TOO_MANY_FRAGMENTS');
    });

    it('control frames are not counted', async () => {
      const { out, error } = await run([
        textFrame('ab', false), pingFrame('123456789'), pongFrame('123456789'), pingFrame(), continuationFrame('cd'),
      ], { maxFragments: 2, maxMessageSize: 4 });
      expect(error).to.equal(undefined);
      expect(plain(out).map((f) => f.type)).to.deep.equal(['ping', 'pong', 'ping', 'text']);
      expect(out[3]!.payload.toString()).to.equal('abcd');
    });

    it('the limits apply per message', async () => {
      const frames: Frame[] = [];
      for (let i = 0; i < 5; i++) frames.push(textFrame('12', false), continuationFrame('345'));
      const { out, error } = await run(frames, { maxFragments: 2, maxMessageSize: 5 });
      expect(error).to.equal(undefined);
      expect(out.map((f) => f.payload.toString())).to.deep.equal(['12345', '12345', '12345', '12345', '12345']);
    });
  });

  describe('what an open message holds (ws#2331: tiny fragments pinning their socket chunks)', () => {
    it('assembles any mix of small and large fragments byte for byte', () => {
      const assembler = new MessageAssembler(Infinity, Infinity);
      const sizes = [1, 0, 3, COPY_FRAGMENTS_BELOW, 2, 1000, COPY_FRAGMENTS_BELOW - 1, 5000, 40000, 1, 20000, 7];
      const parts = sizes.map((n, i) => Buffer.alloc(n, 65 + (i % 26)));
      let out: Frame | undefined;
      parts.forEach((payload, i) => {
        const fin = i === parts.length - 1;
        out = assembler.add(i === 0 ? binaryFrame(payload, fin) : continuationFrame(payload, fin));
      });
      expect(out!.payload.equals(Buffer.concat(parts))).to.equal(true);
      expect(assembler.midMessage).to.equal(false);
    });

    it('copies fragments under COPY_FRAGMENTS_BELOW (16 KiB) instead of holding the chunks they are views of', () => {
      const assembler = new MessageAssembler(Infinity, Infinity);
      // Each 1-byte payload is a view of a 4 KiB chunk, as a socket read gives it.
      const chunks = Array.from({ length: 3 }, () => Buffer.alloc(4096, 0x61));
      assembler.add(binaryFrame(chunks[0]!.subarray(0, 1), false));
      assembler.add(continuationFrame(chunks[1]!.subarray(0, 1), false));
      // Overwriting the chunks shows which bytes are held as views: none of them.
      for (const chunk of chunks) chunk.fill(0x7a);
      const out = assembler.add(continuationFrame(chunks[2]!.subarray(0, 1), true));
      expect(out!.payload.toString()).to.equal('aaz');
      expect(COPY_FRAGMENTS_BELOW).to.equal(16 * 1024);
    });

    it('copies a larger fragment that is a view of a buffer more than twice its size, and holds one that is not', () => {
      const assembler = new MessageAssembler(Infinity, Infinity);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const own = Buffer.alloc(COPY_FRAGMENTS_BELOW, 0x62);
      assembler.add(binaryFrame(chunk.subarray(0, COPY_FRAGMENTS_BELOW), false));
      assembler.add(continuationFrame(own, false));
      chunk.fill(0x7a);
      own.fill(0x7a);
      const out = assembler.add(continuationFrame('', true));
      expect(out!.payload.subarray(0, COPY_FRAGMENTS_BELOW).every((b) => b === 0x61), 'the view was copied').to.equal(true);
      expect(out!.payload.subarray(COPY_FRAGMENTS_BELOW).every((b) => b === 0x7a), 'the buffer of its own was held').to.equal(true);
    });
  });

  it('bounds what it holds: midMessage tells whether a message is open', async () => {
    const stage = aggregate();
    expect(stage.midMessage).to.equal(false);
    stage.write(textFrame('a', false));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stage.midMessage).to.equal(true);
    stage.write(continuationFrame('b'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stage.midMessage).to.equal(false);
    stage.destroy();
  });
});
