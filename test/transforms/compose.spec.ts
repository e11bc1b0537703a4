import { Duplex as NodeDuplex, PassThrough as NodePassThrough, Transform as NodeTransform } from 'node:stream';
import { pipeline as nodePipeline } from 'node:stream/promises';
import { expect } from 'chai';
import { Readable, Writable, pipeline } from 'readable-stream';
import { type Frame, binaryFrame, closeFrame, pingFrame, textFrame } from '../../src/frame.js';
import { ComposedStage, compose } from '../../src/transforms/compose.js';
import { filter } from '../../src/transforms/filter.js';
import { map, mapText } from '../../src/transforms/map.js';
import { type Stage, type StageContext, kStageContext } from '../../src/transforms/stage.js';
import { tap } from '../../src/transforms/tap.js';
import { echo } from '../helpers/proxy-harness.js';
import { runStage } from '../helpers/stage-run.js';
import { releaseAll, turns, wsRig } from '../proxy/rig.js';

const payloads = (frames: Frame[]): string[] => frames.map((f) => f.payload.toString());
const suffix = (s: string) => mapText((text) => text + s);

/** An error event of a stream, as a promise. */
function errorOf(stream: Stage): Promise<Error> {
  return new Promise((resolve) => (stream as NodeDuplex).once('error', resolve));
}

describe('compose()', () => {
  it('returns a ComposedStage and checks its arguments at once', () => {
    expect(compose()).to.be.instanceOf(ComposedStage);
    expect(() => compose(5 as never)).to.throw(TypeError, 'stages[0] must be a Duplex stream of Frames');
    expect(() => compose(map((f) => f), {} as never)).to.throw(TypeError, 'stages[1] must be a Duplex stream of Frames');
    expect(() => compose(new NodePassThrough())).to.throw(TypeError, 'stages[0] must be an object-mode stream');
    const once = map((f) => f);
    expect(() => compose(once, tap(() => undefined), once)).to.throw(TypeError, 'stages[2] is stages[0] again: a stage instance serves one place');
  });

  it('with no stage, passes frames through unchanged', async () => {
    const frames = [textFrame('a'), pingFrame(), binaryFrame('b'), closeFrame(1000)];
    const { out, error } = await runStage(compose(), frames);
    expect(error).to.equal(undefined);
    expect(out).to.have.length(4);
    out.forEach((frame, i) => expect(frame).to.equal(frames[i]));
  });

  it('runs frames through its stages in order, and composites nest', async () => {
    const { out } = await runStage(compose(suffix('1'), compose(suffix('2'), compose(), suffix('3')), suffix('4')), [textFrame('x'), textFrame('y')]);
    expect(payloads(out)).to.deep.equal(['x1234', 'y1234']);
  });

  it('takes node:stream stages: a Transform and Duplex.from(async function*)', async () => {
    const upper = new NodeTransform({
      objectMode: true,
      transform(frame: Frame, _e, cb) {
        cb(null, { ...frame, payload: Buffer.from(frame.payload.toString().toUpperCase()) });
      },
    });
    const doubled = NodeDuplex.from(async function* (frames: AsyncIterable<Frame>) {
      for await (const frame of frames) {
        yield frame;
        if (frame.type === 'text') yield { ...frame, payload: Buffer.concat([frame.payload, frame.payload]) };
      }
    });
    const { out, error } = await runStage(compose(upper, doubled, suffix('!')), [textFrame('ab'), textFrame('c')]);
    expect(error).to.equal(undefined);
    expect(payloads(out)).to.deep.equal(['AB!', 'ABAB!', 'C!', 'CC!']);
  });

  it('works in pipeline() of readable-stream and of node:stream', async () => {
    const collected: Frame[] = [];
    const sink = () => new Writable({ objectMode: true, write(frame: Frame, _e, cb) { collected.push(frame); cb(); } });
    await new Promise<void>((resolve, reject) => {
      pipeline(Readable.from([textFrame('a'), textFrame('drop'), textFrame('b')]), compose(filter((f) => f.payload.toString() !== 'drop'), suffix('+')),
        sink(), (err) => (err ? reject(err) : resolve()));
    });
    await nodePipeline(Readable.from([textFrame('c')]), compose(suffix('-')), sink());
    expect(payloads(collected)).to.deep.equal(['a+', 'b+', 'c-']);
  });

  it('hands its context to each inner stage, nested ones included', async () => {
    const seen: string[] = [];
    const record = (label: string) => tap((_f, ctx) => void seen.push(`${label}:${ctx.role}:${ctx.id}`));
    const inner = compose(record('b'));
    const outer = compose(record('a'), inner, new NodePassThrough({ objectMode: true }));
    const context: StageContext = { role: 'upstream', id: 'conn-1', proxy: undefined };
    outer[kStageContext](context);
    expect(outer.context).to.equal(context);
    expect(inner.context).to.equal(context);
    await runStage(outer, [textFrame('x')]);
    expect(seen).to.deep.equal(['a:upstream:conn-1', 'b:upstream:conn-1']);
  });

  describe('backpressure', () => {
    it('write() returns false while the inner chain is full, and drains once it moves', async () => {
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const stage = compose(tap(() => gate, { highWaterMark: 1 }), map((f) => f, { highWaterMark: 1 }));
      let accepted = 0;
      while (accepted < 100) {
        accepted++;
        if (!stage.write(textFrame(String(accepted)))) break;
      }
      expect(accepted).to.be.below(10);
      const drained = new Promise((resolve) => stage.once('drain', resolve));
      const out: Frame[] = [];
      stage.on('data', (frame: Frame) => out.push(frame));
      open();
      await drained;
      stage.end();
      await new Promise((resolve) => stage.once('end', resolve));
      expect(payloads(out)).to.deep.equal(Array.from({ length: accepted }, (_v, i) => String(i + 1)));
    });

    it('with nobody reading, writes soon return false and no drain comes: a few frames are held', async () => {
      const inner = map((f) => f, { highWaterMark: 2 });
      const stage = compose(inner);
      let accepted = 0;
      while (accepted < 1000) {
        accepted++;
        if (!stage.write(textFrame(String(accepted)))) break;
      }
      expect(accepted).to.be.below(20);
      let drained = false;
      stage.once('drain', () => (drained = true));
      await turns(10);
      expect(drained).to.equal(false);
      stage.end();
      const out: Frame[] = [];
      for await (const frame of stage) out.push(frame as Frame);
      expect(payloads(out)).to.deep.equal(Array.from({ length: accepted }, (_v, i) => String(i + 1)));
    });
  });

  describe('errors, destroy and end', () => {
    it('an inner stage that throws fails the composite with that error and destroys every inner stage', async () => {
      const boom = new Error('boom');
      const stages = [tap(() => undefined), map((f) => {
        if (f.payload.toString() === 'bad') throw boom;
        return f;
      }), tap(() => undefined)];
      const stage = compose(...stages);
      const { out, error } = await runStage(stage, [textFrame('ok'), textFrame('bad'), textFrame('later')]);
      expect(error).to.equal(boom);
      expect(payloads(out)).to.deep.equal(['ok']);
      expect(stages.map((s) => s.destroyed)).to.deep.equal([true, true, true]);
      expect(stage.destroyed).to.equal(true);
    });

    it('a node:stream generator stage that throws fails the composite with that error', async () => {
      const boom = new Error('generator broke');
      const head = map((f) => f);
      const failing = NodeDuplex.from(async function* (frames: AsyncIterable<Frame>) {
        for await (const frame of frames) {
          if (frame.payload.toString() === 'bad') throw boom;
          yield frame;
        }
      });
      const stage = compose(head, failing);
      const { error } = await runStage(stage, [textFrame('ok'), textFrame('bad')]);
      expect(error).to.equal(boom);
      expect(head.destroyed).to.equal(true);
    });

    it('destroying the composite destroys the inner stages (with its error, if any)', async () => {
      const a = map((f) => f);
      const b = new NodePassThrough({ objectMode: true });
      const stage = compose(a, b);
      const closed = new Promise((resolve) => stage.once('close', resolve));
      stage.destroy();
      await closed;
      expect([a.destroyed, b.destroyed]).to.deep.equal([true, true]);
      const c = map((f) => f);
      const failed = compose(c);
      const boom = new Error('destroyed with');
      const error = errorOf(failed);
      failed.destroy(boom);
      expect(await error).to.equal(boom);
      expect(c.destroyed).to.equal(true);
    });

    it('an inner stage destroyed without an error fails the composite (premature close)', async () => {
      const inner = map((f) => f);
      const stage = compose(tap(() => undefined), inner);
      const error = errorOf(stage);
      inner.destroy();
      expect((await error as NodeJS.ErrnoException).code).to.equal('ERR_STREAM_PREMATURE_CLOSE');
    });

    it('ending the composite ends its stages; it ends after the last frame', async () => {
      const stages = [map((f) => f), new NodePassThrough({ objectMode: true })];
      const stage = compose(...stages);
      const { out, error } = await runStage(stage, [textFrame('1'), textFrame('2')]);
      expect(error).to.equal(undefined);
      expect(payloads(out)).to.deep.equal(['1', '2']);
      expect(stages.map((s) => [s.writableFinished, s.readableEnded])).to.deep.equal([[true, true], [true, true]]);
    });
  });
});

