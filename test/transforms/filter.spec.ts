import { expect } from 'chai';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { FilterStage, filter } from '../../src/transforms/filter.js';
import type { StageContext } from '../../src/transforms/stage.js';
import { randomFrames } from '../helpers/frames.js';
import { echo } from '../helpers/proxy-harness.js';
import { SeededRandom } from '../helpers/random.js';
import { delay, runStage, sequenceError } from '../helpers/stage-run.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

const data = (frames: Frame[]): string[] => frames.map((f) => `${f.type}:${f.payload.toString()}`);

describe('filter()', () => {
  it('returns a FilterStage and validates its arguments at once', () => {
    expect(filter(() => true)).to.be.instanceOf(FilterStage);
    expect(() => filter(undefined as never)).to.throw(TypeError, 'fn must be a function');
    expect(() => filter(() => true, 3 as never)).to.throw(TypeError, 'options must be an object');
    expect(() => filter(() => true, { control: 1 as never })).to.throw(TypeError, 'options.control must be a boolean');
    expect(() => filter(() => true, { highWaterMark: 1.5 })).to.throw(TypeError, 'options.highWaterMark must be an integer >= 1');
  });

  it('keeps the frames fn returns truthy for, drops the others', async () => {
    const { out } = await runStage(filter((f) => (f.payload.toString() === 'drop' ? 0 : 'yes')),
      [textFrame('a'), textFrame('drop'), binaryFrame('b'), binaryFrame('drop'), textFrame('c')]);
    expect(data(out)).to.deep.equal(['text:a', 'binary:b', 'text:c']);
  });

  it('keeps the order with an async fn whose delays vary', async () => {
    const delays = [20, 0, 12, 3, 0];
    let i = 0;
    const { out } = await runStage(filter(async (f) => {
      await delay(delays[i++]!);
      return f.payload.toString() !== 'x';
    }), [textFrame('1'), textFrame('x'), textFrame('2'), textFrame('3'), textFrame('x')]);
    expect(data(out)).to.deep.equal(['text:1', 'text:2', 'text:3']);
  });

  it('calls fn with the context', async () => {
    let seen: StageContext | undefined;
    await runStage(filter((_f, ctx) => {
      seen = ctx;
      return true;
    }, { context: { role: 'upstream', id: 'f1' } }), [textFrame('a')]);
    expect(seen).to.deep.include({ role: 'upstream', id: 'f1' });
  });

  describe('fragmented messages: decided on their first frame', () => {
    it('calls fn once per message; a dropped first frame drops its continuations', async () => {
      const calls: string[] = [];
      const { out } = await runStage(filter((f) => {
        calls.push(`${f.type}:${f.payload.toString()}`);
        return !f.payload.toString().startsWith('drop');
      }), [
        textFrame('drop-me', false), continuationFrame('keep?', false), continuationFrame('end'),
        binaryFrame('kept', false), continuationFrame('drop?', false), continuationFrame('end'),
      ]);
      expect(calls).to.deep.equal(['text:drop-me', 'binary:kept']);
      expect(data(out)).to.deep.equal(['binary:kept', 'continuation:drop?', 'continuation:end']);
      expect(sequenceError(out)).to.equal(undefined);
    });

    it('a control frame inside a dropped message still passes, in its place', async () => {
      const { out } = await runStage(filter((f) => f.type !== 'text'), [
        textFrame('a', false), pingFrame('1'), continuationFrame('b', false), pongFrame('2'), continuationFrame('c'), binaryFrame('d'),
      ]);
      expect(data(out)).to.deep.equal(['ping:1', 'pong:2', 'binary:d']);
    });

    it('with control: true, a control frame inside a message is judged on its own', async () => {
      const { out } = await runStage(filter((f) => f.type !== 'ping', { control: true }), [
        binaryFrame('a', false), pingFrame('1'), pongFrame('2'), continuationFrame('b'),
      ]);
      expect(data(out)).to.deep.equal(['binary:a', 'pong:2', 'continuation:b']);
    });

    it('the decision ends with the FIN continuation: the next message is judged afresh', async () => {
      const { out } = await runStage(filter((f) => f.payload.toString() !== 'x'), [
        textFrame('x', false), continuationFrame('y'), textFrame('z', false), continuationFrame('x'), textFrame('x'),
      ]);
      expect(data(out)).to.deep.equal(['text:z', 'continuation:x']);
    });

    it('a stray continuation (no message open) is judged by fn like a first frame', async () => {
      const calls: string[] = [];
      const { out } = await runStage(filter((f) => {
        calls.push(f.payload.toString());
        return f.payload.toString() === 'keep';
      }), [continuationFrame('keep'), continuationFrame('drop')]);
      expect(calls).to.deep.equal(['keep', 'drop']);
      expect(data(out)).to.deep.equal(['continuation:keep']);
    });
  });

  describe('control frames', () => {
    it('pass without a call by default', async () => {
      const calls: string[] = [];
      const frames = [pingFrame(), pongFrame(), textFrame('t'), closeFrame(1000)];
      const { out } = await runStage(filter((f) => {
        calls.push(f.type);
        return false;
      }), frames);
      expect(calls).to.deep.equal(['text']);
      expect(out).to.deep.equal([frames[0], frames[1], frames[3]]);
    });

    it('with control: true, pings and pongs may be dropped, but a close passes whatever fn says', async () => {
      const calls: string[] = [];
      const close = closeFrame(1001, 'bye');
      const { out } = await runStage(filter(async (f) => {
        calls.push(f.type);
        return false;
      }, { control: true }), [pingFrame(), pongFrame(), close]);
      expect(calls).to.deep.equal(['ping', 'pong', 'close']);
      expect(out).to.have.length(1);
      expect(out[0]).to.equal(close);
    });
  });

  it('a throw or a rejection fails the stream with that error; no later frame passes', async () => {
    const boom = new Error('boom');
    for (const fn of [
      (f: Frame) => {
        if (f.payload.toString() === 'bad') throw boom;
        return true;
      },
      async (f: Frame) => {
        await delay(1);
        if (f.payload.toString() === 'bad') throw boom;
        return true;
      },
    ]) {
      const { out, error } = await runStage(filter(fn), [textFrame('ok'), textFrame('bad'), textFrame('after')]);
      expect(error).to.equal(boom);
      expect(data(out)).to.deep.equal(['text:ok']);
    }
    const closeThrows = await runStage(filter((f) => {
      if (f.type === 'close') throw boom;
      return true;
    }, { control: true }), [closeFrame(1000)]);
    expect(closeThrows.error).to.equal(boom);
  });

  for (const seed of [1, 2, 3, 42, 1234, 99991]) {
    it(`always yields a valid sequence: the messages fn kept, whole (seed ${seed})`, async () => {
      const random = new SeededRandom(seed);
      const control = seed % 2 === 0;
      const frames = randomFrames(random, 40, 3000);
      const decisions = new Map<Frame, boolean>();
      const { out, error } = await runStage(filter(async (f) => {
        const keep = random.chance(0.5);
        decisions.set(f, keep);
        if (random.chance(0.3)) await delay(0);
        return keep;
      }, { control }), frames);
      expect(error).to.equal(undefined);
      expect(sequenceError(out)).to.equal(undefined);
      // What should come out, from the decisions fn made.
      const expected: Frame[] = [];
      let messageKept = false;
      for (const frame of frames) {
        expect(decisions.has(frame), `fn called for ${frame.type}`).to.equal(
          frame.type === 'text' || frame.type === 'binary' || (control && frame.type !== 'continuation'));
        if (frame.type === 'continuation') {
          if (messageKept) expected.push(frame);
        } else if (frame.type === 'text' || frame.type === 'binary') {
          messageKept = decisions.get(frame)!;
          if (messageKept) expected.push(frame);
        } else if (frame.type === 'close' || !control || decisions.get(frame)!) {
          expected.push(frame);
        }
      }
      expect(out).to.have.length(expected.length);
      out.forEach((frame, i) => expect(frame).to.equal(expected[i]));
    });
  }
});

describe('filter() through WebSocketProxy', () => {
  afterEach(releaseAll);

  it('drops the client\'s messages fn refuses, fragmented ones whole; the rest reaches the echo', async () => {
    const rig = await wsRig(echo, () => ({ transforms: { client: [filter((f) => !f.payload.toString().startsWith('secret'))] } }));
    const client = await rig.client();
    client.ws.send('one');
    client.ws.send('secret: do not pass');
    // ws sends a fragmented message with fin: false then fin: true.
    client.ws.send('secret', { fin: false });
    client.ws.send(' tail', { fin: true });
    client.ws.send('two');
    await client.waitMessages(2);
    client.ws.close(1000, 'done');
    await client.closed;
    expect(client.messages).to.deep.equal(['one', 'two']);
  });

  it('with control: true, a close refused by fn still completes the handshake', async () => {
    const rig = await wsRig(echo, () => ({ transforms: { client: [filter((f) => f.type !== 'close', { control: true })] } }));
    const client = await rig.client();
    client.ws.send('hi');
    await client.waitMessages(1);
    client.ws.close(4001, 'bye');
    expect(await client.closed).to.deep.equal({ code: 4001, reason: 'bye' });
  });
});
