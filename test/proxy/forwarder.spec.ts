import { Duplex } from 'node:stream';
import { expect } from 'chai';
import sinon from 'sinon';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { FrameParser } from '../../src/protocol/parser.js';
import { Forwarder, type ForwarderContext, Outbox, type OutboxHooks } from '../../src/proxy/forwarder.js';
import type { FrameObserver, OnFrameResult, ProxyRole } from '../../src/proxy/options.js';
import { FrameWritable } from '../../src/streams/frame-writable.js';
import { MASK_IN_PLACE_MIN } from '../../src/protocol/encode.js';

/**
 * A byte sink standing in for a socket: records what is written; with `hold` set, it keeps every
 * write's callback (a peer that stops reading) until `release()`.
 */
class Sink extends Duplex {
  readonly chunks: Buffer[] = [];
  hold = false;
  private held: (() => void)[] = [];

  constructor() {
    super({ writableHighWaterMark: 1024 });
  }

  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.chunks.push(chunk);
    if (this.hold) this.held.push(callback);
    else callback();
  }

  override _read(): void {}

  release(): void {
    this.hold = false;
    const held = this.held.splice(0);
    for (const callback of held) callback();
  }

  /** The frames written so far (an unmasked, server-role stream). */
  frames(): Frame[] {
    const parser = new FrameParser({ role: 'client', maxFrameSize: 1 << 30, maxBufferedBytes: (1 << 30) + 14, validateUtf8: false, allowRsv1: false });
    parser.push(Buffer.concat(this.chunks));
    const out: Frame[] = [];
    for (let frame = parser.next(); frame !== null; frame = parser.next()) out.push(frame);
    return out;
  }
}

function view(frame: Frame): string {
  return `${frame.type}${frame.fin ? '' : '(more)'}:${frame.payload.toString()}${frame.code === undefined ? '' : `:${frame.code}`}`;
}

/** Lets nextTick and immediate callbacks run (writes are corked until the next tick). */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface Rig {
  sink: Sink;
  writable: FrameWritable;
  outbox: Outbox;
  closes: Frame[];
  failures: Error[];
  /** How many times `onPingWritten` was called. */
  pingsWritten: { count: number };
}

function outboxRig(sendTimeout?: number, maxQueuedBytes = Infinity): Rig {
  const sink = new Sink();
  const writable = new FrameWritable(sink, { role: 'server', highWaterMark: 2 });
  writable.on('error', () => undefined);
  const closes: Frame[] = [];
  const failures: Error[] = [];
  const pingsWritten = { count: 0 };
  const hooks: OutboxHooks = {
    onCloseSent: (_role, frame) => closes.push(frame),
    onFailure: (_role, error) => failures.push(error),
    onPingWritten: () => pingsWritten.count++,
  };
  const outbox = new Outbox('client', writable, sendTimeout, hooks, { checkText: false, maxQueuedBytes });
  return { sink, writable, outbox, closes, failures, pingsWritten };
}

/** Forwards a frame and resolves with the callback's error (undefined for none) and forward()'s return. */
function forward(outbox: Outbox, frame: Frame): Promise<{ error: Error | undefined; sent: boolean }> {
  return new Promise((resolve) => {
    let sent = false;
    sent = outbox.forward(frame, (error) => queueMicrotask(() => resolve({ error: error ?? undefined, sent })));
  });
}

