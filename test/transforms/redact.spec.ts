import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, textFrame } from '../../src/frame.js';
import { DEFAULT_REDACTION, type RedactOptions, RedactStage, redact } from '../../src/transforms/redact.js';
import { runStage } from '../helpers/stage-run.js';
import { until } from '../helpers/proxy-peers.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

/** Runs `frames` through a fresh redact(options) and returns the texts that came out. */
async function texts(options: RedactOptions, ...frames: Frame[]): Promise<string[]> {
  const { out, error } = await runStage(redact(options), frames);
  expect(error).to.equal(undefined);
  return out.map((f) => f.payload.toString());
}

describe('redact()', () => {
  describe('options', () => {
    it('returns a RedactStage; the default replacement is [REDACTED]', async () => {
      expect(redact({ keys: ['a'] })).to.be.instanceOf(RedactStage);
      expect(DEFAULT_REDACTION).to.equal('[REDACTED]');
      expect(await texts({ keys: ['a'] }, textFrame('{"a":1}'))).to.deep.equal(['{"a":"[REDACTED]"}']);
    });

    it('requires patterns or keys listing something', () => {
      const nothing = 'options.patterns or options.keys must list something to redact';
      expect(() => redact(undefined as unknown as RedactOptions)).to.throw(TypeError, nothing);
      expect(() => redact({})).to.throw(TypeError, nothing);
      expect(() => redact({ patterns: [], keys: [] })).to.throw(TypeError, nothing);
      expect(() => redact(null as unknown as RedactOptions)).to.throw(TypeError, 'options must be an object');
    });

    it('validates patterns, keys, replacement and the message limits', () => {
      expect(() => redact({ patterns: [''] })).to.throw(TypeError, 'options.patterns[0] must be a RegExp or a non-empty string');
      expect(() => redact({ patterns: [/a/, 3 as unknown as string] })).to.throw(TypeError, 'options.patterns[1] must be a RegExp or a non-empty string');
      expect(() => redact({ patterns: 3 as unknown as string })).to.throw(TypeError, 'options.patterns must be a RegExp, a string or an array of them');
      expect(() => redact({ keys: 'password' as unknown as string[] })).to.throw(TypeError, 'options.keys must be an array of strings');
      expect(() => redact({ keys: [1 as unknown as string] })).to.throw(TypeError, 'options.keys must be an array of strings');
      expect(() => redact({ keys: ['a'], replacement: 0 as unknown as string })).to.throw(TypeError, 'options.replacement must be a string');
      expect(() => redact({ keys: ['a'], maxMessageSize: 0 })).to.throw(TypeError, 'options.maxMessageSize must be a number >= 1');
    });

    it('takes a single pattern as well as an array', async () => {
      expect(await texts({ patterns: /\d/ }, textFrame('a1b2'))).to.deep.equal(['a[REDACTED]b[REDACTED]']);
      expect(await texts({ patterns: 'x' }, textFrame('xyx'))).to.deep.equal(['[REDACTED]y[REDACTED]']);
    });
  });

  describe('JSON', () => {
    it('replaces the value of every listed key at any depth, inside arrays too, whatever the value', async () => {
      const message = JSON.stringify({
        user: 'ann',
        password: 'hunter2',
        sessions: [{ token: 'abc', id: 1 }, { token: { nested: ['deep'] }, id: 2 }, [[{ token: 42 }]]],
        profile: { settings: { password: null } },
      });
      const [out] = await texts({ keys: ['password', 'token'], replacement: '***' }, textFrame(message));
      expect(JSON.parse(out!)).to.deep.equal({
        user: 'ann',
        password: '***',
        sessions: [{ token: '***', id: 1 }, { token: '***', id: 2 }, [[{ token: '***' }]]],
        profile: { settings: { password: '***' } },
      });
    });

    it('compares key names exactly, and does not take array indexes for keys', async () => {
      const [out] = await texts({ keys: ['Password', '0'] }, textFrame('{"password":"a","Password":"b","list":["x","y"]}'));
      expect(JSON.parse(out!)).to.deep.equal({ password: 'a', Password: '[REDACTED]', list: ['x', 'y'] });
    });

    it('applies patterns to every string value, at any depth, but not to property names nor numbers', async () => {
      const message = '{"card 4111111111111111":"card 4111111111111111","list":["4111111111111111",{"x":"0000111122223333 ok"}],"n":4111111111111111}';
      const [out] = await texts({ patterns: [/\d{16}/] }, textFrame(message));
      expect(JSON.parse(out!)).to.deep.equal({
        'card 4111111111111111': 'card [REDACTED]',
        list: ['[REDACTED]', { x: '[REDACTED] ok' }],
        n: 4111111111111111,
      });
    });

    it('sees string values decoded: a pattern matches across an escape, and the result is valid JSON again', async () => {
      const [out] = await texts({ patterns: ['a"b'] }, textFrame('{"k":"xa\\"by"}'));
      expect(out).to.equal('{"k":"x[REDACTED]y"}');
      const [quoted] = await texts({ patterns: ['s'], replacement: '"' }, textFrame('["s"]'));
      expect(JSON.parse(quoted!)).to.deep.equal(['"']);
    });

    it('keeps __proto__ as a plain property', async () => {
      const [out] = await texts({ keys: ['__proto__'] }, textFrame('{"__proto__":{"polluted":true},"a":1}'));
      expect(out).to.equal('{"__proto__":"[REDACTED]","a":1}');
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });

    it('handles JSON nested too deeply for JSON.stringify (thousands of levels): same output', async () => {
      const depth = 20000;
      const inner = (secret: string) => `{"password":"${secret}","n":-1.5e3,"t":true,"z":null,"e":[],"o":{},"l":[1,"s",{}]}`;
      const message = `${'{"k":['.repeat(depth)}${inner('x')},2${']}'.repeat(depth)}`;
      const [out] = await texts({ keys: ['password'] }, textFrame(message));
      expect(out).to.equal(`${'{"k":['.repeat(depth)}${inner('[REDACTED]').replace('-1.5e3', '-1500')},2${']}'.repeat(depth)}`);
    });

    it('text that starts like JSON but does not parse is plain text: patterns apply, keys do not', async () => {
      const [out] = await texts({ keys: ['password'], patterns: ['hunter2'] }, textFrame('{"password":"hunter2"'));
      expect(out).to.equal('{"password":"[REDACTED]"');
    });

    it('JSON scalars are plain text: keys do not apply', async () => {
      const frame = textFrame('"password"');
      const { out } = await runStage(redact({ keys: ['password'] }), [frame]);
      expect(out[0]).to.equal(frame);
    });
  });

  describe('patterns in plain text', () => {
    it('replaces every match of a RegExp without the g flag, and leaves the caller\'s RegExp alone', async () => {
      const noG = /secret-\d+/i;
      expect(await texts({ patterns: [noG] }, textFrame('a SECRET-1 b secret-22 c'))).to.deep.equal(['a [REDACTED] b [REDACTED] c']);
      expect(noG.flags).to.equal('i');
      expect(noG.lastIndex).to.equal(0);
    });

    it('replaces every match of a RegExp with the g flag, whatever its lastIndex, which is left as it was', async () => {
      const withG = /\d+/g;
      withG.lastIndex = 3;
      const stage = redact({ patterns: [withG] });
      const { out } = await runStage(stage, [textFrame('1 22 333'), textFrame('4 55')]);
      expect(out.map((f) => f.payload.toString())).to.deep.equal(['[REDACTED] [REDACTED] [REDACTED]', '[REDACTED] [REDACTED]']);
      expect(withG.lastIndex).to.equal(3);
    });

    it('takes string patterns literally, and applies patterns in order', async () => {
      expect(await texts({ patterns: ['a.b', 'c'] }, textFrame('a.b axb a.b c'))).to.deep.equal(['[REDACTED] axb [REDACTED] [REDACTED]']);
      expect(await texts({ patterns: ['abc', 'b'] }, textFrame('abc'))).to.deep.equal(['[REDACTED]']);
      expect(await texts({ patterns: ['b', 'abc'] }, textFrame('abc'))).to.deep.equal(['a[REDACTED]c']);
    });

    it('inserts the replacement literally', async () => {
      expect(await texts({ patterns: [/(\d)/], replacement: '$&$1$$' }, textFrame('a1'))).to.deep.equal(['a$&$1$$']);
    });

    it('leaves empty matches alone', async () => {
      expect(await texts({ patterns: [/\d*/] }, textFrame('ab12c'))).to.deep.equal(['ab[REDACTED]c']);
    });
  });

  it('redacts a fragmented text message as a whole, a secret cut across fragments included', async () => {
    const { out, error } = await runStage(redact({ keys: ['password'], patterns: ['4111111111111111'] }), [
      textFrame('{"note":"card 41111111', false), pingFrame('p'), continuationFrame('11111111","pass', false), continuationFrame('word":"x"}'),
    ]);
    expect(error).to.equal(undefined);
    expect(out.map((f) => [f.type, f.fin, f.payload.toString()])).to.deep.equal([
      ['ping', true, 'p'],
      ['text', true, '{"note":"card [REDACTED]","password":"[REDACTED]"}'],
    ]);
  });

  describe('pass-through', () => {
    it('passes a message in which nothing changed as the very same frame, byte for byte', async () => {
      const messages = [
        textFrame('{ "big": 12345678901234567890, "a" : [1.0, "x"] ,"a":2 }'),
        textFrame('{"password":"[REDACTED]"}'),
        textFrame('no secret here'),
        textFrame('{"broken'),
      ];
      const bytes = messages.map((f) => Buffer.from(f.payload));
      const { out } = await runStage(redact({ keys: ['password'], patterns: [/\d{16}/] }), messages);
      expect(out).to.have.length(4);
      out.forEach((frame, i) => {
        expect(frame).to.equal(messages[i]);
        expect(frame.payload.equals(bytes[i]!)).to.equal(true);
      });
    });

    it('passes binary messages and control frames unchanged', async () => {
      const frames = [binaryFrame('{"password":"x"} 4111111111111111'), pingFrame('4111111111111111'), closeFrame(1000, 'password')];
      const { out } = await runStage(redact({ keys: ['password'], patterns: ['4111111111111111'] }), frames);
      expect(out).to.have.length(3);
      out.forEach((frame, i) => expect(frame).to.equal(frames[i]));
    });

    it('never mutates the payload it was given', async () => {
      const payload = Buffer.from('{"password":"x"}');
      const copy = Buffer.from(payload);
      const [out] = await texts({ keys: ['password'] }, textFrame(payload));
      expect(out).to.equal('{"password":"[REDACTED]"}');
      expect(payload.equals(copy)).to.equal(true);
    });
  });

  describe('failures', () => {
    it('a compressed (RSV1) text message fails with WSP_ERR_STAGE_FAILED: it cannot be read', async () => {
      const { out, error } = await runStage(redact({ keys: ['a'] }), [{ ...textFrame('{"a":1}'), rsv1: true }]);
      expect(out).to.deep.equal([]);
      expect(error).to.be.instanceOf(WebSocketProxyError);
      expect((error as WebSocketProxyError).code).to.equal('WSP_ERR_STAGE_FAILED');
    });

    it('a fragmented message over maxMessageSize fails with WSP_ERR_MESSAGE_TOO_LARGE', async () => {
      const { out, error } = await runStage(redact({ keys: ['a'], maxMessageSize: 4 }), [textFrame('{"a"', false), continuationFrame(':1}')]);
      expect(out).to.deep.equal([]);
      expect((error as WebSocketProxyError).code).to.equal('WSP_ERR_MESSAGE_TOO_LARGE');
    });
  });

  describe('through a WebSocketProxy', () => {
    afterEach(releaseAll);

    it('the upstream receives the client\'s messages redacted, fragmented ones included; the client gets the upstream\'s as they are', async () => {
      const received: string[] = [];
      const rig = await wsRig((ws: WebSocket) => {
        ws.on('message', (data: Buffer) => {
          received.push(data.toString());
          ws.send('{"password":"from upstream"}');
        });
      }, () => ({ transforms: { client: [redact({ keys: ['password'], patterns: [/\b\d{16}\b/] })] } }));
      const client = await rig.client();
      client.ws.send('{"user":"ann","pass', { fin: false });
      client.ws.send('word":"hunter2"}', { fin: true });
      client.ws.send('card 4111111111111111 please');
      client.ws.send('nothing to hide');
      await until(() => received.length === 3);
      expect(received).to.deep.equal(['{"user":"ann","password":"[REDACTED]"}', 'card [REDACTED] please', 'nothing to hide']);
      await client.waitMessages(3);
      expect(client.messages).to.deep.equal(['{"password":"from upstream"}', '{"password":"from upstream"}', '{"password":"from upstream"}']);
    });
  });
});
