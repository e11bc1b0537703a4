import { expect } from 'chai';
import { pino } from 'pino';
import { Readable, Writable, pipeline } from 'readable-stream';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { type FrameLogRecord, type FrameLogger, type LogOptions, LogStage, log } from '../../src/transforms/log.js';
import { kStageContext, setStageContext } from '../../src/transforms/stage.js';
import { echo } from '../helpers/proxy-harness.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

/** A plain logger recording `[level, record, message]` for the levels it has. */
function recorder(levels: string[] = ['debug']): FrameLogger & { calls: [string, FrameLogRecord, string][] } {
  const calls: [string, FrameLogRecord, string][] = [];
  const logger: Record<string, unknown> = { calls };
  for (const level of levels) logger[level] = (record: FrameLogRecord, message: string) => calls.push([level, record, message]);
  return logger as unknown as FrameLogger & { calls: [string, FrameLogRecord, string][] };
}

/** Pushes `frames` through `stage` in a pipeline and resolves with what came out (or rejects). */
function run(stage: LogStage, frames: Frame[]): Promise<Frame[]> {
  const out: Frame[] = [];
  return new Promise((resolve, reject) => {
    pipeline(
      Readable.from(frames),
      stage,
      new Writable({ objectMode: true, write: (frame: Frame, _e, cb) => { out.push(frame); cb(); } }),
      (err) => (err ? reject(err) : resolve(out)),
    );
  });
}

