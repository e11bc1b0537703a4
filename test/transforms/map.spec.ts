import { expect } from 'chai';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, pongFrame, textFrame } from '../../src/frame.js';
import { MapJsonStage, MapStage, MapTextStage, map, mapJson, mapText } from '../../src/transforms/map.js';
import { type StageContext, kStageContext } from '../../src/transforms/stage.js';
import { echo } from '../helpers/proxy-harness.js';
import { text } from '../helpers/proxy-peers.js';
import { delay, runStage } from '../helpers/stage-run.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

const upper = (frame: Frame): Frame => ({ ...frame, payload: Buffer.from(frame.payload.toString().toUpperCase()) });

describe('map()', () => {
  it('returns a MapStage and validates its arguments at once', () => {
    expect(map((f) => f)).to.be.instanceOf(MapStage);
    expect(() => map('x' as never)).to.throw(TypeError, 'fn must be a function');
    expect(() => map((f) => f, 'x' as never)).to.throw(TypeError, 'options must be an object');
    expect(() => map((f) => f, { control: 'yes' as never })).to.throw(TypeError, 'options.control must be a boolean');
    expect(() => map((f) => f, { highWaterMark: 0 })).to.throw(TypeError, 'options.highWaterMark must be an integer >= 1');
    expect(() => map((f) => f, { context: 5 as never })).to.throw(TypeError, 'options.context must be an object');
  });

  it('passes what fn returns; null and undefined drop the frame', async () => {
    const { out, error } = await runStage(map((f) => {
      const data = f.payload.toString();
      if (data === 'drop-null') return null;
      if (data === 'drop-undefined') return undefined;
      return upper(f);
    }), [textFrame('a'), textFrame('drop-null'), binaryFrame('b'), textFrame('drop-undefined'), textFrame('c')]);
    expect(error).to.equal(undefined);
    expect(out.map(text)).to.deep.equal([
      { type: 'text', fin: true, data: 'A' },
      { type: 'binary', fin: true, data: 'B' },
      { type: 'text', fin: true, data: 'C' },
    ]);
  });

  it('keeps the order with an async fn whose delays vary', async () => {
    const delays = [30, 0, 15, 1, 20, 0];
    let i = 0;
    const { out } = await runStage(map(async (f) => {
      await delay(delays[i++]!);
      return upper(f);
    }), delays.map((_d, n) => textFrame(`m${n}`)));
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['M0', 'M1', 'M2', 'M3', 'M4', 'M5']);
  });

  it('an async fn may drop frames too', async () => {
    const { out } = await runStage(map(async (f) => (f.payload.toString() === 'x' ? null : f)), [textFrame('x'), textFrame('y')]);
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['y']);
  });

  it('calls fn with the context: the option outside a proxy, then what the proxy hands', async () => {
    const seen: StageContext[] = [];
    const stage = map((f, ctx) => {
      seen.push(ctx);
      return f;
    }, { context: { role: 'upstream', id: 'c1' } });
    await runStage(stage, [textFrame('a')]);
    expect(seen[0]).to.deep.include({ role: 'upstream', id: 'c1', proxy: undefined });
    const other = map((f, ctx) => {
      seen.push(ctx);
      return f;
    });
    const handed: StageContext = { role: 'upstream', id: 'p7', proxy: undefined };
    other[kStageContext](handed);
    await runStage(other, [textFrame('a')]);
    expect(seen[1]).to.equal(handed);
  });

  describe('control frames', () => {
    it('pass untouched without a call by default', async () => {
      const calls: string[] = [];
      const frames = [pingFrame('1'), textFrame('a', false), pongFrame('2'), continuationFrame('b'), closeFrame(1000, 'bye')];
      const { out } = await runStage(map((f) => {
        calls.push(f.type);
        return f;
      }), frames);
      expect(calls).to.deep.equal(['text', 'continuation']);
      expect(out).to.deep.equal(frames);
      expect(out[0]).to.equal(frames[0]);
      expect(out[4]).to.equal(frames[4]);
    });

    it('with control: true, fn sees them and may replace or drop pings and pongs', async () => {
      const { out } = await runStage(map((f) => {
        if (f.type === 'ping') return null;
        if (f.type === 'pong') return pongFrame('replaced');
        return f;
      }, { control: true }), [pingFrame('1'), pongFrame('2'), textFrame('a')]);
      expect(out.map(text)).to.deep.equal([
        { type: 'pong', fin: true, data: 'replaced' },
        { type: 'text', fin: true, data: 'a' },
      ]);
    });

    it('a close frame is never dropped: null or undefined (sync or async) passes the original close', async () => {
      for (const result of [null, undefined]) {
        const close = closeFrame(1001, 'away');
        const sync = await runStage(map((f) => (f.type === 'close' ? result : f), { control: true }), [close]);
        expect(sync.out).to.have.length(1);
        expect(sync.out[0]).to.equal(close);
        const asynchronous = await runStage(map(async (f) => (f.type === 'close' ? result : f), { control: true }), [close]);
        expect(asynchronous.out[0]).to.equal(close);
      }
    });

    it('a close frame may be replaced by another close frame', async () => {
      const { out, error } = await runStage(map((f) => (f.type === 'close' ? closeFrame(4000, 'rewritten') : f), { control: true }), [closeFrame(1000)]);
      expect(error).to.equal(undefined);
      expect(out.map(text)).to.deep.equal([{ type: 'close', fin: true, data: 'rewritten', code: 4000 }]);
    });

    it('a close frame turned into another type fails the stream with a TypeError, nothing passed', async () => {
      const { out, error } = await runStage(map((f) => (f.type === 'close' ? textFrame('not a close') : f), { control: true }), [closeFrame(1000)]);
      expect(error).to.be.instanceOf(TypeError);
      expect(error!.message).to.equal('map(): fn must return a close frame for a close frame, not a text frame');
      expect(out).to.deep.equal([]);
      const later = await runStage(map(async (f) => (f.type === 'close' ? pingFrame() : f), { control: true }), [closeFrame(1000)]);
      expect(later.error).to.be.instanceOf(TypeError);
    });
  });

  it('a result that is not a Frame fails the stream with a TypeError', async () => {
    for (const bad of ['text', 42, {}, { type: 'bogus', payload: Buffer.alloc(0) }, { type: 'text', payload: 'not a buffer' }]) {
      const { error } = await runStage(map(() => bad as never), [textFrame('a')]);
      expect(error, JSON.stringify(bad)).to.be.instanceOf(TypeError);
      expect(error!.message).to.equal('map(): fn must return a Frame, null or undefined');
    }
  });

  it('a throw or a rejection fails the stream with that error; no later frame passes', async () => {
    const boom = new Error('boom');
    const sync = await runStage(map((f) => {
      if (f.payload.toString() === 'bad') throw boom;
      return f;
    }), [textFrame('ok'), textFrame('bad'), textFrame('after')]);
    expect(sync.error).to.equal(boom);
    expect(sync.out.map((f) => f.payload.toString())).to.deep.equal(['ok']);
    const rejected = await runStage(map(async (f) => {
      if (f.payload.toString() === 'bad') throw boom;
      return f;
    }), [textFrame('ok'), textFrame('bad'), textFrame('after')]);
    expect(rejected.error).to.equal(boom);
    expect(rejected.out.map((f) => f.payload.toString())).to.deep.equal(['ok']);
    const thrownString = await runStage(map(() => {
      throw 'a string';
    }), [textFrame('x')]);
    expect(thrownString.error).to.be.instanceOf(Error);
    expect(thrownString.error!.message).to.equal('a string');
  });
});