describe('Outbox', () => {
  it('writes forwarded frames in order and calls back', async () => {
    const { sink, outbox } = outboxRig();
    expect(await forward(outbox, textFrame('a'))).to.deep.equal({ error: undefined, sent: true });
    expect(await forward(outbox, pingFrame('p'))).to.deep.equal({ error: undefined, sent: true });
    expect(await forward(outbox, binaryFrame('b'))).to.deep.equal({ error: undefined, sent: true });
    await flush();
    expect(sink.frames().map(view)).to.deep.equal(['text:a', 'ping:p', 'binary:b']);
  });

  it('holds an injected data message while a forwarded fragmented message is open; control frames go at once', async () => {
    const { sink, outbox } = outboxRig();
    await forward(outbox, textFrame('one', false));
    outbox.inject(textFrame('injected 1'));
    outbox.inject(pingFrame('now'));
    outbox.inject(binaryFrame('injected 2'));
    await forward(outbox, continuationFrame('two', false));
    await flush();
    expect(sink.frames().map(view)).to.deep.equal(['text(more):one', 'ping:now', 'continuation(more):two']);
    await forward(outbox, continuationFrame('three'));
    outbox.inject(textFrame('injected 3'));
    await flush();
    expect(sink.frames().map(view)).to.deep.equal([
      'text(more):one', 'ping:now', 'continuation(more):two', 'continuation:three', 'text:injected 1', 'binary:injected 2', 'text:injected 3',
    ]);
  });

  it('inject() takes whole messages and sendable control frames only', () => {
    const { outbox } = outboxRig();
    const code = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        return (err as WebSocketProxyError).code;
      }
      return undefined;
    };
    expect(code(() => outbox.inject(textFrame('x', false)))).to.equal('WSP_ERR_INVALID_FRAME');
    expect(code(() => outbox.inject(continuationFrame('x')))).to.equal('WSP_ERR_INVALID_FRAME');
    expect(code(() => outbox.inject({ ...binaryFrame('x'), rsv1: true }))).to.equal('WSP_ERR_INVALID_FRAME');
    expect(code(() => outbox.inject(pongFrame(Buffer.alloc(126))))).to.equal('WSP_ERR_INVALID_FRAME');
    expect(code(() => outbox.inject({ ...pingFrame('x'), fin: false }))).to.equal('WSP_ERR_INVALID_FRAME');
  });

  it('fails a forwarded frame out of sequence without writing it (the writable stays usable)', async () => {
    const { sink, outbox, writable } = outboxRig();
    const stray = await forward(outbox, continuationFrame('stray'));
    expect(stray.error).to.be.instanceOf(WebSocketProxyError);
    expect((stray.error as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_FRAME');
    expect(stray.sent).to.equal(false);
    await forward(outbox, textFrame('open', false));
    const interleaved = await forward(outbox, binaryFrame('inside'));
    expect((interleaved.error as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_FRAME');
    await forward(outbox, continuationFrame('end'));
    await flush();
    expect(writable.destroyed).to.equal(false);
    expect(sink.frames().map(view)).to.deep.equal(['text(more):open', 'continuation:end']);
  });

  it('sends one close frame at most, reports it, and drops what may not follow it', async () => {
    const { sink, outbox, closes } = outboxRig();
    await forward(outbox, textFrame('open', false));
    outbox.inject(textFrame('held'));
    expect(outbox.sendClose(1000, 'bye')).to.equal(true);
    expect(outbox.sendClose(1001, 'again')).to.equal(false);
    expect(closes.map(view)).to.deep.equal(['close:bye:1000']);
    expect(outbox.closeSent && view(outbox.closeSent)).to.equal('close:bye:1000');
    expect(await forward(outbox, continuationFrame('late'))).to.deep.equal({ error: undefined, sent: false });
    expect(() => outbox.inject(pingFrame())).to.throw(WebSocketProxyError).with.property('code', 'WSP_ERR_WRITE_AFTER_CLOSE');
    await flush();
    // The held message was dropped with the close: nothing after it.
    expect(sink.frames().map(view)).to.deep.equal(['text(more):open', 'close:bye:1000']);
  });

  it('an empty close (no code) is sent as an empty close frame', async () => {
    const { sink, outbox } = outboxRig();
    expect(outbox.sendClose(undefined, 'ignored')).to.equal(true);
    await flush();
    expect(sink.frames().map(view)).to.deep.equal(['close:']);
  });

  describe('#ping', () => {
    it('goes in order with forwarded frames, also inside a fragmented message, and reports when written', async () => {
      const { sink, outbox, pingsWritten } = outboxRig();
      await forward(outbox, textFrame('one', false));
      expect(outbox.ping(pingFrame('keepalive'))).to.equal(true);
      await forward(outbox, continuationFrame('two'));
      await flush();
      expect(sink.frames().map(view)).to.deep.equal(['text(more):one', 'ping:keepalive', 'continuation:two']);
      expect(pingsWritten.count).to.equal(1);
    });

    it('is not the user\'s: maxQueuedBytes does not count it, and send() may still queue up to it', async () => {
      const { sink, outbox } = outboxRig(undefined, 10);
      expect(outbox.ping(pingFrame('a ping longer than ten bytes'))).to.equal(true);
      expect(() => outbox.inject(textFrame('0123456789'))).not.to.throw();
      await flush();
      expect(sink.frames().map(view)).to.deep.equal(['ping:a ping longer than ten bytes', 'text:0123456789']);
    });

    it('a ping behind frames the socket does not take is reported only once it is written', async () => {
      const { sink, outbox, pingsWritten } = outboxRig();
      sink.hold = true;
      const big = Buffer.alloc(64 * 1024);
      for (let i = 0; i < 4; i++) outbox.forward(binaryFrame(big), () => undefined);
      outbox.ping(pingFrame('late'));
      await flush();
      expect(pingsWritten.count).to.equal(0);
      expect(outbox.full).to.equal(true);
      sink.release();
      await flush();
      expect(pingsWritten.count).to.equal(1);
      expect(sink.frames().map(view).at(-1)).to.equal('ping:late');
    });

    it('returns false and sends nothing after a close frame or dispose()', async () => {
      const { sink, outbox, pingsWritten } = outboxRig();
      outbox.sendClose(1000);
      expect(outbox.ping(pingFrame('x'))).to.equal(false);
      const other = outboxRig();
      other.outbox.dispose();
      expect(other.outbox.ping(pingFrame('x'))).to.equal(false);
      await flush();
      expect(sink.frames().map(view)).to.deep.equal(['close::1000']);
      expect(other.sink.chunks).to.deep.equal([]);
      expect(pingsWritten.count + other.pingsWritten.count).to.equal(0);
    });
  });

  it('waits while the socket is full and calls back at drain', async () => {
    const { sink, outbox } = outboxRig();
    sink.hold = true;
    const big = Buffer.alloc(64 * 1024);
    const results: (Error | undefined)[] = [];
    let i = 0;
    // Forward until the outbox has to wait.
    for (; i < 10; i++) {
      let called = false;
      outbox.forward(binaryFrame(big), (err) => {
        called = true;
        results.push(err ?? undefined);
      });
      await flush();
      if (!called) break;
    }
    expect(i).to.be.below(10);
    const before = results.length;
    sink.release();
    await flush();
    expect(results.length).to.equal(before + 1);
    expect(results.every((e) => e === undefined)).to.equal(true);
  });

  it('sendTimeout: a socket that accepts nothing for that long fails the side (WSP_ERR_SEND_TIMEOUT)', async () => {
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: false });
    try {
      const { sink, outbox, failures } = outboxRig(500);
      sink.hold = true;
      const errors: (Error | undefined)[] = [];
      let waiting = false;
      for (let i = 0; i < 10 && !waiting; i++) {
        let called = false;
        outbox.forward(binaryFrame(Buffer.alloc(64 * 1024)), (err) => {
          called = true;
          errors.push(err ?? undefined);
        });
        await flush();
        waiting = !called;
      }
      expect(waiting).to.equal(true);
      await clock.tickAsync(499);
      expect(failures).to.deep.equal([]);
      await clock.tickAsync(1);
      expect(failures).to.have.length(1);
      expect(failures[0]).to.deep.include({ code: 'WSP_ERR_SEND_TIMEOUT', closeCode: 1001 });
      expect(failures[0]!.message).to.equal('send timed out: the client accepted no bytes for 500 ms');
      expect(errors[errors.length - 1]).to.equal(failures[0]);
      expect(outbox.failure).to.equal(failures[0]);
      expect(await forward(outbox, textFrame('after'))).to.deep.equal({ error: failures[0], sent: false });
      expect(() => outbox.inject(textFrame('after'))).to.throw().that.equals(failures[0]);
      expect(outbox.sendClose(1001)).to.equal(false);
      expect(clock.countTimers()).to.equal(0);
      outbox.dispose();
      sink.destroy();
    } finally {
      clock.restore();
    }
  });

  it('a drain before sendTimeout clears the timer', async () => {
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: false });
    try {
      const { sink, outbox, failures } = outboxRig(500);
      sink.hold = true;
      let waiting = false;
      for (let i = 0; i < 10 && !waiting; i++) {
        let called = false;
        outbox.forward(binaryFrame(Buffer.alloc(64 * 1024)), () => {
          called = true;
        });
        await flush();
        waiting = !called;
      }
      await clock.tickAsync(400);
      sink.release();
      await flush();
      expect(clock.countTimers()).to.equal(0);
      await clock.tickAsync(1000);
      expect(failures).to.deep.equal([]);
    } finally {
      clock.restore();
    }
  });

  it('the writable closing fails the side (WSP_ERR_SOCKET_CLOSED); dispose() stops listening', async () => {
    const { sink, writable, outbox, failures } = outboxRig();
    writable.destroy();
    await flush();
    expect(failures.map((e) => (e as WebSocketProxyError).code)).to.deep.equal(['WSP_ERR_SOCKET_CLOSED']);
    expect(outbox.failure).to.equal(failures[0]);
    sink.destroy();
    const other = outboxRig();
    other.outbox.dispose();
    other.writable.destroy();
    await flush();
    expect(other.failures).to.deep.equal([]);
    other.sink.destroy();
  });

  it('dispose() fails a waiting callback', async () => {
    const { sink, outbox } = outboxRig();
    sink.hold = true;
    let error: Error | null | undefined = null;
    for (let i = 0; i < 10 && error === null; i++) {
      let called = false;
      outbox.forward(binaryFrame(Buffer.alloc(64 * 1024)), (err) => {
        called = true;
        if (err) error = err;
      });
      await flush();
      if (!called) {
        outbox.dispose();
        await flush();
        break;
      }
    }
    expect(error).to.have.property('code', 'WSP_ERR_SOCKET_CLOSED');
    sink.destroy();
  });
});