/** A pino logger writing JSON lines into memory. */
function memoryPino(level = 'debug') {
  const lines: string[] = [];
  const logger = pino({ level, base: undefined, timestamp: false }, { write: (line: string) => lines.push(line) });
  return { logger, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('log()', () => {
  afterEach(releaseAll);

  it('returns a LogStage', () => {
    expect(log({ logger: recorder() })).to.be.instanceOf(LogStage);
  });

  it('validates its options at factory time', () => {
    expect(() => log(undefined as unknown as LogOptions)).to.throw(TypeError, 'options.logger must be an object with a debug() method');
    expect(() => log(null as unknown as LogOptions)).to.throw(TypeError, 'options must be an object');
    expect(() => log({} as LogOptions)).to.throw(TypeError, 'options.logger must be an object with a debug() method');
    expect(() => log({ logger: recorder(['info']) })).to.throw(TypeError, 'options.logger must be an object with a debug() method');
    expect(() => log({ logger: recorder(['debug']), level: 'warn' })).to.throw(TypeError, 'options.logger must be an object with a warn() method');
    expect(() => log({ logger: recorder(), level: 'verbose' as 'info' })).to.throw(TypeError,
      "options.level must be one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal'");
    for (const payload of [0, -1, 1.5, NaN, '10', null]) {
      expect(() => log({ logger: recorder(), payload: payload as number }), String(payload)).to.throw(TypeError, 'options.payload must be a boolean or an integer >= 1');
    }
    expect(() => log({ logger: recorder(), message: 3 as unknown as string })).to.throw(TypeError, 'options.message must be a string');
    expect(() => log({ logger: recorder(), highWaterMark: 0 })).to.throw(TypeError, 'options.highWaterMark must be an integer >= 1');
  });

  it('writes one record per frame at debug with message "frame", and passes every frame on unchanged', async () => {
    const logger = recorder();
    const frames = [
      textFrame('hello'), binaryFrame(Buffer.from([1, 2, 3])), pingFrame('p'), pongFrame(),
      textFrame('a', false), continuationFrame('bc'), closeFrame(1000, 'bye'),
    ];
    const copies = frames.map((f) => Buffer.from(f.payload));
    const out = await run(log({ logger }), frames);
    expect(out).to.have.length(frames.length);
    out.forEach((frame, i) => expect(frame, `frame ${i}`).to.equal(frames[i]));
    frames.forEach((frame, i) => expect(frame.payload.equals(copies[i]!)).to.equal(true));
    expect(logger.calls.map(([level, , message]) => `${level}:${message}`)).to.deep.equal(Array(7).fill('debug:frame'));
    expect(logger.calls.map(([, record]) => record)).to.deep.equal([
      { id: '', from: 'client', type: 'text', fin: true, size: 5 },
      { id: '', from: 'client', type: 'binary', fin: true, size: 3 },
      { id: '', from: 'client', type: 'ping', fin: true, size: 1 },
      { id: '', from: 'client', type: 'pong', fin: true, size: 0 },
      { id: '', from: 'client', type: 'text', fin: false, size: 1 },
      { id: '', from: 'client', type: 'continuation', fin: true, size: 2 },
      { id: '', from: 'client', type: 'close', fin: true, size: 3, code: 1000, reason: 'bye' },
    ]);
  });

  it('an empty close has no code and an empty reason', async () => {
    const logger = recorder();
    await run(log({ logger }), [closeFrame()]);
    expect(logger.calls[0]![1]).to.deep.equal({ id: '', from: 'client', type: 'close', fin: true, size: 0, reason: '' });
    expect(logger.calls[0]![1]).to.not.have.property('code');
  });

  it('takes id and from from the context option, then from the context a proxy hands it', async () => {
    const logger = recorder();
    const stage = log({ logger, context: { role: 'upstream', id: 'c7' } });
    stage.write(textFrame('one'));
    setStageContext(stage, { role: 'client', id: 'c8', proxy: undefined });
    expect(typeof stage[kStageContext]).to.equal('function');
    stage.end(textFrame('two'));
    stage.resume();
    await new Promise((resolve) => stage.on('end', resolve));
    expect(logger.calls.map(([, r]) => [r.id, r.from])).to.deep.equal([['c7', 'upstream'], ['c8', 'client']]);
  });

  it('writes at the level and with the message given', async () => {
    const logger = recorder(['debug', 'info']);
    await run(log({ logger, level: 'info', message: 'ws frame' }), [textFrame('x')]);
    expect(logger.calls.map(([level, , message]) => `${level}:${message}`)).to.deep.equal(['info:ws frame']);
  });

  describe('payload', () => {
    it('payload: true logs text as a string, binary, ping and pong as base64, never the close body', async () => {
      const logger = recorder();
      await run(log({ logger, payload: true }), [
        textFrame('héllo'), binaryFrame(Buffer.from([0, 255, 16])), pingFrame(Buffer.from([1])), pongFrame('ok'), closeFrame(1001, 'away'),
      ]);
      expect(logger.calls.map(([, r]) => r.payload)).to.deep.equal(['héllo', 'AP8Q', 'AQ==', 'b2s=', undefined]);
      expect(logger.calls[4]![1]).to.deep.equal({ id: '', from: 'client', type: 'close', fin: true, size: 4, code: 1001, reason: 'away' });
      expect(logger.calls.some(([, r]) => 'truncated' in r)).to.equal(false);
    });

    it('continuations are logged as their message: text as text, binary as base64', async () => {
      const logger = recorder();
      await run(log({ logger, payload: true }), [
        textFrame('ab', false), pingFrame('p'), continuationFrame('cd', false), continuationFrame('ef'),
        binaryFrame('gh', false), continuationFrame('ij'),
        continuationFrame('stray'),
      ]);
      expect(logger.calls.map(([, r]) => `${r.type}:${r.payload}`)).to.deep.equal([
        'text:ab', 'ping:cA==', 'continuation:cd', 'continuation:ef', 'binary:Z2g=', 'continuation:aWo=', 'continuation:c3RyYXk=',
      ]);
    });

    it('payload: n logs at most n bytes, text cut back to a UTF-8 boundary, and sets truncated', async () => {
      const cases: [string, number, string, boolean][] = [
        ['héllo', 1, 'h', true],
        ['héllo', 2, 'h', true], // é is bytes 1-2: cutting at 2 would split it
        ['héllo', 3, 'hé', true],
        ['héllo', 6, 'héllo', false], // exactly the size: whole, not truncated
        ['héllo', 100, 'héllo', false],
        ['😀x', 3, '', true], // a 4-byte character does not fit in 3
        ['😀x', 4, '😀', true],
      ];
      for (const [data, max, expected, truncated] of cases) {
        const logger = recorder();
        await run(log({ logger, payload: max }), [textFrame(data)]);
        const record = logger.calls[0]![1];
        expect(record.payload, `${data} at ${max}`).to.equal(expected);
        expect(record.truncated, `${data} at ${max}`).to.equal(truncated ? true : undefined);
        expect(record.size).to.equal(Buffer.byteLength(data));
      }
    });

    it('payload: n cuts binary at exactly n bytes before base64', async () => {
      const logger = recorder();
      await run(log({ logger, payload: 2 }), [binaryFrame(Buffer.from([1, 2, 3, 4])), binaryFrame(Buffer.from([9, 9]))]);
      expect(logger.calls.map(([, r]) => [r.payload, r.truncated])).to.deep.equal([
        [Buffer.from([1, 2]).toString('base64'), true],
        [Buffer.from([9, 9]).toString('base64'), undefined],
      ]);
    });

    it('payloads are not logged by default', async () => {
      const logger = recorder();
      await run(log({ logger }), [textFrame('secret'), binaryFrame('secret'), pingFrame('secret')]);
      for (const [, record] of logger.calls) expect(record).to.not.have.property('payload');
    });
  });

  it('asks isLevelEnabled before building a record: a disabled level writes nothing, frames still pass', async () => {
    let enabled = false;
    const asked: string[] = [];
    const logger = Object.assign(recorder(), {
      isLevelEnabled: (level: string) => {
        asked.push(level);
        return enabled;
      },
    });
    const stage = log({ logger });
    const out: Frame[] = [];
    stage.on('data', (frame: Frame) => out.push(frame));
    stage.write(textFrame('off'));
    await new Promise(setImmediate);
    enabled = true;
    stage.end(textFrame('on'));
    await new Promise((resolve) => stage.on('end', resolve));
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['off', 'on']);
    expect(asked).to.deep.equal(['debug', 'debug']);
    expect(logger.calls.map(([, r]) => r.size)).to.deep.equal([2]);
  });

  it('a logger that throws fails the stage with its error', async () => {
    const broken = new Error('logger broke');
    const logger: FrameLogger = { debug: () => { throw broken; } };
    const err = await run(log({ logger }), [textFrame('x')]).then(() => undefined, (e: unknown) => e);
    expect(err).to.equal(broken);
  });

  describe('with a real pino logger', () => {
    it('writes JSON lines at level 20 (debug) with the record\'s fields and msg', async () => {
      const { logger, records } = memoryPino();
      await run(log({ logger, payload: 4, context: { role: 'upstream', id: 'conn-1' } }), [
        textFrame('hello'), binaryFrame(Buffer.from([1, 2])), closeFrame(4000, 'done'), closeFrame(),
      ]);
      expect(records()).to.deep.equal([
        { level: 20, id: 'conn-1', from: 'upstream', type: 'text', fin: true, size: 5, payload: 'hell', truncated: true, msg: 'frame' },
        { level: 20, id: 'conn-1', from: 'upstream', type: 'binary', fin: true, size: 2, payload: 'AQI=', msg: 'frame' },
        { level: 20, id: 'conn-1', from: 'upstream', type: 'close', fin: true, size: 4, code: 4000, reason: 'done', msg: 'frame' },
        { level: 20, id: 'conn-1', from: 'upstream', type: 'close', fin: true, size: 0, reason: '', msg: 'frame' },
      ]);
    });

    it('writes nothing while pino\'s level is above the stage\'s, and writes once it is lowered', async () => {
      const { logger, records } = memoryPino('info');
      const stage = log({ logger });
      stage.resume();
      stage.write(textFrame('quiet'));
      await new Promise(setImmediate);
      expect(records()).to.deep.equal([]);
      logger.level = 'debug';
      stage.end(textFrame('loud'));
      await new Promise((resolve) => stage.on('end', resolve));
      expect(records().map((r) => r.size)).to.deep.equal([4]);
    });

    it('writes at level: "info" (30) with a custom message', async () => {
      const { logger, records } = memoryPino('info');
      await run(log({ logger, level: 'info', message: 'ws' }), [pingFrame()]);
      expect(records()).to.deep.equal([{ level: 30, id: '', from: 'client', type: 'ping', fin: true, size: 0, msg: 'ws' }]);
    });
  });

  it('through WebSocketProxy: one record per frame on each direction, with the connection\'s id and side', async () => {
    const logger = recorder(['info']);
    const rig = await wsRig(echo, () => ({
      transforms: { client: [log({ logger, level: 'info', payload: true })], upstream: [log({ logger, level: 'info', payload: true })] },
    }));
    const client = await rig.client();
    const outcome = await rig.proxy.nextOutcome();
    client.ws.send('hello');
    await client.waitMessages(1);
    client.ws.close(1000, 'bye');
    expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
    await outcome.done;
    const records = logger.calls.map(([, r]) => r);
    const id = (outcome.proxy as unknown as { id: unknown }).id;
    expect(id, 'the proxy\'s id').to.be.a('string').and.not.equal('');
    for (const record of records) expect(record.id).to.equal(id);
    expect(records.map(({ from, type, payload, code, reason }) => ({ from, type, payload, code, reason }))).to.deep.equal([
      { from: 'client', type: 'text', payload: 'hello', code: undefined, reason: undefined },
      { from: 'upstream', type: 'text', payload: 'hello', code: undefined, reason: undefined },
      { from: 'client', type: 'close', payload: undefined, code: 1000, reason: 'bye' },
      { from: 'upstream', type: 'close', payload: undefined, code: 1000, reason: 'bye' },
    ]);
  });
});