describe('mapText()', () => {
  it('returns a MapTextStage and validates its arguments at once', () => {
    expect(mapText((s) => s)).to.be.instanceOf(MapTextStage);
    expect(() => mapText(null as never)).to.throw(TypeError, 'fn must be a function');
    expect(() => mapText((s) => s, null as never)).to.throw(TypeError, 'options must be an object');
    expect(() => mapText((s) => s, { maxMessageSize: 0 })).to.throw(TypeError, 'options.maxMessageSize must be a number >= 1');
    expect(() => mapText((s) => s, { maxFragments: -1 })).to.throw(TypeError, 'options.maxFragments must be a number >= 1');
  });

  it('replaces the text of text messages; binary messages and control frames pass without a call', async () => {
    const calls: string[] = [];
    const bin = binaryFrame('bin');
    const ping = pingFrame('p');
    const close = closeFrame(1000, 'bye');
    const { out } = await runStage(mapText((s) => {
      calls.push(s);
      return s.toUpperCase();
    }), [textFrame('hello'), bin, ping, textFrame('€uro'), close]);
    expect(calls).to.deep.equal(['hello', '€uro']);
    expect(out.map(text)).to.deep.equal([
      { type: 'text', fin: true, data: 'HELLO' },
      { type: 'binary', fin: true, data: 'bin' },
      { type: 'ping', fin: true, data: 'p' },
      { type: 'text', fin: true, data: '€URO' },
      { type: 'close', fin: true, data: 'bye', code: 1000 },
    ]);
    expect(out[1]).to.equal(bin);
    expect(out[2]).to.equal(ping);
    expect(out[4]).to.equal(close);
  });

  it('null or undefined drops the message; the same text passes the message as it came', async () => {
    const same = textFrame('keep');
    const { out } = await runStage(mapText((s) => (s === 'null' ? null : s === 'undefined' ? undefined : s)),
      [textFrame('null'), same, textFrame('undefined')]);
    expect(out).to.have.length(1);
    expect(out[0]).to.equal(same);
  });

  it('assembles a fragmented text message first: one call with the whole text, control frames ahead', async () => {
    const euro = Buffer.from('€');
    const calls: string[] = [];
    const { out } = await runStage(mapText((s) => {
      calls.push(s);
      return `[${s}]`;
    }), [
      // The euro sign cut inside its bytes by the fragment boundaries.
      textFrame(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]), false), pingFrame('1'),
      continuationFrame(euro.subarray(1, 2), false), continuationFrame(Buffer.concat([euro.subarray(2), Buffer.from('b')])),
      binaryFrame('x', false), continuationFrame('y'),
    ]);
    expect(calls).to.deep.equal(['a€b']);
    expect(out.map(text)).to.deep.equal([
      { type: 'ping', fin: true, data: '1' },
      { type: 'text', fin: true, data: '[a€b]' },
      { type: 'binary', fin: true, data: 'xy' },
    ]);
  });

  it('fails with WSP_ERR_MESSAGE_TOO_LARGE (1009) over maxMessageSize', async () => {
    const { error } = await runStage(mapText((s) => s, { maxMessageSize: 4 }), [textFrame('abc', false), continuationFrame('de')]);
    expect(error).to.be.instanceOf(WebSocketProxyError);
    expect((error as WebSocketProxyError).code).to.equal('WSP_ERR_MESSAGE_TOO_LARGE');
    expect((error as WebSocketProxyError).closeCode).to.equal(1009);
  });

  it('fails with WSP_ERR_INVALID_UTF8 (1007) on text that is not UTF-8, without calling fn for it', async () => {
    const calls: string[] = [];
    const { out, error } = await runStage(mapText((s) => {
      calls.push(s);
      return s;
    }), [textFrame('ok'), textFrame(Buffer.from([0x61, 0xff, 0x62])), textFrame('after')]);
    expect(calls).to.deep.equal(['ok']);
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['ok']);
    // A character cut short at the end of the message is not UTF-8 either.
    const cut = await runStage(mapText((s) => s), [textFrame(Buffer.from([0xc3]), false), continuationFrame('')]);
    for (const err of [error, cut.error]) {
      expect(err).to.be.instanceOf(WebSocketProxyError);
      expect((err as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_UTF8');
      expect((err as WebSocketProxyError).closeCode).to.equal(1007);
    }
  });

  it('passes a text message with RSV1 set (compressed by an extension) as it is, without a call', async () => {
    const compressed: Frame = { ...textFrame(Buffer.from([0xff, 0x00])), rsv1: true };
    let called = false;
    const { out, error } = await runStage(mapText((s) => {
      called = true;
      return s;
    }), [compressed]);
    expect(error).to.equal(undefined);
    expect(called).to.equal(false);
    expect(out[0]).to.equal(compressed);
  });

  it('keeps the order with an async fn whose delays vary, and drops asynchronously', async () => {
    const delays = [25, 0, 10, 2];
    let i = 0;
    const { out } = await runStage(mapText(async (s) => {
      await delay(delays[i++]!);
      return s === 'b' ? null : s.toUpperCase();
    }), [textFrame('a'), textFrame('b'), textFrame('c'), textFrame('d')]);
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['A', 'C', 'D']);
  });

  it('a result that is not a string, a throw or a rejection fails the stream', async () => {
    const wrong = await runStage(mapText(() => 42 as never), [textFrame('a')]);
    expect(wrong.error).to.be.instanceOf(TypeError);
    expect(wrong.error!.message).to.equal('mapText(): fn must return a string, null or undefined');
    const boom = new Error('boom');
    const thrown = await runStage(mapText(() => {
      throw boom;
    }), [textFrame('a')]);
    expect(thrown.error).to.equal(boom);
    const rejected = await runStage(mapText(() => Promise.reject(boom)), [textFrame('a')]);
    expect(rejected.error).to.equal(boom);
  });

  it('calls fn with the context', async () => {
    let seen: StageContext | undefined;
    await runStage(mapText((s, ctx) => {
      seen = ctx;
      return s;
    }, { context: { role: 'upstream', id: 'x' } }), [textFrame('a')]);
    expect(seen).to.deep.include({ role: 'upstream', id: 'x' });
  });
});

