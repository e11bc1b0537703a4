import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { type SizeLimitOptions, SizeLimitStage, sizeLimit } from '../../src/transforms/size-limit.js';
import { until } from '../helpers/proxy-peers.js';
import { runStage } from '../helpers/stage-run.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

function plain(frames: Frame[]): [string, boolean, string][] {
  return frames.map((f) => [f.type, f.fin, f.payload.toString()]);
}

function expectTooLarge(error: Error | undefined, detail: string): void {
  expect(error).to.be.instanceOf(WebSocketProxyError);
  const err = error as WebSocketProxyError;
  expect(err.code).to.equal('WSP_ERR_MESSAGE_TOO_LARGE');
  expect(err.closeCode).to.equal(1009);
  expect(err.message).to.equal(`message exceeds its size limit: ${detail}`);
}

/** Resolves once the stream machinery has run (it works on process.nextTick and promises). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => process.nextTick(resolve));
}

describe('sizeLimit()', () => {
  it('returns a SizeLimitStage', () => {
    expect(sizeLimit({ maxMessageSize: 10 })).to.be.instanceOf(SizeLimitStage);
  });

  it('requires maxMessageSize, an integer >= 0 (or Infinity)', () => {
    const message = 'options.maxMessageSize must be an integer >= 0';
    for (const bad of [undefined, -1, 1.5, NaN, '10', null]) {
      expect(() => sizeLimit({ maxMessageSize: bad as number }), String(bad)).to.throw(TypeError, message);
    }
    expect(() => sizeLimit(undefined as unknown as SizeLimitOptions)).to.throw(TypeError, message);
    expect(() => sizeLimit({ maxMessageSize: 0 })).not.to.throw();
    expect(() => sizeLimit({ maxMessageSize: Infinity })).not.to.throw();
    expect(() => sizeLimit({ maxMessageSize: 1, highWaterMark: 0 })).to.throw(TypeError, 'options.highWaterMark must be an integer >= 1');
  });

  it('exactly the limit passes, in one frame or in fragments; every frame unchanged', async () => {
    const frames = [textFrame('1234567890'), binaryFrame('12345', false), continuationFrame('', false), continuationFrame('67890')];
    const { out, error } = await runStage(sizeLimit({ maxMessageSize: 10 }), frames);
    expect(error).to.equal(undefined);
    expect(out).to.have.length(4);
    out.forEach((frame, i) => expect(frame).to.equal(frames[i]));
  });

  it('one byte over fails with WSP_ERR_MESSAGE_TOO_LARGE (1009), before the offending frame is passed on', async () => {
    const { out, error } = await runStage(sizeLimit({ maxMessageSize: 10 }), [textFrame('ok'), binaryFrame('12345678901'), textFrame('never')]);
    expectTooLarge(error, '11 > 10');
    expect(plain(out)).to.deep.equal([['text', true, 'ok']]);
  });

  it('counts a message over its fragments: the fragments within the limit have passed when one goes over', async () => {
    const { out, error } = await runStage(sizeLimit({ maxMessageSize: 10 }), [
      textFrame('1234', false), continuationFrame('5678', false), continuationFrame('901'),
    ]);
    expectTooLarge(error, '11 > 10');
    expect(plain(out)).to.deep.equal([['text', false, '1234'], ['continuation', false, '5678']]);
  });

  it('does not count control frames, and counts each message afresh', async () => {
    const frames = [
      textFrame('12345', false), pingFrame('123456789'), pongFrame('123456789'), continuationFrame('67890'),
      binaryFrame('1234567890'), textFrame('123', false), continuationFrame('4567890'), closeFrame(1000, 'a long enough reason'),
    ];
    const { out, error } = await runStage(sizeLimit({ maxMessageSize: 10 }), frames);
    expect(error).to.equal(undefined);
    expect(out).to.have.length(frames.length);
  });

  it('maxMessageSize 0 lets only empty messages through', async () => {
    const { out, error } = await runStage(sizeLimit({ maxMessageSize: 0 }), [textFrame(''), binaryFrame('', false), continuationFrame(''), textFrame('x')]);
    expectTooLarge(error, '1 > 0');
    expect(out).to.have.length(3);
  });

  it('buffers nothing: each fragment passes before the next arrives', async () => {
    const stage = sizeLimit({ maxMessageSize: 100 });
    const out: Frame[] = [];
    stage.on('data', (frame: Frame) => out.push(frame));
    stage.write(textFrame('first', false));
    await settle();
    expect(plain(out)).to.deep.equal([['text', false, 'first']]);
    stage.write(continuationFrame('second', false));
    await settle();
    expect(plain(out)).to.deep.equal([['text', false, 'first'], ['continuation', false, 'second']]);
    stage.write(continuationFrame('last'));
    await settle();
    expect(out).to.have.length(3);
    stage.destroy();
  });

  describe('through a WebSocketProxy', () => {
    afterEach(releaseAll);

    it('a client message of exactly the limit reaches the upstream; one byte over gets the client 1009 and the upstream 1001', async () => {
      const received: string[] = [];
      const closes: number[] = [];
      const rig = await wsRig((ws: WebSocket) => {
        ws.on('message', (data: Buffer) => received.push(data.toString()));
        ws.on('close', (code: number) => closes.push(code));
      }, () => ({ transforms: { client: [sizeLimit({ maxMessageSize: 8 })] } }));
      const client = await rig.client();
      client.ws.send('1234', { fin: false });
      client.ws.send('5678', { fin: true });
      client.ws.send('123456789');
      const closed = await client.closed;
      await until(() => closes.length === 1);
      expect(received).to.deep.equal(['12345678']);
      expect(closed.code).to.equal(1009);
      expect(closes).to.deep.equal([1001]);
    });
  });
});
