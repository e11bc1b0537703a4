import { expect } from 'chai';
import sinon from 'sinon';
import type { WebSocket } from 'ws';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { type RateLimitOptions, RateLimitStage, rateLimit } from '../../src/transforms/rate-limit.js';
import { until } from '../helpers/proxy-peers.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

/**
 * sinon's fake timers, all of them (timers, Date, performance) but process.nextTick and
 * queueMicrotask, which the streams run on.
 */
function fakeTimers(): sinon.SinonFakeTimers {
  return sinon.useFakeTimers({ toNotFake: ['nextTick', 'queueMicrotask'] });
}

/** Lets the stream machinery run: it works on process.nextTick and promises, left real by fakeTimers(). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => process.nextTick(resolve));
}

/** A stage with its output recorded as `type:payload` labels, and its error. */
function observe(options: RateLimitOptions) {
  const stage = rateLimit(options);
  const out: string[] = [];
  const seen: { error: Error | undefined; ended: boolean } = { error: undefined, ended: false };
  stage.on('data', (frame: Frame) => out.push(`${frame.type}:${frame.payload.toString()}`));
  stage.on('error', (err: Error) => {
    seen.error = err;
  });
  stage.on('end', () => {
    seen.ended = true;
  });
  return { stage, out, seen };
}