describe('Forwarder', () => {
  interface ForwarderRig {
    forwarder: Forwarder;
    sink: Sink;
    outbox: Outbox;
    inputs: string[];
    drops: [string, boolean][];
    closes: string[];
    errors: Error[];
  }

  function forwarderRig(options: {
    onFrame?: (frame: Frame) => OnFrameResult | Promise<OnFrameResult>;
    forwardClose?: boolean;
    from?: ProxyRole;
    observer?: FrameObserver;
    onObserverError?: (error: Error) => void;
  } = {}): ForwarderRig {
    const { sink, outbox } = outboxRig();
    const inputs: string[] = [];
    const drops: [string, boolean][] = [];
    const closes: string[] = [];
    const context: ForwarderContext = {
      from: options.from ?? 'upstream',
      to: outbox,
      onFrame: options.onFrame,
      onInput: (frame) => inputs.push(view(frame)),
      onDrop: (frame, anyway) => drops.push([view(frame), anyway]),
      onClose: (frame) => {
        closes.push(view(frame));
        return options.forwardClose ?? true;
      },
      observer: options.observer,
      onObserverError: options.onObserverError,
    };
    const forwarder = new Forwarder(context);
    const errors: Error[] = [];
    forwarder.on('error', (err: Error) => errors.push(err));
    return { forwarder, sink, outbox, inputs, drops, closes, errors };
  }

  function writeAll(forwarder: Forwarder, frames: Frame[]): Promise<void> {
    return new Promise((resolve) => {
      for (const frame of frames) forwarder.write(frame);
      forwarder.end(() => resolve());
      forwarder.once('error', () => resolve());
    });
  }

  describe('frames relayed in pieces (cut-through)', () => {
    const piece = (offset: number, n: number, length: number): Frame =>
      ({ type: 'binary', fin: true, rsv1: false, payload: Buffer.alloc(n, 0x61), partial: { offset, length } });

    it('holds pings, injected control frames and a close until the last piece, then sends them in order', async () => {
      const rig = outboxRig();
      await forward(rig.outbox, piece(0, 4, 10));
      expect(rig.outbox.unfinishedFrame).to.equal(true);
      expect(rig.outbox.ping(pingFrame('k'))).to.equal(true);
      expect(rig.outbox.inject(pongFrame('i'))).to.equal(false);
      expect(rig.outbox.sendClose(1000, 'bye')).to.equal(true);
      // A new frame after the close asked for is dropped, as after a close sent.
      await flush();
      expect(Buffer.concat(rig.sink.chunks)).to.have.length(2 + 4);
      expect(rig.closes).to.deep.equal([]);
      await forward(rig.outbox, piece(4, 6, 10));
      expect((await forward(rig.outbox, binaryFrame('late'))).sent).to.equal(false);
      await flush();
      expect(rig.outbox.unfinishedFrame).to.equal(false);
      expect(rig.sink.frames().map(view)).to.deep.equal(['binary:aaaaaaaaaa', 'ping:k', 'pong:i', 'close:bye:1000']);
      expect(rig.closes.map(view)).to.deep.equal(['close:bye:1000']);
      expect(rig.pingsWritten.count).to.equal(1);
    });

    it('holds an injected message until the last piece, even of a final (fin) frame', async () => {
      const rig = outboxRig();
      await forward(rig.outbox, piece(0, 4, 10));
      expect(rig.outbox.inject(textFrame('injected'))).to.equal(false);
      await forward(rig.outbox, piece(4, 6, 10));
      await flush();
      expect(rig.sink.frames().map(view)).to.deep.equal(['binary:aaaaaaaaaa', 'text:injected']);
    });

    it('drops the receiving side when its direction ends mid-frame: socket destroyed, no close, nothing reported', async () => {
      const rig = forwarderRig();
      rig.forwarder.write(piece(0, 4, 10));
      await flush();
      expect(rig.outbox.unfinishedFrame).to.equal(true);
      rig.forwarder.destroy(new Error('the source failed'));
      await flush();
      expect(rig.sink.destroyed).to.equal(true);
      expect(rig.outbox.sendClose(1001)).to.equal(false);
      expect(Buffer.concat(rig.sink.chunks)).to.have.length(2 + 4);
    });

    it('lets a direction that ends between frames close as usual', async () => {
      const rig = forwarderRig();
      rig.forwarder.write(piece(0, 4, 4));
      await flush();
      rig.forwarder.destroy();
      await flush();
      expect(rig.sink.destroyed).to.equal(false);
      expect(rig.outbox.sendClose(1001)).to.equal(true);
    });
  });

  describe('payload ownership (ownsPayloads)', () => {
    /** A forwarder writing to a client-role (masking) writer with a fixed key; the sink records bytes. */
    function maskingRig(ownsPayloads: boolean | undefined, onFrame?: (frame: Frame) => OnFrameResult): { forwarder: Forwarder; sink: Sink } {
      const sink = new Sink();
      const writable = new FrameWritable(sink, { role: 'client', generateMask: (key) => key.fill(0x5a) });
      writable.on('error', () => undefined);
      const hooks: OutboxHooks = { onCloseSent: () => undefined, onFailure: () => undefined };
      const outbox = new Outbox('upstream', writable, undefined, hooks, { checkText: false, maxQueuedBytes: Infinity });
      const forwarder = new Forwarder({
        from: 'client', to: outbox, ownsPayloads, onFrame,
        onInput: () => undefined, onDrop: () => undefined, onClose: () => true,
      });
      return { forwarder, sink };
    }

    const size = MASK_IN_PLACE_MIN + 1;
    const masked = (data: Buffer): Buffer => Buffer.from(data.map((b) => b ^ 0x5a));

    it('hands a large data payload over to the writer, which masks it in place', async () => {
      const { forwarder, sink } = maskingRig(true);
      const payload = Buffer.alloc(size, 0x31);
      const small = Buffer.alloc(10, 0x32);
      await writeAll(forwarder, [binaryFrame(payload), textFrame(small)]);
      await flush();
      expect(payload.equals(masked(Buffer.alloc(size, 0x31)))).to.equal(true);
      expect(small.equals(Buffer.alloc(10, 0x32))).to.equal(true);
      expect(Buffer.concat(sink.chunks).subarray(8, 8 + size).equals(payload)).to.equal(true);
    });

    for (const [name, owns, onFrame] of [
      ['without ownsPayloads', undefined, undefined],
      ['with ownsPayloads: false', false, undefined],
      ['with a pass-through onFrame (user code saw the payload), whatever ownsPayloads says', true, (frame: Frame): OnFrameResult => frame.payload],
    ] as const) {
      it(`never modifies a payload ${name}`, async () => {
        const { forwarder, sink } = maskingRig(owns, onFrame);
        const payload = Buffer.alloc(size, 0x31);
        await writeAll(forwarder, [binaryFrame(payload)]);
        await flush();
        expect(payload.equals(Buffer.alloc(size, 0x31))).to.equal(true);
        expect(Buffer.concat(sink.chunks).subarray(8, 8 + size).equals(masked(payload))).to.equal(true);
      });
    }
  });

  it('without onFrame forwards every frame unchanged, in order', async () => {
    const rig = forwarderRig();
    await writeAll(rig.forwarder, [textFrame('a', false), pingFrame('1'), continuationFrame('b'), closeFrame(1000, 'x')]);
    await flush();
    expect(rig.sink.frames().map(view)).to.deep.equal(['text(more):a', 'ping:1', 'continuation:b', 'close:x:1000']);
    expect(rig.inputs).to.deep.equal(['text(more):a', 'ping:1', 'continuation:b', 'close:x:1000']);
    expect(rig.closes).to.deep.equal(['close:x:1000']);
  });

  it('calls async onFrame one frame at a time, keeping order', async () => {
    const started: string[] = [];
    let active = 0;
    let maxActive = 0;
    const rig = forwarderRig({
      onFrame: async (frame) => {
        active++;
        maxActive = Math.max(maxActive, active);
        started.push(frame.payload.toString());
        // Earlier frames take longer.
        await new Promise((resolve) => setTimeout(resolve, 10 - started.length * 2));
        active--;
        return `${frame.payload.toString()}!`;
      },
    });
    await writeAll(rig.forwarder, ['1', '2', '3', '4'].map((d) => textFrame(d)));
    await flush();
    expect(maxActive).to.equal(1);
    expect(rig.sink.frames().map(view)).to.deep.equal(['text:1!', 'text:2!', 'text:3!', 'text:4!']);
  });

  it('drops frames onFrame returns null/undefined for, except close frames (forwarded unchanged)', async () => {
    const rig = forwarderRig({ onFrame: (frame) => (frame.payload.toString() === 'keep' ? frame.payload : null) });
    await writeAll(rig.forwarder, [textFrame('drop'), textFrame('keep'), pongFrame('drop'), closeFrame(1001, 'drop')]);
    await flush();
    expect(rig.sink.frames().map(view)).to.deep.equal(['text:keep', 'close:drop:1001']);
    expect(rig.drops).to.deep.equal([['text:drop', false], ['pong:drop', false], ['close:drop:1001', true]]);
  });

  it('does not forward a close frame the proxy declines (onClose returns false)', async () => {
    const rig = forwarderRig({ forwardClose: false });
    await writeAll(rig.forwarder, [textFrame('a'), closeFrame(1000, 'reply')]);
    await flush();
    expect(rig.sink.frames().map(view)).to.deep.equal(['text:a']);
    expect(rig.closes).to.deep.equal(['close:reply:1000']);
  });

  it('calls the observer before onFrame; a frame it holds keeps the frame busy (afterCurrent waits) until released or dropped', async () => {
    const order: string[] = [];
    const holds: ((out: Frame | null) => void)[] = [];
    const rig = forwarderRig({
      observer: {
        observe: (frame) => {
          order.push(`observe ${view(frame)}`);
          return frame.payload.toString().startsWith('hold') ? new Promise<Frame | null>((resolve) => holds.push(resolve)) : undefined;
        },
      },
      onFrame: (frame) => {
        order.push(`onFrame ${view(frame)}`);
        return frame.payload;
      },
    });
    const done = writeAll(rig.forwarder, [textFrame('a'), textFrame('hold 1'), textFrame('hold 2'), textFrame('b')]);
    await flush();
    expect(holds).to.have.length(1);
    expect(rig.forwarder.busy).to.equal(true);
    let deferred = false;
    rig.forwarder.afterCurrent(() => {
      deferred = true;
    });
    expect(deferred).to.equal(false);
    holds[0]!(textFrame('edited'));
    await flush();
    expect(deferred).to.equal(true);
    holds[1]!(null);
    await done;
    await flush();
    expect(order).to.deep.equal(['observe text:a', 'onFrame text:a', 'observe text:hold 1', 'onFrame text:edited', 'observe text:hold 2', 'observe text:b', 'onFrame text:b']);
    expect(rig.sink.frames().map(view)).to.deep.equal(['text:a', 'text:edited', 'text:b']);
    expect(rig.inputs).to.have.length(4);
  });

  it('detaches an observer that throws (reported once): the frame and those after it go on unobserved', async () => {
    const reported: string[] = [];
    let calls = 0;
    const rig = forwarderRig({
      observer: {
        observe: () => {
          calls++;
          throw new Error('bug');
        },
      },
      onObserverError: (err) => reported.push(err.message),
    });
    await writeAll(rig.forwarder, [textFrame('a'), textFrame('b')]);
    await flush();
    expect(calls).to.equal(1);
    expect(reported).to.deep.equal(['bug']);
    expect(rig.errors).to.deep.equal([]);
    expect(rig.sink.frames().map(view)).to.deep.equal(['text:a', 'text:b']);
  });

  it('afterCurrent(): runs at once when idle, right after the frame being processed otherwise', async () => {
    const order: string[] = [];
    let forwarder: Forwarder | undefined;
    const rig = forwarderRig({
      onFrame: (frame) => {
        if (frame.payload.toString() === 'then close') {
          forwarder!.afterCurrent(() => {
            order.push(`deferred, sink had ${rig.sink.chunks.length} chunks`);
            rig.outbox.sendClose(4000, 'after');
          });
          order.push('onFrame returned');
        }
        return frame.payload;
      },
    });
    forwarder = rig.forwarder;
    let ranNow = false;
    rig.forwarder.afterCurrent(() => {
      ranNow = true;
    });
    expect(ranNow).to.equal(true);
    expect(rig.forwarder.busy).to.equal(false);
    await writeAll(rig.forwarder, [textFrame('first'), textFrame('then close'), textFrame('dropped after close')]);
    await flush();
    expect(order[0]).to.equal('onFrame returned');
    expect(order[1]).to.match(/^deferred/);
    expect(rig.sink.frames().map(view)).to.deep.equal(['text:first', 'text:then close', 'close:after:4000']);
  });

  for (const mode of ['throws', 'rejects', 'returns a number'] as const) {
    it(`fails the stream when onFrame ${mode}; nothing of that frame is forwarded`, async () => {
      const boom = new Error('boom');
      const rig = forwarderRig({
        onFrame: (frame) => {
          if (frame.payload.toString() !== 'bad') return frame.payload;
          if (mode === 'throws') throw boom;
          if (mode === 'rejects') return Promise.reject(boom);
          return 42 as unknown as string;
        },
      });
      await writeAll(rig.forwarder, [textFrame('good'), textFrame('bad'), textFrame('never')]);
      await flush();
      expect(rig.errors).to.have.length(1);
      if (mode === 'returns a number') expect(rig.errors[0]).to.be.instanceOf(TypeError);
      else expect(rig.errors[0]).to.equal(boom);
      expect(rig.sink.frames().map(view)).to.deep.equal(['text:good']);
      expect(rig.forwarder.busy).to.equal(false);
    });
  }

  it('a rejection with a non-Error is wrapped in an Error', async () => {
    const rig = forwarderRig({ onFrame: () => Promise.reject('plain string') });
    await writeAll(rig.forwarder, [textFrame('x')]);
    await flush();
    expect(rig.errors[0]).to.be.instanceOf(Error);
    expect(rig.errors[0]!.message).to.equal('plain string');
  });

  it('waits for the outbox when the other side is full (backpressure reaches the pipeline)', async () => {
    const rig = forwarderRig();
    rig.sink.hold = true;
    let accepted = 0;
    for (let i = 0; i < 20; i++) {
      if (!rig.forwarder.write(binaryFrame(Buffer.alloc(64 * 1024)))) break;
      accepted++;
      await flush();
    }
    expect(accepted).to.be.below(20);
    let drained = false;
    rig.forwarder.once('drain', () => {
      drained = true;
    });
    await flush();
    expect(drained).to.equal(false);
    rig.sink.release();
    await flush();
    expect(drained).to.equal(true);
  });
});