describe('mapJson()', () => {
  it('returns a MapJsonStage and validates its arguments at once', () => {
    expect(mapJson((v) => v)).to.be.instanceOf(MapJsonStage);
    expect(() => mapJson(undefined as never)).to.throw(TypeError, 'fn must be a function');
    expect(() => mapJson((v) => v, { maxMessageSize: NaN })).to.throw(TypeError, 'options.maxMessageSize must be a number >= 1');
  });

  it('passes the parsed value to fn and sends its result serialized', async () => {
    const { out } = await runStage(mapJson((v) => ({ ...(v as object), seen: true })), [textFrame('{"n":1}')]);
    expect(out.map(text)).to.deep.equal([{ type: 'text', fin: true, data: '{"n":1,"seen":true}' }]);
  });

  it('serializes again even the very value fn was given (so changes in place are sent)', async () => {
    const { out } = await runStage(mapJson((v) => {
      (v as { b?: number }).b = 2;
      return v;
    }), [textFrame('{ "a" : 1.0 }'), textFrame(' [1, 2] ')]);
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['{"a":1,"b":2}', '[1,2]']);
  });

  it('undefined drops the message; null sends the JSON text null', async () => {
    const { out } = await runStage(mapJson((v) => ((v as { drop?: boolean }).drop === true ? undefined : null)),
      [textFrame('{"drop":true}'), textFrame('{"drop":false}')]);
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['null']);
  });

  it('text that is not JSON, binary messages and control frames pass unchanged, without a call', async () => {
    let calls = 0;
    const frames = [textFrame('not json'), textFrame(''), textFrame('{"a":'), binaryFrame('{"a":1}'), pingFrame(), closeFrame(1000)];
    const { out } = await runStage(mapJson((v) => {
      calls++;
      return v;
    }), frames);
    expect(calls).to.equal(0);
    expect(out).to.have.length(frames.length);
    out.forEach((frame, i) => expect(frame).to.equal(frames[i]));
  });

  it('assembles a fragmented JSON message first', async () => {
    const { out } = await runStage(mapJson((v) => (v as number[]).length), [textFrame('[1,', false), continuationFrame('2,3]')]);
    expect(out.map(text)).to.deep.equal([{ type: 'text', fin: true, data: '3' }]);
  });

  it('keeps the order with an async fn whose delays vary', async () => {
    const delays = [20, 0, 8];
    let i = 0;
    const { out } = await runStage(mapJson(async (v) => {
      await delay(delays[i++]!);
      return { v };
    }), [textFrame('1'), textFrame('"two"'), textFrame('true')]);
    expect(out.map((f) => f.payload.toString())).to.deep.equal(['{"v":1}', '{"v":"two"}', '{"v":true}']);
  });

  it('a value JSON cannot represent fails with a TypeError; so does a BigInt', async () => {
    const fn = await runStage(mapJson(() => () => 1), [textFrame('{}')]);
    expect(fn.error).to.be.instanceOf(TypeError);
    expect(fn.error!.message).to.equal('mapJson(): fn returned a function, which JSON cannot represent');
    const big = await runStage(mapJson(() => ({ n: 1n })), [textFrame('{}')]);
    expect(big.error).to.be.instanceOf(TypeError);
  });

  it('a throw or a rejection fails the stream with that error; invalid UTF-8 with WSP_ERR_INVALID_UTF8', async () => {
    const boom = new Error('boom');
    const thrown = await runStage(mapJson(() => {
      throw boom;
    }), [textFrame('1')]);
    expect(thrown.error).to.equal(boom);
    const rejected = await runStage(mapJson(async () => Promise.reject(boom)), [textFrame('1')]);
    expect(rejected.error).to.equal(boom);
    const invalid = await runStage(mapJson((v) => v), [textFrame(Buffer.from([0x22, 0xfe, 0x22]))]);
    expect((invalid.error as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_UTF8');
  });
});