describe('rateLimit()', () => {
  let clock: sinon.SinonFakeTimers;

  describe('options', () => {
    it('returns a RateLimitStage', () => {
      expect(rateLimit({ messagesPerSecond: 1 })).to.be.instanceOf(RateLimitStage);
      expect(rateLimit({ bytesPerSecond: 1, burst: 0.5, action: 'close' })).to.be.instanceOf(RateLimitStage);
    });

    it('requires a rate', () => {
      const message = 'options.messagesPerSecond or options.bytesPerSecond is required';
      expect(() => rateLimit(undefined as unknown as RateLimitOptions)).to.throw(TypeError, message);
      expect(() => rateLimit({})).to.throw(TypeError, message);
      expect(() => rateLimit({ burst: 2 })).to.throw(TypeError, message);
      expect(() => rateLimit(null as unknown as RateLimitOptions)).to.throw(TypeError, 'options must be an object');
    });

    it('validates each option', () => {
      for (const bad of [0, -1, Infinity, NaN, '5']) {
        expect(() => rateLimit({ messagesPerSecond: bad as number }), String(bad)).to.throw(TypeError, 'options.messagesPerSecond must be a finite number > 0');
        expect(() => rateLimit({ bytesPerSecond: bad as number }), String(bad)).to.throw(TypeError, 'options.bytesPerSecond must be a finite number > 0');
        expect(() => rateLimit({ messagesPerSecond: 1, burst: bad as number }), String(bad)).to.throw(TypeError, 'options.burst must be a finite number > 0');
      }
      expect(() => rateLimit({ messagesPerSecond: 1, action: 'drop' as 'close' })).to.throw(TypeError, "options.action must be 'delay' or 'close'");
      expect(() => rateLimit({ messagesPerSecond: 1, highWaterMark: 0 })).to.throw(TypeError, 'options.highWaterMark must be an integer >= 1');
    });
  });

  describe("action: 'delay' (fake timers)", () => {
    beforeEach(() => {
      clock = fakeTimers();
    });
    afterEach(() => clock.restore());

    it('holds the frames over the budget and releases them in order as it refills', async () => {
      const { stage, out } = observe({ messagesPerSecond: 2 });
      for (const n of [1, 2, 3, 4, 5]) stage.write(textFrame(`m${n}`));
      await settle();
      expect(out).to.deep.equal(['text:m1', 'text:m2']);
      clock.tick(499);
      await settle();
      expect(out).to.have.length(2);
      clock.tick(1);
      await settle();
      expect(out).to.deep.equal(['text:m1', 'text:m2', 'text:m3']);
      clock.tick(500);
      await settle();
      expect(out).to.have.length(4);
      clock.tick(500);
      await settle();
      expect(out).to.deep.equal(['text:m1', 'text:m2', 'text:m3', 'text:m4', 'text:m5']);
      expect(clock.countTimers()).to.equal(0);
      stage.destroy();
    });

    it('burst is the seconds of budget the buckets hold: they start full and refill no further', async () => {
      const { stage, out } = observe({ messagesPerSecond: 1, burst: 3 });
      for (const n of [1, 2, 3, 4]) stage.write(textFrame(`${n}`));
      await settle();
      expect(out).to.have.length(3);
      clock.tick(1000);
      await settle();
      expect(out).to.have.length(4);
      clock.tick(10000);
      for (const n of [5, 6, 7, 8]) stage.write(textFrame(`${n}`));
      await settle();
      expect(out).to.have.length(7);
      clock.tick(999);
      await settle();
      expect(out).to.have.length(7);
      clock.tick(1);
      await settle();
      expect(out).to.have.length(8);
      stage.destroy();
    });

    it('counts a message once, on its first frame', async () => {
      const { stage, out } = observe({ messagesPerSecond: 1 });
      for (const frame of [textFrame('a', false), pingFrame(), continuationFrame('b', false), continuationFrame('c'), binaryFrame('d')]) stage.write(frame);
      await settle();
      expect(out).to.deep.equal(['text:a', 'ping:', 'continuation:b', 'continuation:c']);
      clock.tick(1000);
      await settle();
      expect(out).to.have.length(5);
      stage.destroy();
    });

    it('counts the bytes of every data frame', async () => {
      const { stage, out } = observe({ bytesPerSecond: 10 });
      stage.write(binaryFrame('123456', false));
      stage.write(continuationFrame('123456'));
      await settle();
      expect(out).to.deep.equal(['binary:123456']);
      clock.tick(199);
      await settle();
      expect(out).to.have.length(1);
      clock.tick(1);
      await settle();
      expect(out).to.deep.equal(['binary:123456', 'continuation:123456']);
      stage.destroy();
    });

    it('a frame larger than the byte bucket passes once the bucket is full, leaving a debt the next frames wait out', async () => {
      const { stage, out } = observe({ bytesPerSecond: 10 });
      stage.write(binaryFrame('12345'));
      stage.write(binaryFrame('x'.repeat(25)));
      stage.write(binaryFrame('1'));
      await settle();
      expect(out).to.have.length(1);
      // 5 tokens left; the big frame waits for a full bucket (10), not for 25.
      clock.tick(500);
      await settle();
      expect(out).to.have.length(2);
      // The bucket is at -15: the 1-byte frame waits 1.6 s.
      clock.tick(1599);
      await settle();
      expect(out).to.have.length(2);
      clock.tick(1);
      await settle();
      expect(out).to.deep.equal(['binary:12345', `binary:${'x'.repeat(25)}`, 'binary:1']);
      stage.destroy();
    });

    it('applies both buckets: a frame waits for the slower', async () => {
      const { stage, out } = observe({ messagesPerSecond: 10, bytesPerSecond: 4 });
      stage.write(textFrame('1234'));
      stage.write(textFrame('12'));
      await settle();
      expect(out).to.have.length(1);
      clock.tick(499);
      await settle();
      expect(out).to.have.length(1);
      clock.tick(1);
      await settle();
      expect(out).to.have.length(2);
      stage.destroy();
    });

    it('passes pings and pongs at once, ahead of held data frames, and never charges them', async () => {
      const { stage, out } = observe({ messagesPerSecond: 1, bytesPerSecond: 1 });
      stage.write(textFrame('a'));
      stage.write(textFrame('b'));
      stage.write(pingFrame('p'.repeat(100)));
      stage.write(pongFrame('q'));
      await settle();
      expect(out).to.deep.equal(['text:a', `ping:${'p'.repeat(100)}`, 'pong:q']);
      clock.tick(1000);
      await settle();
      expect(out).to.have.length(4);
      expect(out[3]).to.equal('text:b');
      stage.destroy();
    });

    it('a close releases the held data frames at once, ahead of itself, and leaves no timer', async () => {
      const { stage, out } = observe({ messagesPerSecond: 1 });
      for (const frame of [textFrame('a'), textFrame('b'), textFrame('c'), closeFrame(1000, 'bye')]) stage.write(frame);
      await settle();
      expect(out).to.deep.equal(['text:a', 'text:b', 'text:c', 'close:bye']);
      expect(clock.countTimers()).to.equal(0);
      stage.destroy();
    });

    it('holds at most highWaterMark frames, then stops taking frames (backpressure), nothing dropped', async () => {
      const { stage, out } = observe({ messagesPerSecond: 1, highWaterMark: 2 });
      const calledBack: string[] = [];
      for (const label of ['a', 'b', 'c', 'd']) stage.write(textFrame(label), () => calledBack.push(label));
      await settle();
      // a passed; b and c are held; the write of c is not called back, so d is not even taken.
      expect(out).to.deep.equal(['text:a']);
      expect(calledBack).to.deep.equal(['a', 'b']);
      clock.tick(1000);
      await settle();
      expect(out).to.deep.equal(['text:a', 'text:b']);
      expect(calledBack).to.deep.equal(['a', 'b', 'c']);
      clock.tick(2000);
      await settle();
      expect(out).to.deep.equal(['text:a', 'text:b', 'text:c', 'text:d']);
      expect(calledBack).to.deep.equal(['a', 'b', 'c', 'd']);
      stage.destroy();
    });

    it('the end of input waits for the held frames to go out at the rate', async () => {
      const { stage, out, seen } = observe({ messagesPerSecond: 1 });
      stage.write(textFrame('a'));
      stage.write(textFrame('b'));
      stage.end();
      await settle();
      expect(out).to.deep.equal(['text:a']);
      expect(seen.ended).to.equal(false);
      clock.tick(1000);
      await settle();
      expect(out).to.deep.equal(['text:a', 'text:b']);
      expect(seen.ended).to.equal(true);
    });

    it('destroying the stage clears its timer: none is left', async () => {
      const { stage, out } = observe({ messagesPerSecond: 1 });
      stage.write(textFrame('a'));
      stage.write(textFrame('b'));
      await settle();
      expect(clock.countTimers()).to.equal(1);
      stage.destroy();
      await settle();
      expect(clock.countTimers()).to.equal(0);
      clock.tick(5000);
      await settle();
      expect(out).to.deep.equal(['text:a']);
    });
  });

  describe("action: 'close' (fake timers)", () => {
    beforeEach(() => {
      clock = fakeTimers();
    });
    afterEach(() => clock.restore());

    it('a message over the budget fails with WSP_ERR_RATE_LIMITED (1008); control frames never do', async () => {
      const { stage, out, seen } = observe({ messagesPerSecond: 1, action: 'close' });
      for (const frame of [textFrame('a', false), pingFrame(), continuationFrame('b'), pongFrame(), textFrame('c')]) stage.write(frame);
      await settle();
      expect(out).to.deep.equal(['text:a', 'ping:', 'continuation:b', 'pong:']);
      expect(seen.error).to.be.instanceOf(WebSocketProxyError);
      const err = seen.error as WebSocketProxyError;
      expect(err.code).to.equal('WSP_ERR_RATE_LIMITED');
      expect(err.closeCode).to.equal(1008);
      expect(err.message).to.equal('rate limit exceeded: more than 1 messages per second');
      expect(clock.countTimers()).to.equal(0);
    });

    it('names the byte bucket when it is the one short; within the rate nothing fails', async () => {
      const { stage, out, seen } = observe({ bytesPerSecond: 5, action: 'close' });
      stage.write(binaryFrame('abc'));
      await settle();
      clock.tick(400);
      stage.write(binaryFrame('abcd'));
      await settle();
      expect(seen.error).to.equal(undefined);
      stage.write(binaryFrame('a'));
      await settle();
      expect(out).to.deep.equal(['binary:abc', 'binary:abcd']);
      expect((seen.error as WebSocketProxyError).message).to.equal('rate limit exceeded: more than 5 bytes per second');
    });
  });

  describe('through a WebSocketProxy', () => {
    afterEach(releaseAll);

    function recordingUpstream() {
      const events: string[] = [];
      const onConnection = (ws: WebSocket) => {
        ws.on('message', (data: Buffer) => events.push(`message:${data.toString()}`));
        ws.on('close', (code: number, reason: Buffer) => events.push(`close:${code}:${reason.toString()}`));
      };
      return { events, onConnection };
    }

    it("action 'close': the client's message over the budget gets the client 1008 and the upstream 1001", async () => {
      const upstream = recordingUpstream();
      const rig = await wsRig(upstream.onConnection, () => ({ transforms: { client: [rateLimit({ messagesPerSecond: 0.01, action: 'close' })] } }));
      const client = await rig.client();
      client.ws.send('one');
      client.ws.send('two');
      const closed = await client.closed;
      await until(() => upstream.events.some((e) => e.startsWith('close:')));
      expect(upstream.events.map((e) => e.replace(/^(close:\d+):.*/, '$1'))).to.deep.equal(['message:one', 'close:1001']);
      expect(closed.code).to.equal(1008);
    });

    it("action 'delay': the messages arrive in order, and a close is not held behind them (the held ones go at once)", async () => {
      const upstream = recordingUpstream();
      // One message per 100 s after the first: without the release on close this test would time out.
      const rig = await wsRig(upstream.onConnection, () => ({ transforms: { client: [rateLimit({ messagesPerSecond: 0.01, burst: 100 })] } }));
      const client = await rig.client();
      for (const word of ['a', 'b', 'c']) client.ws.send(word);
      client.ws.close(1000, 'done');
      expect(await client.closed).to.deep.equal({ code: 1000, reason: 'done' });
      await until(() => upstream.events.length === 4);
      expect(upstream.events).to.deep.equal(['message:a', 'message:b', 'message:c', 'close:1000:done']);
    });

    it("action 'delay' on the upstream direction: the client gets every message, in order", async () => {
      const rig = await wsRig((ws) => {
        for (let i = 0; i < 5; i++) ws.send(`m${i}`);
      }, () => ({ transforms: { upstream: [rateLimit({ messagesPerSecond: 200, burst: 0.005 })] } }));
      const client = await rig.client();
      await client.waitMessages(5);
      expect(client.messages).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4']);
    });
  });
});
