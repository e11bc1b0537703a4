import { expect } from 'chai';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { FragmentStage, fragment } from '../../src/transforms/fragment.js';
import { randomFrames } from '../helpers/frames.js';
import { echo } from '../helpers/proxy-harness.js';
import { portOf, rawClient, text } from '../helpers/proxy-peers.js';
import { SeededRandom } from '../helpers/random.js';
import { messagesOf, runStage, sequenceError } from '../helpers/stage-run.js';
import { onCleanup, releaseAll, turns, wsRig } from '../proxy/rig.js';

describe('fragment()', () => {
  it('returns a FragmentStage and requires maxFrameSize, an integer >= 1', () => {
    expect(fragment({ maxFrameSize: 1 })).to.be.instanceOf(FragmentStage);
    expect(fragment({ maxFrameSize: 10 }).maxFrameSize).to.equal(10);
    expect(fragment({ maxFrameSize: Infinity }).maxFrameSize).to.equal(Infinity);
    const message = 'options.maxFrameSize must be an integer >= 1';
    expect(() => fragment(undefined as never)).to.throw(TypeError, message);
    expect(() => fragment({} as never)).to.throw(TypeError, message);
    for (const bad of [0, -1, 1.5, NaN, '10']) {
      expect(() => fragment({ maxFrameSize: bad as never }), String(bad)).to.throw(TypeError, message);
    }
    expect(() => fragment('x' as never)).to.throw(TypeError, 'options must be an object');
    expect(() => fragment({ maxFrameSize: 5, highWaterMark: 0 })).to.throw(TypeError, 'options.highWaterMark must be an integer >= 1');
  });

  it('passes frames of at most maxFrameSize and control frames unchanged (the same objects)', async () => {
    const frames = [textFrame('abc'), binaryFrame(''), pingFrame('x'.repeat(125)), pongFrame('long pong'), closeFrame(1000, 'a long reason')];
    const { out } = await runStage(fragment({ maxFrameSize: 3 }), frames);
    expect(out).to.have.length(frames.length);
    out.forEach((frame, i) => expect(frame).to.equal(frames[i]));
  });

  it('cuts a larger frame: the first piece keeps the type, the rest are continuations, FIN on the last', async () => {
    const { out } = await runStage(fragment({ maxFrameSize: 3 }), [textFrame('abcdefghij'), binaryFrame('123456')]);
    expect(out.map(text)).to.deep.equal([
      { type: 'text', fin: false, data: 'abc' },
      { type: 'continuation', fin: false, data: 'def' },
      { type: 'continuation', fin: false, data: 'ghi' },
      { type: 'continuation', fin: true, data: 'j' },
      { type: 'binary', fin: false, data: '123' },
      { type: 'continuation', fin: true, data: '456' },
    ]);
    expect(sequenceError(out)).to.equal(undefined);
  });

  it('pieces are views of the payload, not copies', async () => {
    const payload = Buffer.from('0123456789');
    const { out } = await runStage(fragment({ maxFrameSize: 4 }), [binaryFrame(payload)]);
    expect(out.map((f) => [f.payload.buffer === payload.buffer, f.payload.byteOffset - payload.byteOffset, f.payload.length]))
      .to.deep.equal([[true, 0, 4], [true, 4, 4], [true, 8, 2]]);
  });

  it('keeps RSV1 on the first piece only', async () => {
    const { out } = await runStage(fragment({ maxFrameSize: 2 }), [{ ...binaryFrame('abcde'), rsv1: true }]);
    expect(out.map((f) => f.rsv1)).to.deep.equal([true, false, false]);
  });

  it('cuts fragments of a message keeping the sequence valid; control frames pass in their place', async () => {
    const { out } = await runStage(fragment({ maxFrameSize: 3 }), [
      textFrame('abcdefg', false), pingFrame('1'), continuationFrame('hi', false), pongFrame('2'), continuationFrame('jklmn'),
    ]);
    expect(out.map(text)).to.deep.equal([
      { type: 'text', fin: false, data: 'abc' },
      { type: 'continuation', fin: false, data: 'def' },
      { type: 'continuation', fin: false, data: 'g' },
      { type: 'ping', fin: true, data: '1' },
      { type: 'continuation', fin: false, data: 'hi' },
      { type: 'pong', fin: true, data: '2' },
      { type: 'continuation', fin: false, data: 'jkl' },
      { type: 'continuation', fin: true, data: 'mn' },
    ]);
    expect(sequenceError(out)).to.equal(undefined);
  });

  it('a text frame may be cut inside a character; the message stays the same text', async () => {
    const { out } = await runStage(fragment({ maxFrameSize: 2 }), [textFrame('€€')]);
    expect(out.map((f) => f.payload.length)).to.deep.equal([2, 2, 2]);
    expect(Buffer.concat(out.map((f) => f.payload)).toString()).to.equal('€€');
  });

  it('respects backpressure while cutting: a reader that waits sees pieces queued a few at a time', async () => {
    const stage = fragment({ maxFrameSize: 1, highWaterMark: 4 });
    const payload = Buffer.alloc(2000, 7);
    stage.write(binaryFrame(payload));
    stage.end();
    await turns(10);
    expect(stage.readableLength).to.be.at.most(4);
    const out: Frame[] = [];
    for await (const frame of stage) {
      out.push(frame as Frame);
      expect(stage.readableLength).to.be.at.most(4);
    }
    expect(out).to.have.length(2000);
    expect(sequenceError(out)).to.equal(undefined);
    expect(Buffer.concat(out.map((f) => f.payload)).equals(payload)).to.equal(true);
  });

  it('destroyed while it cuts a frame, it pushes no further piece', async () => {
    const stage = fragment({ maxFrameSize: 1, highWaterMark: 2 });
    let pushes = 0;
    const push = stage.push.bind(stage);
    stage.push = (chunk: unknown) => {
      pushes++;
      return push(chunk);
    };
    const closed = new Promise((resolve) => stage.once('close', resolve));
    stage.write(binaryFrame(Buffer.alloc(100)));
    await turns();
    expect(pushes).to.be.within(1, 3);
    const before = pushes;
    stage.destroy();
    await closed;
    await turns();
    expect(pushes).to.equal(before);
  });

  for (const seed of [7, 8, 9, 2024, 31337]) {
    it(`always yields a valid sequence of the same messages, no data frame over the size (seed ${seed})`, async () => {
      const random = new SeededRandom(seed);
      const frames = randomFrames(random, 40, 70000);
      const maxFrameSize = random.pick([1, 7, 125, 126, 1000, 65536]);
      const { out, error } = await runStage(fragment({ maxFrameSize, highWaterMark: random.int(1, 16) }), frames);
      expect(error).to.equal(undefined);
      expect(sequenceError(out)).to.equal(undefined);
      const isData = (f: Frame) => f.type === 'text' || f.type === 'binary' || f.type === 'continuation';
      expect(out.filter((f) => isData(f) && f.payload.length > maxFrameSize)).to.deep.equal([]);
      expect(messagesOf(out)).to.deep.equal(messagesOf(frames));
      // Control frames: the same objects, in the same order, each after the same data bytes.
      const positions = (list: Frame[]) => {
        let bytes = 0;
        return list.flatMap((f) => {
          if (isData(f)) {
            bytes += f.payload.length;
            return [];
          }
          return [{ frame: f, after: bytes }];
        });
      };
      const got = positions(out);
      const want = positions(frames);
      expect(got).to.have.length(want.length);
      got.forEach((g, i) => {
        expect(g.frame).to.equal(want[i]!.frame);
        expect(g.after).to.equal(want[i]!.after);
      });
    });
  }
});