describe('map(), mapText(), mapJson() through WebSocketProxy', () => {
  afterEach(releaseAll);

  it('mapText(toUpperCase) on the client direction: the client gets the upper-cased echo', async () => {
    const rig = await wsRig(echo, () => ({ transforms: { client: [mapText((s) => s.toUpperCase())] } }));
    const client = await rig.client();
    client.ws.send('hello');
    client.ws.send(Buffer.from('binary stays'));
    client.ws.send('world');
    await client.waitMessages(3);
    expect(client.messages).to.deep.equal(['HELLO', Buffer.from('binary stays'), 'WORLD']);
  });

  it('map() on the upstream direction rewrites frames; with control: true a close still passes', async () => {
    const rig = await wsRig(echo, () => ({
      transforms: { upstream: [map((f) => (f.type === 'text' ? upper(f) : f.type === 'close' ? null : f), { control: true })] },
    }));
    const client = await rig.client();
    client.ws.send('abc');
    await client.waitMessages(1);
    expect(client.messages).to.deep.equal(['ABC']);
    client.ws.close(1000, 'bye');
    expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
  });

  it('mapJson() on the client direction: the upstream gets the rewritten JSON, non-JSON passes', async () => {
    const rig = await wsRig(echo, () => ({ transforms: { client: [mapJson((v) => ({ wrapped: v }))] } }));
    const client = await rig.client();
    client.ws.send('{"a":1}');
    client.ws.send('plain');
    await client.waitMessages(2);
    expect(client.messages).to.deep.equal(['{"wrapped":{"a":1}}', 'plain']);
  });

  it('a stage gets the proxy\'s context: role is the side frames come from', async () => {
    const roles: string[] = [];
    const rig = await wsRig(echo, () => ({
      transforms: {
        client: [mapText((s, ctx) => {
          roles.push(`${ctx.role}:${ctx.proxy === undefined ? 'none' : 'proxy'}`);
          return s;
        })],
        upstream: [mapText((s, ctx) => {
          roles.push(`${ctx.role}:${ctx.proxy === undefined ? 'none' : 'proxy'}`);
          return s;
        })],
      },
    }));
    const client = await rig.client();
    client.ws.send('x');
    await client.waitMessages(1);
    expect(roles).to.deep.equal(['client:proxy', 'upstream:proxy']);
  });
});
