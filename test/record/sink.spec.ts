import { expect } from 'chai';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { binaryFrame, textFrame } from '../../src/frame.js';
import { parseRecording } from '../../src/record/format.js';
import { openFileSinks } from '../../src/record/sink.js';
import { record } from '../../src/transforms/record.js';
import { kStageContext } from '../../src/transforms/stage.js';
import { until } from '../helpers/proxy-peers.js';
import { runStage } from '../helpers/stage-run.js';
import { turns } from '../proxy/rig.js';

/** A file's text, '' while it does not exist yet (files are created asynchronously). */
function contents(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

// The sinks are reached through record(), the only way to make one.
describe('record/sink', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wsp-sink-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('with maxBytes and onLimit: stop, keeps the file within maxBytes, counts the rest as skipped and ends with a summary', async () => {
    const path = join(dir, 'flood.jsonl');
    const stage = record(path, { maxBytes: 4096 });
    const frames = Array.from({ length: 300 }, (_v, i) => binaryFrame(Buffer.alloc(50, i)));
    const { out } = await runStage(stage, frames);
    expect(out).to.have.length(300);
    await until(() => {
      const text = contents(path);
      return text.includes('"summary"');
    });
    const text = contents(path);
    expect(Buffer.byteLength(text)).to.be.at.most(4096);
    const parsed = parseRecording(text);
    expect(parsed.frames.length).to.equal(stage.recorded);
    expect(stage.skipped).to.equal(300 - stage.recorded);
    expect(parsed.summary).to.deep.equal({ summary: true, frames: stage.recorded, dropped: 0, skipped: stage.skipped });
  });

  it('with maxFrames and onLimit: rotate, starts a new file (header first) and keeps maxFiles files', async () => {
    const path = join(dir, 'rot.jsonl');
    const stage = record(path, { maxFrames: 10, onLimit: 'rotate', maxFiles: 3 });
    const frames = Array.from({ length: 45 }, (_v, i) => textFrame(String(i)));
    // A burst: the files fill faster than a rotation takes, so several wait their turn in memory.
    const { out } = await runStage(stage, frames);
    expect(out).to.have.length(45);
    await until(() => readdirSync(dir).length === 3 && contents(path).includes('"44"'));
    await turns(20);
    expect(readdirSync(dir).sort()).to.deep.equal(['rot.jsonl', 'rot.jsonl.1', 'rot.jsonl.2']);
    const data = (file: string) => parseRecording(readFileSync(join(dir, file), 'utf8')).frames.map((f) => f.data);
    expect(data('rot.jsonl')).to.deep.equal(['40', '41', '42', '43', '44']);
    expect(data('rot.jsonl.1')).to.deep.equal(['30', '31', '32', '33', '34', '35', '36', '37', '38', '39']);
    expect(data('rot.jsonl.2')).to.deep.equal(['20', '21', '22', '23', '24', '25', '26', '27', '28', '29']);
    expect(stage.dropped).to.equal(0);
  });

  it('keeps a frame too large for the file, with fewer payload bytes (truncated)', async () => {
    const path = join(dir, 'big.jsonl');
    const stage = record(path, { maxBytes: 2048 });
    await runStage(stage, [binaryFrame(Buffer.alloc(10000, 7))]);
    await until(() => contents(path).includes('truncated'));
    await turns(10);
    const text = contents(path);
    expect(Buffer.byteLength(text)).to.be.at.most(2048);
    const [frame] = parseRecording(text).frames;
    expect(frame).to.include({ size: 10000, truncated: true, encoding: 'base64' });
  });

  it('shares one stream between stages: one header, and the stream is ended with end: true once both have ended', async () => {
    const chunks: string[] = [];
    const stream = new Writable({ write(chunk: Buffer, _enc, callback) { chunks.push(chunk.toString()); callback(); } });
    const a = record(stream, { end: true });
    const b = record(stream, { end: true });
    a[kStageContext]({ role: 'client', id: 'x', proxy: undefined });
    b[kStageContext]({ role: 'upstream', id: 'x', proxy: undefined });
    await runStage(a, [textFrame('1')]);
    expect(stream.writableEnded).to.equal(false);
    await runStage(b, [textFrame('2')]);
    await until(() => stream.writableFinished);
    const parsed = parseRecording(chunks.join(''));
    expect(parsed.frames.map((f) => `${f.from}:${f.data}`)).to.deep.equal(['client:1', 'upstream:2']);
  });
  it('with maxBytes and onLimit: rotate under a burst, keeps every file within maxBytes, each a recording of its own', async () => {
    const path = join(dir, 'burst.jsonl');
    const stage = record(path, { maxBytes: 2048, onLimit: 'rotate', maxFiles: 4 });
    const { out } = await runStage(stage, Array.from({ length: 200 }, (_v, i) => textFrame(`frame ${i}`)));
    expect(out).to.have.length(200);
    await until(() => readdirSync(dir).length === 4 && contents(path).includes('"frame 199"'));
    await turns(20);
    const seen: number[] = [];
    for (const file of readdirSync(dir)) {
      const text = contents(join(dir, file));
      expect(Buffer.byteLength(text), file).to.be.at.most(2048);
      seen.push(...parseRecording(text).frames.map((f) => Number(f.data!.slice(6))));
    }
    // The four newest files hold the newest frames, none lost between them.
    seen.sort((a, b) => a - b);
    expect(seen[seen.length - 1]).to.equal(199);
    expect(seen).to.deep.equal(Array.from({ length: seen.length }, (_v, i) => 200 - seen.length + i));
    expect(stage.dropped).to.equal(0);
  });

  it('with maxFrames and onLimit: stop, records the first frames only', async () => {
    const path = join(dir, 'stop.jsonl');
    const stage = record(path, { maxFrames: 5 });
    await runStage(stage, Array.from({ length: 50 }, (_v, i) => textFrame(String(i))));
    await until(() => contents(path).includes('"summary"'));
    const parsed = parseRecording(contents(path));
    expect(parsed.frames.map((f) => f.data)).to.deep.equal(['0', '1', '2', '3', '4']);
    expect(parsed.summary).to.include({ frames: 5, skipped: 45 });
    expect(stage.skipped).to.equal(45);
  });

  it('drops and counts records once the file fails (a missing directory), the frames still passing', async () => {
    const stage = record(join(dir, 'no', 'such', 'dir.jsonl'));
    stage.resume();
    stage.write(textFrame('first'));
    await until(() => stage.sinkError !== undefined);
    const { out } = await runStage(stage, [textFrame('a'), binaryFrame('b')]);
    expect(out).to.have.length(2);
    expect((stage.sinkError as NodeJS.ErrnoException).code).to.equal('ENOENT');
    expect(stage.dropped).to.equal(2);
  });
  it('forgets a file once every stage writing it has ended', async () => {
    const before = openFileSinks();
    const path = join(dir, 'both.jsonl');
    const a = record(path);
    const b = record(path);
    expect(openFileSinks()).to.equal(before + 1);
    await runStage(a, [textFrame('a')]);
    expect(openFileSinks()).to.equal(before + 1);
    b.destroy();
    expect(openFileSinks()).to.equal(before);
    await until(() => contents(path).includes('"a"'));
    expect(parseRecording(contents(path)).frames).to.have.length(1);
  });
});
