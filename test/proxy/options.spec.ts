import { expect } from 'chai';
import { PassThrough, Transform } from 'readable-stream';
import { WebSocketProxy } from '../../src/index.js';
import { PROXY_DEFAULTS, type ProxyOptions, applyOnFrameResult, resolveOptions } from '../../src/proxy/options.js';
import { textFrame, closeFrame } from '../../src/frame.js';
import { resolvePerMessageDeflate } from '../../src/protocol/deflate.js';
import { recordingLogger } from '../helpers/proxy-peers.js';

/** Constructs a proxy with options of any shape (what a JavaScript caller may pass). */
function construct(options: unknown): WebSocketProxy {
  return new WebSocketProxy(options as ProxyOptions<WebSocketProxy>);
}

function throwsType(options: unknown, message: string): void {
  expect(() => construct(options)).to.throw(TypeError, message);
  // The exact message, not just a prefix.
  try {
    construct(options);
  } catch (err) {
    expect((err as Error).message).to.equal(message);
  }
}

describe('proxy options', () => {
  describe('validation (new WebSocketProxy)', () => {
    it('accepts no options, undefined and {}', () => {
      expect(() => new WebSocketProxy()).not.to.throw();
      expect(() => new WebSocketProxy(undefined)).not.to.throw();
      expect(() => new WebSocketProxy({})).not.to.throw();
    });

    it('rejects options that are not an object', () => {
      throwsType(42, 'options must be an object');
      throwsType('aggregate', 'options must be an object');
    });

    it('rejects an onFrame that is not a function', () => {
      throwsType({ onFrame: 'payload' }, 'options.onFrame must be a function');
      throwsType({ onFrame: {} }, 'options.onFrame must be a function');
    });

    for (const name of ['clientMaxFrameSize', 'upstreamMaxFrameSize', 'clientMaxFragments', 'upstreamMaxFragments']) {
      it(`rejects ${name} that is not a number >= 1`, () => {
        for (const value of [0, 0.5, -1, NaN, '10', null, true]) {
          throwsType({ [name]: value }, `options.${name} must be a number >= 1`);
        }
      });

      it(`accepts ${name} = 1 and Infinity`, () => {
        expect(() => construct({ [name]: 1 })).not.to.throw();
        expect(() => construct({ [name]: Infinity })).not.to.throw();
      });
    }

    for (const name of ['recvTimeout', 'idleTimeout', 'sendTimeout', 'connectTimeout']) {
      it(`rejects ${name} that is not a finite number >= 0`, () => {
        for (const value of [-1, NaN, Infinity, '100', null]) {
          throwsType({ [name]: value }, `options.${name} must be a number >= 0`);
        }
        expect(() => construct({ [name]: 0 })).not.to.throw();
        expect(() => construct({ [name]: 250 })).not.to.throw();
      });
    }

    for (const name of ['lingeringTime', 'lingeringTimeout']) {
      it(`rejects ${name} that is not a finite number >= 0`, () => {
        for (const value of [-1, NaN, Infinity, '100']) {
          throwsType({ [name]: value }, `options.${name} must be a number >= 0`);
        }
      });
    }

    it('requires lingeringTime > lingeringTimeout (defaults included)', () => {
      throwsType({ lingeringTime: 1000, lingeringTimeout: 1000 }, 'options.lingeringTime must be > options.lingeringTimeout');
      throwsType({ lingeringTime: 500, lingeringTimeout: 1000 }, 'options.lingeringTime must be > options.lingeringTimeout');
      // Against the other's default: 5000 and 30000.
      throwsType({ lingeringTime: 5000 }, 'options.lingeringTime must be > options.lingeringTimeout');
      throwsType({ lingeringTimeout: 30000 }, 'options.lingeringTime must be > options.lingeringTimeout');
      expect(() => new WebSocketProxy({ lingeringTime: 1001, lingeringTimeout: 1000 })).not.to.throw();
    });

    it('rejects a logger without all four methods', () => {
      const message = 'options.logger must have debug, info, warn and error methods';
      throwsType({ logger: console.log }, message);
      throwsType({ logger: { debug() {}, info() {}, warn() {} } }, message);
      throwsType({ logger: null }, message);
      expect(() => new WebSocketProxy({ logger: recordingLogger() })).not.to.throw();
    });

    for (const name of ['pingInterval', 'pongTimeout']) {
      it(`rejects ${name} that is not a finite number > 0 nor { client?, upstream? } of such numbers`, () => {
        for (const value of [0, -1, NaN, Infinity]) {
          throwsType({ [name]: value }, `options.${name} must be a number > 0`);
        }
        for (const value of ['100', null, true, [100]]) {
          throwsType({ [name]: value }, `options.${name} must be a number > 0 or an object { client?, upstream? }`);
        }
        throwsType({ [name]: { client: 0 } }, `options.${name}.client must be a number > 0`);
        throwsType({ [name]: { upstream: '5' } }, `options.${name}.upstream must be a number > 0`);
        throwsType({ [name]: { clinet: 100 } }, `options.${name} has an unknown key "clinet" (expected client and/or upstream)`);
        expect(() => construct({ [name]: 0.5 })).not.to.throw();
        expect(() => construct({ [name]: {} })).not.to.throw();
        expect(() => construct({ [name]: { client: 100, upstream: undefined } })).not.to.throw();
      });
    }

    it('validates perMessageDeflate', () => {
      throwsType({ perMessageDeflate: 'yes' as unknown as boolean }, 'options.perMessageDeflate must be a boolean or an object');
      throwsType({ perMessageDeflate: { memLevel: 0 } }, 'options.perMessageDeflate.memLevel must be an integer from 1 to 9');
      throwsType({ perMessageDeflate: { windowBits: 9 } as never }, 'options.perMessageDeflate.windowBits is not a permessage-deflate setting');
      expect(resolveOptions({ perMessageDeflate: false }, recordingLogger()).perMessageDeflate).to.equal(false);
      expect(resolveOptions({ perMessageDeflate: { threshold: 0 } }, recordingLogger()).perMessageDeflate).to.include({ threshold: 0, serverMaxWindowBits: 12 });
    });

    it('validates transforms', () => {
      throwsType({ transforms: 'x' }, 'options.transforms must be an object');
      throwsType({ transforms: null }, 'options.transforms must be an object');
      throwsType({ transforms: { client: new PassThrough({ objectMode: true }) } }, 'options.transforms.client must be an array of Transform or Duplex streams (or a function returning one)');
      throwsType({ transforms: { upstream: [{}] } }, 'options.transforms.upstream must be an array of Transform or Duplex streams (or a function returning one)');
      throwsType({ transforms: { client: [new PassThrough({ objectMode: true }), 'x'] } }, 'options.transforms.client must be an array of Transform or Duplex streams (or a function returning one)');
      expect(() => new WebSocketProxy({
        transforms: { client: [new PassThrough({ objectMode: true })], upstream: [new Transform({ objectMode: true, transform: (f, _e, cb) => cb(null, f) })] },
      })).not.to.throw();
      expect(() => new WebSocketProxy({ transforms: {} })).not.to.throw();
    });
  });

  describe('defaults (resolveOptions)', () => {
    const logger = recordingLogger();

    it('PROXY_DEFAULTS documents the numeric defaults', () => {
      expect(PROXY_DEFAULTS).to.deep.equal({
        clientMaxFrameSize: 1048576,
        upstreamMaxFrameSize: 16777216,
        clientMaxFragments: 16384,
        upstreamMaxFragments: 16384,
        connectTimeout: 60000,
        lingeringTime: 30000,
        lingeringTimeout: 5000,
        maxSendQueueSize: 16777216,
      });
    });

    it('applies every default', () => {
      const resolved = resolveOptions(undefined, logger);
      expect(resolved).to.deep.equal({
        aggregateFragments: false,
        onFrame: undefined,
        observer: undefined,
        transforms: { client: [], upstream: [] },
        maxSendQueueSize: 16777216,
        clientMaxFrameSize: 1048576,
        upstreamMaxFrameSize: 16777216,
        clientMaxFragments: 16384,
        upstreamMaxFragments: 16384,
        recvTimeout: undefined,
        idleTimeout: undefined,
        sendTimeout: undefined,
        pingInterval: { client: undefined, upstream: undefined },
        pongTimeout: { client: undefined, upstream: undefined },
        connectTimeout: 60000,
        lingeringTime: 30000,
        lingeringTimeout: 5000,
        validateUtf8: true,
        perMessageDeflate: resolvePerMessageDeflate(true),
        debug: false,
        logger,
      });
    });

    it('pingInterval as a number applies to both sides; pongTimeout defaults to each side\'s pingInterval', () => {
      const resolved = resolveOptions({ pingInterval: 250 }, logger);
      expect(resolved.pingInterval).to.deep.equal({ client: 250, upstream: 250 });
      expect(resolved.pongTimeout).to.deep.equal({ client: 250, upstream: 250 });
    });

    it('the { client, upstream } forms set each side; a side left out is not pinged', () => {
      const resolved = resolveOptions({ pingInterval: { upstream: 100 }, pongTimeout: { client: 70 } }, logger);
      expect(resolved.pingInterval).to.deep.equal({ client: undefined, upstream: 100 });
      // The client's pongTimeout is kept, though it has no effect without a client pingInterval.
      expect(resolved.pongTimeout).to.deep.equal({ client: 70, upstream: 100 });
      const both = resolveOptions({ pingInterval: { client: 10, upstream: 20 }, pongTimeout: 5 }, logger);
      expect(both.pingInterval).to.deep.equal({ client: 10, upstream: 20 });
      expect(both.pongTimeout).to.deep.equal({ client: 5, upstream: 5 });
    });

    it('keeps given values and coerces the booleans', () => {
      const onFrame = () => undefined;
      const own = recordingLogger();
      const resolved = resolveOptions({
        aggregateFragments: 1 as unknown as boolean,
        onFrame,
        clientMaxFrameSize: 10,
        upstreamMaxFrameSize: 20,
        clientMaxFragments: 3,
        upstreamMaxFragments: 4,
        recvTimeout: 80,
        idleTimeout: 0,
        sendTimeout: 100,
        connectTimeout: 200,
        lingeringTime: 300,
        lingeringTimeout: 100,
        validateUtf8: false,
        debug: 'yes' as unknown as boolean,
        logger: own,
      }, logger);
      expect(resolved).to.include({
        aggregateFragments: true, onFrame, clientMaxFrameSize: 10, upstreamMaxFrameSize: 20, clientMaxFragments: 3,
        upstreamMaxFragments: 4, recvTimeout: 80, idleTimeout: 0, sendTimeout: 100, connectTimeout: 200,
        lingeringTime: 300, lingeringTimeout: 100, validateUtf8: false, debug: true, logger: own,
      });
    });

    it('ignores unknown keys, as the seed does', () => {
      expect(() => resolveOptions({ upstream: 'ws://x' } as ProxyOptions, logger)).not.to.throw();
    });
  });

  describe('applyOnFrameResult', () => {
    const frame = textFrame('hello');
    const close = closeFrame(1000, 'bye');

    it('null and undefined drop the frame', () => {
      expect(applyOnFrameResult(frame, null)).to.equal(null);
      expect(applyOnFrameResult(frame, undefined)).to.equal(null);
    });

    it('the same payload Buffer forwards the frame itself', () => {
      expect(applyOnFrameResult(frame, frame.payload)).to.equal(frame);
    });

    it('a string or Buffer replaces the payload, keeping type and FIN', () => {
      const fragment = textFrame('part', false);
      const out = applyOnFrameResult(fragment, 'new');
      expect(out).to.deep.include({ type: 'text', fin: false });
      expect(out?.payload.toString()).to.equal('new');
      expect(applyOnFrameResult(frame, Buffer.from('buf'))?.payload.toString()).to.equal('buf');
      expect(fragment.payload.toString()).to.equal('part');
    });

    it('{ payload, code } replaces a close frame\'s reason and code', () => {
      const out = applyOnFrameResult(close, { payload: 'other', code: 4000 });
      expect(out).to.deep.include({ type: 'close', code: 4000 });
      expect(out?.payload.toString()).to.equal('other');
      expect(applyOnFrameResult(close, { code: 1001 })?.payload.toString()).to.equal('bye');
      expect(applyOnFrameResult(close, {})).to.deep.include({ code: 1000 });
    });

    it('{ code } is ignored for other frames', () => {
      const out = applyOnFrameResult(frame, { code: 4000 });
      expect(out?.code).to.equal(undefined);
      expect(out?.payload.toString()).to.equal('hello');
    });

    it('rejects other return values with a TypeError', () => {
      expect(() => applyOnFrameResult(frame, 42 as unknown as string)).to.throw(TypeError,
        'options.onFrame return value must be a string, a Buffer, null, undefined or { payload, code }');
      expect(() => applyOnFrameResult(frame, true as unknown as string)).to.throw(TypeError);
      expect(() => applyOnFrameResult(frame, { payload: 42 } as unknown as { payload: string })).to.throw(TypeError,
        'options.onFrame return value payload must be a string or a Buffer');
      expect(() => applyOnFrameResult(close, { code: 1000.5 })).to.throw(TypeError,
        'options.onFrame return value code must be an integer');
      expect(() => applyOnFrameResult(close, { code: '1000' } as unknown as { code: number })).to.throw(TypeError,
        'options.onFrame return value code must be an integer');
    });
  });
});
