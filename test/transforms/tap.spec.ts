import { expect } from 'chai';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { type StageContext, kStageContext } from '../../src/transforms/stage.js';
import { TapStage, tap } from '../../src/transforms/tap.js';
import { echo } from '../helpers/proxy-harness.js';
import { until } from '../helpers/proxy-peers.js';
import { delay, runStage } from '../helpers/stage-run.js';
import { releaseAll, turns, wsRig } from '../proxy/rig.js';

describe('tap()', () => {
  it('returns a TapStage and validates its arguments at once', () => {
    expect(tap(() => undefined)).to.be.instanceOf(TapStage);
    expect(() => tap({} as never)).to.throw(TypeError, 'fn must be a function');
    expect(() => tap(() => undefined, 'x' as never)).to.throw(TypeError, 'options must be an object');
    expect(() => tap(() => undefined, { control: null as never })).to.throw(TypeError, 'options.control must be a boolean');
    expect(() => tap(() => undefined, { highWaterMark: 0 })).to.throw(TypeError, 'options.highWaterMark must be an integer >= 1');
  });

  it('calls fn on each data frame and passes every frame unchanged (the same objects), whatever fn returns', async () => {
    const seen: string[] = [];
    const frames = [textFrame('a', false), pingFrame('p'), continuationFrame('b'), binaryFrame('c'), pongFrame(), closeFrame(1000)];
    const { out, error } = await runStage(tap((f) => {
      seen.push(`${f.type}:${f.payload.toString()}`);
      return null;
    }), frames);
    expect(error).to.equal(undefined);
    expect(seen).to.deep.equal(['text:a', 'continuation:b', 'binary:c']);
    expect(out).to.have.length(frames.length);
    out.forEach((frame, i) => expect(frame).to.equal(frames[i]));
  });

  it('with control: true, fn sees control frames too', async () => {
    const seen: string[] = [];
    await runStage(tap((f) => void seen.push(f.type), { control: true }), [pingFrame(), textFrame('a'), pongFrame(), closeFrame(1000)]);
    expect(seen).to.deep.equal(['ping', 'text', 'pong', 'close']);
  });

  it('passes a frame only once the promise fn returned has resolved', async () => {
    let release!: () => void;
    const stage = tap(() => new Promise<void>((resolve) => (release = resolve)));
    const out: Frame[] = [];
    stage.on('data', (frame: Frame) => out.push(frame));
    stage.write(textFrame('held'));
    await turns();
    expect(out).to.deep.equal([]);
    release();
    await turns();
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['held']);
    stage.destroy();
  });

  it('keeps the order with an async fn whose delays vary; calls never overlap', async () => {
    const delays = [25, 0, 10, 1, 5];
    let running = 0;
    let overlapped = false;
    let i = 0;
    const { out } = await runStage(tap(async () => {
      running++;
      if (running > 1) overlapped = true;
      await delay(delays[i++]!);
      running--;
    }), delays.map((_d, n) => textFrame(String(n))));
    expect(overlapped).to.equal(false);
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['0', '1', '2', '3', '4']);
  });

  it('calls fn with the context, the one a proxy hands replacing the option', async () => {
    const seen: StageContext[] = [];
    const stage = tap((_f, ctx) => void seen.push(ctx), { context: { id: 'opt' } });
    const handed: StageContext = { role: 'upstream', id: 'handed', proxy: undefined };
    stage[kStageContext](handed);
    await runStage(stage, [textFrame('a')]);
    expect(seen).to.deep.equal([handed]);
    const standalone: StageContext[] = [];
    await runStage(tap((_f, ctx) => void standalone.push(ctx), { context: { id: 'opt' } }), [textFrame('a')]);
    expect(standalone[0]).to.deep.equal({ role: 'client', id: 'opt', proxy: undefined });
  });

  it('a throw or a rejection fails the stream with that error; the frame and later ones do not pass', async () => {
    const boom = new Error('boom');
    const sync = await runStage(tap((f) => {
      if (f.payload.toString() === 'bad') throw boom;
    }), [textFrame('ok'), textFrame('bad'), textFrame('after')]);
    expect(sync.error).to.equal(boom);
    expect(sync.out.map((f) => f.payload.toString())).to.deep.equal(['ok']);
    const rejected = await runStage(tap(async (f) => {
      await delay(1);
      if (f.payload.toString() === 'bad') throw boom;
    }), [textFrame('ok'), textFrame('bad'), textFrame('after')]);
    expect(rejected.error).to.equal(boom);
    expect(rejected.out.map((f) => f.payload.toString())).to.deep.equal(['ok']);
  });
});

describe('tap() through WebSocketProxy', () => {
  afterEach(releaseAll);

  it('sees what the client sends, which reaches the upstream unchanged', async () => {
    const seen: string[] = [];
    const rig = await wsRig(echo, () => ({ transforms: { client: [tap((f) => void seen.push(`${f.type}:${f.payload.toString()}`))] } }));
    const client = await rig.client();
    client.ws.send('one');
    client.ws.send('two');
    await client.waitMessages(2);
    expect(client.messages).to.deep.equal(['one', 'two']);
    expect(seen).to.deep.equal(['text:one', 'text:two']);
  });

  it('a throw closes both sides with 1011', async () => {
    const rig = await wsRig(echo, () => ({
      transforms: {
        client: [tap((f) => {
          if (f.payload.toString() === 'break') throw new Error('tap broke');
        })],
      },
    }));
    const client = await rig.client();
    await until(() => rig.upstreamSockets.length === 1);
    const upstreamClosed = new Promise<number>((resolve) => rig.upstreamSockets[0]!.on('close', (code: number) => resolve(code)));
    client.ws.send('fine');
    await client.waitMessages(1);
    client.ws.send('break');
    expect((await client.closed).code).to.equal(1011);
    expect(await upstreamClosed).to.equal(1011);
  });
});
