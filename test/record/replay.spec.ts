import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'readable-stream';
import sinon from 'sinon';
import type { WebSocket } from 'ws';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, textFrame } from '../../src/frame.js';
import { connectUpstream } from '../../src/handshake/upstream.js';
import { type RecordedFrame, type RecordedSide, recordFrame, recordingHeader, toJsonLine } from '../../src/record/format.js';
import { replay, ReplayStream } from '../../src/record/replay.js';
import { RecordingRing } from '../../src/record/ring.js';
import { FrameWritable } from '../../src/streams/frame-writable.js';
import { aggregate } from '../../src/transforms/aggregate.js';
import { view } from '../helpers/frames.js';
import { recordClient, until } from '../helpers/proxy-peers.js';
import { wsServer } from '../helpers/sockets.js';
import { turns } from '../proxy/rig.js';

const T0 = 1_790_000_000_000;

function rec(frame: Frame, time: number, from: RecordedSide = 'client', connection = 'c1'): RecordedFrame {
  return recordFrame(frame, { time, connection, from });
}

async function collect(stream: ReplayStream): Promise<Frame[]> {
  const frames: Frame[] = [];
  for await (const frame of stream) frames.push(frame as Frame);
  return frames;
}

describe('replay()', () => {
  let dir: string;
  let clock: sinon.SinonFakeTimers | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wsp-replay-'));
  });
  afterEach(() => {
    clock?.restore();
    clock = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const frames = [textFrame('a', false), continuationFrame('b'), pingFrame('p'), binaryFrame(Buffer.from([0, 255])), closeFrame(4000, 'end')];
  const records = [
    ...frames.map((f, i) => rec(f, T0 + i * 10)),
    rec(textFrame('from upstream'), T0 + 1, 'upstream'),
    rec(textFrame('other connection'), T0 + 2, 'client', 'c2'),
  ];
  const jsonl = toJsonLine(recordingHeader('c1')) + records.map(toJsonLine).join('');

  it('validates its source and options at once', () => {
    expect(() => replay(42 as never)).to.throw(TypeError, 'source must be');
    expect(() => replay(records, { timing: 0 })).to.throw(TypeError, "options.timing must be 'original', 'fast' or a number > 0");
    expect(() => replay(records, { timing: 'slow' as never })).to.throw(TypeError, 'options.timing');
    expect(() => replay(records, { from: 'server' as never })).to.throw(TypeError, "options.from must be 'client' or 'upstream'");
    expect(() => replay(records, { highWaterMark: 0 })).to.throw(TypeError, 'options.highWaterMark must be an integer >= 1');
    expect(() => replay([recordFrame(textFrame('abc'), { time: 0, connection: 'c', from: 'client' }, false)])).to.throw(TypeError, 'record.data is missing');
  });

  it("yields one side's frames of one connection, byte for byte, from text, records, a ring or a file", async () => {
    const ring = new RecordingRing();
    for (const r of records) ring.push(r);
    const path = join(dir, 'rec.jsonl');
    writeFileSync(path, jsonl);
    for (const source of [jsonl, records, ring, path]) {
      expect((await collect(replay(source))).map(view), String(source).slice(0, 20)).to.deep.equal(frames.map(view));
    }
    expect((await collect(replay(records, { from: 'upstream' }))).map(view)).to.deep.equal([view(textFrame('from upstream'))]);
    expect((await collect(replay(records, { connection: 'c2' }))).map(view)).to.deep.equal([view(textFrame('other connection'))]);
  });

  it('fails the stream for a file that cannot be read or parsed', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${toJsonLine(recordingHeader())}{"time":"x"}\n`);
    const errors: Error[] = [];
    for (const path of [bad, join(dir, 'missing.jsonl')]) {
      try {
        await collect(replay(path));
      } catch (err) {
        errors.push(err as Error);
      }
    }
    expect(errors.map((e) => (e as { code?: string }).code)).to.deep.equal(['WSP_ERR_INVALID_RECORDING', 'ENOENT']);
    expect(errors[0]!.message).to.include('line 2');
  });

  it("timing 'original' waits the recorded gaps (one timer at a time), a number divides them, 'fast' does not wait", async () => {
    clock = sinon.useFakeTimers({ now: T0, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const gapped = [rec(textFrame('0'), T0), rec(textFrame('1'), T0 + 100), rec(textFrame('2'), T0 + 300)];
    const seen = (stream: ReplayStream) => {
      const out: string[] = [];
      stream.on('data', (f: Frame) => out.push(f.payload.toString()));
      return out;
    };
    const original = replay(gapped, { timing: 'original' });
    const out = seen(original);
    await turns();
    expect(out).to.deep.equal(['0']);
    expect(clock.countTimers()).to.equal(1);
    clock.tick(99);
    await turns();
    expect(out).to.deep.equal(['0']);
    clock.tick(1);
    await turns();
    expect(out).to.deep.equal(['0', '1']);
    clock.tick(200);
    await turns();
    expect(out).to.deep.equal(['0', '1', '2']);
    expect(original.readableEnded).to.equal(true);

    const double = replay(gapped, { timing: 2 });
    const fast2 = seen(double);
    await turns();
    clock.tick(50);
    await turns();
    expect(fast2).to.deep.equal(['0', '1']);
    clock.tick(100);
    await turns();
    expect(fast2).to.deep.equal(['0', '1', '2']);

    const fast = seen(replay(gapped, { timing: 'fast' }));
    await turns();
    expect(fast).to.deep.equal(['0', '1', '2']);
  });

  it('clears its timer when destroyed mid-wait', async () => {
    clock = sinon.useFakeTimers({ now: T0, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const stream = replay([rec(textFrame('0'), T0), rec(textFrame('1'), T0 + 1000)], { timing: 'original' });
    stream.resume();
    await turns();
    expect(clock.countTimers()).to.equal(1);
    stream.destroy();
    await turns();
    expect(clock.countTimers()).to.equal(0);
  });

  it('respects backpressure: never more than highWaterMark frames ahead of the reader, then ends', async () => {
    const many = Array.from({ length: 100 }, (_v, i) => rec(textFrame(String(i)), T0 + i));
    const stream = replay(many, { highWaterMark: 4 });
    stream.read(0);
    await turns();
    expect(stream.pushed).to.be.at.most(4);
    expect(stream.readableLength).to.be.at.most(4);
    const rest = await collect(stream);
    expect(stream.pushed).to.equal(100);
    expect(rest.map((f) => f.payload.toString())).to.deep.equal(many.map((_r, i) => String(i)));
  });

  it('feeds recorded traffic through a stage pipeline', async () => {
    const out: Frame[] = [];
    await new Promise<void>((resolve, reject) => {
      const sink = aggregate();
      sink.on('data', (f: Frame) => out.push(f));
      pipeline(replay(records), sink, (err) => (err ? reject(err) : resolve()));
    });
    expect(out.map((f) => `${f.type}:${f.payload.toString()}`)).to.deep.equal(['text:ab', 'ping:p', `binary:${Buffer.from([0, 255]).toString()}`, 'close:end']);
  });

  it('re-sends a captured connection to a real upstream through a FrameWritable', async () => {
    const server = await wsServer();
    try {
      const accepted = new Promise<WebSocket>((resolve) => server.wss.once('connection', resolve));
      const { socket } = await connectUpstream(`ws://127.0.0.1:${server.port}/`);
      // What the upstream answers (its close) is not needed: read and drop it, so that its TCP end is seen.
      socket.resume();
      const peer = recordClient(await accepted);
      const euro = Buffer.from('€');
      const captured = [
        textFrame(Buffer.concat([Buffer.from('x'), euro.subarray(0, 2)]), false), pingFrame('are you there'), continuationFrame(euro.subarray(2)),
        binaryFrame(Buffer.from([1, 2, 3])), textFrame(''), closeFrame(4001, 'replayed ✓'),
      ].map((f, i) => rec(f, T0 + i));
      await new Promise<void>((resolve, reject) => {
        pipeline(replay(captured), new FrameWritable(socket, { role: 'client' }), (err) => (err ? reject(err) : resolve()));
      });
      const closed = await peer.closed;
      expect(closed).to.deep.equal({ code: 4001, reason: 'replayed ✓' });
      expect(peer.events).to.deep.equal(['ping:are you there', 'message:x€', 'message:binary:3', 'message:', 'close:4001:replayed ✓']);
      await until(() => socket.destroyed);
    } finally {
      await server.close();
    }
  });
});
