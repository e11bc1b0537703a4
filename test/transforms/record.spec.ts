import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { parseRecording } from '../../src/record/format.js';
import { RecordingRing } from '../../src/record/ring.js';
import { replay } from '../../src/record/replay.js';
import { RecordStage, record } from '../../src/transforms/record.js';
import { kStageContext } from '../../src/transforms/stage.js';
import { view } from '../helpers/frames.js';
import { echo } from '../helpers/proxy-harness.js';
import { until } from '../helpers/proxy-peers.js';
import { runStage } from '../helpers/stage-run.js';
import { rawRig, releaseAll, wsRig } from '../proxy/rig.js';

/** The frames a replay of `source` yields for one side. */
async function replayed(source: Parameters<typeof replay>[0], from: 'client' | 'upstream'): Promise<Frame[]> {
  const frames: Frame[] = [];
  for await (const frame of replay(source, { from })) frames.push(frame as Frame);
  return frames;
}

/** A file's text, '' while it does not exist yet (files are created asynchronously). */
function contents(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** A writable that never calls back: it never drains. */
function neverDrains(): Writable & { chunks: number } {
  const stream = new Writable({ highWaterMark: 1024, write: () => { stream.chunks++; } }) as Writable & { chunks: number };
  stream.chunks = 0;
  return stream;
}

describe('record()', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wsp-record-'));
  });
  afterEach(async () => {
    await releaseAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns a RecordStage and validates its sink and options at once', () => {
    expect(record(new RecordingRing())).to.be.instanceOf(RecordStage);
    expect(() => record(42 as never)).to.throw(TypeError, 'sink must be a file path, a writable stream or a RecordingRing');
    expect(() => record('')).to.throw(TypeError, 'sink must be');
    expect(() => record(new RecordingRing(), { payloads: -1 })).to.throw(TypeError, 'options.payloads must be a boolean or an integer >= 0');
    expect(() => record(new RecordingRing(), { control: 1 as never })).to.throw(TypeError, 'options.control must be a boolean');
    expect(() => record(new RecordingRing(), { maxBytes: 5000 })).to.throw(TypeError, 'options.maxBytes does not apply to a RecordingRing');
    expect(() => record(join(dir, 'a'), { maxBytes: 10 })).to.throw(TypeError, 'options.maxBytes must be a number >= 1024');
    expect(() => record(join(dir, 'a'), { maxFrames: 0.5 })).to.throw(TypeError, 'options.maxFrames must be an integer >= 1');
    expect(() => record(join(dir, 'a'), { onLimit: 'wrap' as never })).to.throw(TypeError, "options.onLimit must be 'rotate' or 'stop'");
    expect(() => record(neverDrains(), { onLimit: 'rotate' })).to.throw(TypeError, "options.onLimit 'rotate' needs a file path sink");
    expect(() => record(join(dir, 'a'), { end: 'yes' as never })).to.throw(TypeError, 'options.end must be a boolean');
  });

  it('passes every frame on unchanged (the same objects) and records each with its side and connection', async () => {
    const ring = new RecordingRing();
    const stage = record(ring);
    stage[kStageContext]({ role: 'upstream', id: 'c7', proxy: undefined });
    const frames = [textFrame('a', false), pingFrame('p'), continuationFrame('b'), binaryFrame(Buffer.from([0, 255])), pongFrame(), closeFrame(1000, 'bye')];
    const { out, error } = await runStage(stage, frames);
    expect(error).to.equal(undefined);
    out.forEach((frame, i) => expect(frame).to.equal(frames[i]));
    const records = ring.toArray();
    expect(records.map((r) => [r.connection, r.from, r.type, r.fin, r.size])).to.deep.equal([
      ['c7', 'upstream', 'text', false, 1], ['c7', 'upstream', 'ping', true, 1], ['c7', 'upstream', 'continuation', true, 1],
      ['c7', 'upstream', 'binary', true, 2], ['c7', 'upstream', 'pong', true, 0], ['c7', 'upstream', 'close', true, 3],
    ]);
    expect(records[3]).to.include({ data: 'AP8=', encoding: 'base64' });
    expect(records[5]).to.include({ code: 1000, data: 'bye', encoding: 'utf8' });
    expect(stage.recorded).to.equal(6);
  });

  it('leaves control frames out with control: false, and payloads with payloads: false or a byte count', async () => {
    const ring = new RecordingRing();
    await runStage(record(ring, { control: false, payloads: 2 }), [pingFrame('p'), textFrame('hello'), closeFrame(1000)]);
    expect(ring.toArray()).to.have.length(1);
    expect(ring.toArray()[0]).to.include({ data: 'he', truncated: true, size: 5 });
    const bare = new RecordingRing();
    await runStage(record(bare, { payloads: false }), [textFrame('hello')]);
    expect(bare.toArray()[0]).to.not.have.property('data');
  });

  it('records continuations of a binary message as base64, of a text message as text', async () => {
    const ring = new RecordingRing();
    await runStage(record(ring), [binaryFrame('ab', false), continuationFrame('cd'), textFrame('ef', false), continuationFrame('gh')]);
    expect(ring.toArray().map((r) => r.encoding)).to.deep.equal(['base64', 'base64', 'utf8', 'utf8']);
  });

  it('records a piece of a cut-through frame (defensively) as a fragment of its own', async () => {
    const ring = new RecordingRing();
    const pieces: Frame[] = [
      { type: 'binary', fin: true, rsv1: false, payload: Buffer.from('abc'), partial: { offset: 0, length: 6 } },
      { type: 'binary', fin: true, rsv1: false, payload: Buffer.from('def'), partial: { offset: 3, length: 6 } },
    ];
    await runStage(record(ring), pieces);
    expect(ring.toArray().map((r) => [r.type, r.fin])).to.deep.equal([['binary', false], ['continuation', true]]);
  });

  it('writes a file: a header line naming the connection, then one line per frame of both directions', async () => {
    const path = join(dir, 'rec.jsonl');
    const rig = await wsRig(echo, { transforms: { client: () => [record(path)], upstream: () => [record(path)] } });
    const client = await rig.client();
    client.ws.send('hello');
    client.ws.send(Buffer.from([1, 2, 3]));
    await client.waitMessages(2);
    client.ws.close(4000, 'done');
    await client.closed;
    const outcome = await rig.proxy.nextOutcome();
    await outcome.done;
    await until(() => contents(path).split('\n').length >= 8);
    const { header, frames } = parseRecording(contents(path));
    expect(header.connection).to.equal(outcome.proxy.id);
    expect(frames.map((f) => `${f.from}:${f.type}:${f.data ?? ''}`)).to.have.members([
      'client:text:hello', 'client:binary:AQID', 'upstream:text:hello', 'upstream:binary:AQID', 'client:close:done', 'upstream:close:done',
    ]);
  });

  it('round-trips a raw connection byte for byte: fragments, a character split across fragments, empty payloads, ping/pong, close', async () => {
    const ring = new RecordingRing();
    const rig = await rawRig({ transforms: { client: () => [record(ring)], upstream: () => [record(ring)] } });
    const client = await rig.rawClient();
    const upstream = await rig.upstream();
    const euro = Buffer.from('€', 'utf8'); // 3 bytes: split 1 + 2
    const fromClient: Frame[] = [
      textFrame(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]), false),
      pingFrame(Buffer.from([0xff, 0x00])),
      continuationFrame(euro.subarray(1), false),
      continuationFrame(Buffer.alloc(0), true),
      textFrame(''),
      binaryFrame(Buffer.from([0, 0xc3, 0x28, 0xff]), false),
      continuationFrame(Buffer.from([0xfe])),
      binaryFrame(Buffer.alloc(0)),
      pongFrame('unsolicited'),
      closeFrame(4001, 'bye ✓'),
    ];
    const fromUpstream: Frame[] = [textFrame('ok'), binaryFrame(Buffer.from([9, 8, 7])), pingFrame(), closeFrame(4001, 'bye ✓')];
    client.send(...fromClient.slice(0, -1));
    upstream.send(...fromUpstream.slice(0, -1));
    await upstream.waitFrames(fromClient.length - 1);
    client.send(fromClient[fromClient.length - 1]!);
    await upstream.waitClose();
    upstream.send(fromUpstream[fromUpstream.length - 1]!);
    await client.waitClose();
    await until(() => ring.toArray().filter((r) => r.type === 'close').length === 2);

    const clientReplay = await replayed(ring, 'client');
    const upstreamReplay = await replayed(ring, 'upstream');
    // What the client sent is what the recording replays, and what the upstream received.
    expect(clientReplay.map(view)).to.deep.equal(fromClient.map(view));
    expect(upstream.frames.map(view)).to.deep.equal(fromClient.map(view));
    // Same from the upstream, less the pong the proxy's client side answered its ping with.
    expect(upstreamReplay.map(view)).to.deep.equal(fromUpstream.map(view));
    // The split character is base64, so that the bytes survive; whole text stays text.
    const records = ring.toArray().filter((r) => r.from === 'client');
    expect(records.slice(0, 4).map((r) => r.encoding)).to.deep.equal(['base64', 'base64', 'base64', 'utf8']);
    expect(records[9]).to.include({ type: 'close', code: 4001, data: 'bye ✓', encoding: 'utf8', size: Buffer.byteLength('bye ✓') });
  });

  it('under a flood through a real proxy, with a sink that never drains, forwards every message and keeps its bounds', async () => {
    const sink = neverDrains();
    const stages: RecordStage[] = [];
    const stage = () => {
      const made = record(sink, { maxPendingBytes: 8192 });
      stages.push(made);
      return [made];
    };
    const rig = await wsRig(echo, { transforms: { client: stage, upstream: stage } });
    const client = await rig.client();
    const count = 2000;
    for (let i = 0; i < count; i++) client.ws.send(`flood ${i}`);
    await client.waitMessages(count);
    expect(client.messages[count - 1]).to.equal(`flood ${count - 1}`);
    expect(sink.writableLength).to.be.at.most(8192);
    const total = stages.reduce((sum, s) => sum + s.recorded + s.dropped, 0);
    expect(total).to.equal(2 * count);
    expect(stages.reduce((sum, s) => sum + s.dropped, 0)).to.be.greaterThan(count);
  });

  it('never slows the pipeline: a stream that never drains holds at most maxPendingBytes, the rest is dropped and counted', async () => {
    const sink = neverDrains();
    const stage = record(sink, { maxPendingBytes: 4096 });
    const frames = Array.from({ length: 500 }, (_v, i) => textFrame(`message ${i} `.padEnd(100, '.')));
    const { out, error } = await runStage(stage, frames);
    expect(error).to.equal(undefined);
    expect(out).to.have.length(500);
    expect(sink.writableLength).to.be.at.most(4096);
    expect(stage.dropped).to.be.greaterThan(400);
    expect(stage.recorded + stage.dropped).to.equal(500);
  });

});