describe('fragment() through WebSocketProxy', () => {
  afterEach(releaseAll);

  it('on the upstream direction: a raw client gets the echo of 4500 bytes as five frames of at most 1000', async () => {
    const rig = await wsRig(echo, () => ({ transforms: { upstream: [fragment({ maxFrameSize: 1000 })] } }));
    const peer = await rawClient(portOf(rig.proxy.url));
    onCleanup(() => peer.destroy());
    const payload = Buffer.from('0123456789'.repeat(450));
    peer.send(textFrame(payload));
    const frames = await peer.waitFrames(5);
    expect(frames.map((f) => [f.type, f.fin, f.payload.length])).to.deep.equal([
      ['text', false, 1000], ['continuation', false, 1000], ['continuation', false, 1000], ['continuation', false, 1000], ['continuation', true, 500],
    ]);
    expect(Buffer.concat(frames.map((f) => f.payload)).equals(payload)).to.equal(true);
  });

  it('a ws client gets the cut message whole, as it was sent', async () => {
    const rig = await wsRig(echo, () => ({ transforms: { upstream: [fragment({ maxFrameSize: 7 })] } }));
    const client = await rig.client();
    const long = 'a message much longer than seven bytes, with ünïcödé cut anywhere';
    client.ws.send(long);
    client.ws.send(Buffer.alloc(100, 1));
    await client.waitMessages(2);
    expect(client.messages).to.deep.equal([long, Buffer.alloc(100, 1)]);
  });
});