describe('compose() through WebSocketProxy', () => {
  afterEach(releaseAll);

  it('compose(map, filter) on the client direction: upper-cased, filtered, echoed', async () => {
    const rig = await wsRig(echo, () => ({
      transforms: {
        client: [compose(
          map((f) => (f.type === 'text' ? { ...f, payload: Buffer.from(f.payload.toString().toUpperCase()) } : f)),
          filter((f) => f.payload.toString() !== 'DROP'),
        )],
      },
    }));
    const client = await rig.client();
    client.ws.send('one');
    client.ws.send('drop');
    client.ws.send('two');
    await client.waitMessages(2);
    client.ws.close(1000);
    await client.closed;
    expect(client.messages).to.deep.equal(['ONE', 'TWO']);
  });

  it('an inner stage that throws closes both sides with 1011', async () => {
    const rig = await wsRig(echo, () => ({
      transforms: { client: [compose(tap(() => undefined), tap((f) => {
        if (f.payload.toString() === 'break') throw new Error('inner broke');
      }))] },
    }));
    const client = await rig.client();
    client.ws.send('fine');
    await client.waitMessages(1);
    client.ws.send('break');
    expect((await client.closed).code).to.equal(1011);
  });

  it('the proxy\'s context reaches the stages inside a composite', async () => {
    const seen: string[] = [];
    const rig = await wsRig(echo, () => ({
      transforms: { upstream: [compose(compose(tap((_f, ctx) => void seen.push(`${ctx.role}:${ctx.proxy === undefined ? 'none' : 'proxy'}`))))] },
    }));
    const client = await rig.client();
    client.ws.send('x');
    await client.waitMessages(1);
    expect(seen).to.deep.equal(['upstream:proxy']);
  });
});
