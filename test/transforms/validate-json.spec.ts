import AjvModule from 'ajv';
import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { WebSocketProxyError } from '../../src/errors.js';
import { type Frame, binaryFrame, closeFrame, continuationFrame, pingFrame, textFrame } from '../../src/frame.js';
import {
  type JsonSchemaCompiler, type JsonValidateFunction, type ValidateJsonOptions, ValidateJsonStage, loadAjv, validateJson,
} from '../../src/transforms/validate-json.js';
import { until } from '../helpers/proxy-peers.js';
import { runStage } from '../helpers/stage-run.js';
import { releaseAll, wsRig } from '../proxy/rig.js';

// ajv is CommonJS: under NodeNext its default import is the module, whose `default` is the class.
const Ajv = AjvModule.default;

const schema = { type: 'object', required: ['op'], properties: { op: { type: 'string' } } };

function plain(frames: Frame[]): [string, boolean, string][] {
  return frames.map((f) => [f.type, f.fin, f.payload.toString()]);
}

/** Expects `error` to be a WSP_ERR_VALIDATION_FAILED (1007) with `message`. */
function expectValidationFailure(error: Error | undefined, message: string): void {
  expect(error).to.be.instanceOf(WebSocketProxyError);
  const err = error as WebSocketProxyError;
  expect(err.code).to.equal('WSP_ERR_VALIDATION_FAILED');
  expect(err.closeCode).to.equal(1007);
  expect(err.message).to.equal(message);
}

describe('validateJson()', () => {
  describe('options', () => {
    it('returns a ValidateJsonStage', () => {
      expect(validateJson({ schema })).to.be.instanceOf(ValidateJsonStage);
      expect(validateJson({ schema: true })).to.be.instanceOf(ValidateJsonStage);
    });

    it('validates schema, ajv, binary and the message limits', () => {
      const notSchema = 'options.schema must be a JSON schema (an object or a boolean)';
      expect(() => validateJson(undefined as unknown as ValidateJsonOptions)).to.throw(TypeError, notSchema);
      expect(() => validateJson({} as ValidateJsonOptions)).to.throw(TypeError, notSchema);
      expect(() => validateJson({ schema: 'object' as unknown as object })).to.throw(TypeError, notSchema);
      expect(() => validateJson({ schema: null as unknown as object })).to.throw(TypeError, notSchema);
      expect(() => validateJson({ schema, binary: 'drop' as 'pass' })).to.throw(TypeError, "options.binary must be 'pass' or 'reject'");
      expect(() => validateJson({ schema, ajv: {} as JsonSchemaCompiler })).to.throw(TypeError, 'options.ajv must be an Ajv instance (an object with a compile() method)');
      expect(() => validateJson({ schema, maxFragments: 0 })).to.throw(TypeError, 'options.maxFragments must be a number >= 1');
    });

    it('an invalid schema is a TypeError at the factory, with ajv\'s message', () => {
      expect(() => validateJson({ schema: { type: 'nope' } })).to.throw(TypeError, /^options\.schema is invalid: schema is invalid: data\/type must be equal to one of the allowed values/);
      // Unknown formats are an error of ajv's strict mode: a custom instance knows them (below).
      expect(() => validateJson({ schema: { type: 'string', format: 'upper' } })).to.throw(TypeError, 'options.schema is invalid: unknown format "upper"');
    });

    it('compiles with a default Ajv per schema object: two schema objects with the same $id do not collide', () => {
      const a = { $id: 'https://example.test/op', type: 'object' };
      const b = { $id: 'https://example.test/op', type: 'object' };
      expect(() => [validateJson({ schema: a }), validateJson({ schema: a }), validateJson({ schema: b })]).not.to.throw();
    });
  });

  describe('loading ajv', () => {
    it('loads the Ajv class', () => {
      expect(loadAjv()).to.equal(Ajv);
      expect(loadAjv(() => ({ default: Ajv }))).to.equal(Ajv);
    });

    it('a missing ajv is a TypeError telling to install it', () => {
      const missing = Object.assign(new Error("Cannot find module 'ajv'"), { code: 'MODULE_NOT_FOUND' });
      expect(() => loadAjv(() => {
        throw missing;
      })).to.throw(TypeError, 'validateJson() needs ajv, an optional peer dependency: npm install ajv (or pass options.ajv)').with.property('cause', missing);
      const broken = new SyntaxError('broken ajv');
      expect(() => loadAjv(() => {
        throw broken;
      })).to.throw(broken);
    });
  });

  describe('text messages', () => {
    it('passes JSON that matches, the same frame; a fragmented one as one frame', async () => {
      const whole = textFrame('{"op":"subscribe"}');
      const { out, error } = await runStage(validateJson({ schema }), [
        whole, textFrame('{"op":', false), pingFrame('p'), continuationFrame('"x","n":1}'),
      ]);
      expect(error).to.equal(undefined);
      expect(out[0]).to.equal(whole);
      expect(plain(out)).to.deep.equal([['text', true, '{"op":"subscribe"}'], ['ping', true, 'p'], ['text', true, '{"op":"x","n":1}']]);
    });

    it('text that is not JSON fails with WSP_ERR_VALIDATION_FAILED (1007) without quoting it; what came before passed', async () => {
      const { out, error } = await runStage(validateJson({ schema }), [textFrame('{"op":"a"}'), textFrame('secret stuff'), textFrame('{"op":"b"}')]);
      expectValidationFailure(error, 'message failed validation: not JSON');
      expect(plain(out)).to.deep.equal([['text', true, '{"op":"a"}']]);
    });

    it('JSON that does not match fails with ajv\'s text of the errors', async () => {
      const { out, error } = await runStage(validateJson({ schema }), [textFrame('{"op":1}')]);
      expectValidationFailure(error, 'message failed validation: data/op must be string');
      expect(out).to.deep.equal([]);
      const top = await runStage(validateJson({ schema }), [textFrame('[1]')]);
      expectValidationFailure(top.error, 'message failed validation: data must be object');
    });

    it('no fragment of an invalid fragmented message is passed on', async () => {
      const { out, error } = await runStage(validateJson({ schema }), [textFrame('{"op":', false), continuationFrame('2}')]);
      expectValidationFailure(error, 'message failed validation: data/op must be string');
      expect(out).to.deep.equal([]);
    });

    it('uses the given ajv instance, and quotes at most 3 errors', async () => {
      const ajv = new Ajv({ allErrors: true });
      ajv.addFormat('upper', /^[A-Z]+$/);
      const upper = { type: 'object', properties: { a: { type: 'string', format: 'upper' }, b: { type: 'string' }, c: { type: 'string' }, d: { type: 'string' } } };
      const { out, error } = await runStage(validateJson({ schema: upper, ajv }), [textFrame('{"a":"OK"}'), textFrame('{"a":"no","b":1,"c":2,"d":3}')]);
      expect(plain(out)).to.deep.equal([['text', true, '{"a":"OK"}']]);
      expectValidationFailure(error, 'message failed validation: data/a must match format "upper", data/b must be string, data/c must be string');
    });

    it('takes any compiler of the same shape; without errorsText the errors are formatted as path and message', async () => {
      const validate = ((data: unknown) => {
        validate.errors = data === 1 ? null : [{ instancePath: '/x', message: 'is bad' }, { message: 'is worse' }];
        return data === 1;
      }) as JsonValidateFunction;
      const compiler: JsonSchemaCompiler = { compile: () => validate };
      const { out, error } = await runStage(validateJson({ schema: {}, ajv: compiler }), [textFrame('1'), textFrame('2')]);
      expect(plain(out)).to.deep.equal([['text', true, '1']]);
      expectValidationFailure(error, 'message failed validation: /x is bad, data is worse');
      const silent: JsonSchemaCompiler = { compile: () => () => false };
      const { error: bare } = await runStage(validateJson({ schema: {}, ajv: silent }), [textFrame('1')]);
      expectValidationFailure(bare, 'message failed validation: does not match the schema');
    });

    it('awaits an asynchronous schema, keeping the order', async () => {
      const ajv = new Ajv();
      const asyncSchema = { $async: true, type: 'object', required: ['op'] };
      const frames = [textFrame('{"op":1}'), textFrame('{"op":2}'), textFrame('{}')];
      const { out, error } = await runStage(validateJson({ schema: asyncSchema, ajv }), frames);
      expect(plain(out)).to.deep.equal([['text', true, '{"op":1}'], ['text', true, '{"op":2}']]);
      expectValidationFailure(error, "message failed validation: data must have required property 'op'");
    });

    it('an asynchronous validator that rejects with something else than validation errors fails the stage with it', async () => {
      const boom = new Error('lookup failed');
      const compiler: JsonSchemaCompiler = { compile: () => () => Promise.reject(boom) };
      const { error } = await runStage(validateJson({ schema: {}, ajv: compiler }), [textFrame('1')]);
      expect(error).to.equal(boom);
    });

    it('a compressed (RSV1) text message fails with WSP_ERR_STAGE_FAILED: it cannot be read', async () => {
      const { error } = await runStage(validateJson({ schema: true }), [{ ...textFrame('{}'), rsv1: true }]);
      expect((error as WebSocketProxyError).code).to.equal('WSP_ERR_STAGE_FAILED');
    });
  });

  describe('binary messages and control frames', () => {
    it('pass binary messages unchecked by default', async () => {
      const frames = [binaryFrame('not json'), binaryFrame('a', false), continuationFrame('b')];
      const { out, error } = await runStage(validateJson({ schema }), frames);
      expect(error).to.equal(undefined);
      expect(out[0]).to.equal(frames[0]);
      expect(plain(out)).to.deep.equal([['binary', true, 'not json'], ['binary', true, 'ab']]);
    });

    it("binary: 'reject' fails a binary message with WSP_ERR_VALIDATION_FAILED (1007), even a JSON one", async () => {
      const { out, error } = await runStage(validateJson({ schema, binary: 'reject' }), [textFrame('{"op":"a"}'), binaryFrame('{"op":"b"}')]);
      expectValidationFailure(error, 'message failed validation: binary message refused');
      expect(plain(out)).to.deep.equal([['text', true, '{"op":"a"}']]);
    });

    it('pass control frames unchecked', async () => {
      const frames = [pingFrame('x'), closeFrame(1000, 'bye')];
      const { out, error } = await runStage(validateJson({ schema, binary: 'reject' }), frames);
      expect(error).to.equal(undefined);
      expect(out).to.have.length(2);
      out.forEach((frame, i) => expect(frame).to.equal(frames[i]));
    });
  });

  describe('through a WebSocketProxy', () => {
    afterEach(releaseAll);

    function recordingUpstream() {
      const received: string[] = [];
      const closes: number[] = [];
      const onConnection = (ws: WebSocket) => {
        ws.on('message', (data: Buffer) => received.push(data.toString()));
        ws.on('close', (code: number) => closes.push(code));
      };
      return { received, closes, onConnection };
    }

    it('client direction: a valid message reaches the upstream; a non-JSON one gets the client 1007 and the upstream 1001', async () => {
      const upstream = recordingUpstream();
      const rig = await wsRig(upstream.onConnection, () => ({ transforms: { client: [validateJson({ schema })] } }));
      const client = await rig.client();
      client.ws.send('{"op":"ok"}');
      await until(() => upstream.received.length === 1);
      client.ws.send('not json');
      const closed = await client.closed;
      await until(() => upstream.closes.length === 1);
      expect(upstream.received).to.deep.equal(['{"op":"ok"}']);
      expect(closed.code).to.equal(1007);
      expect(upstream.closes).to.deep.equal([1001]);
    });

    it('upstream direction: a message not matching the schema gets the upstream 1007 and the client 1001', async () => {
      const upstream = recordingUpstream();
      const rig = await wsRig((ws) => {
        upstream.onConnection(ws);
        ws.send('{"op":"hello"}');
        ws.send('{"op":42}');
      }, () => ({ transforms: { upstream: [validateJson({ schema })] } }));
      const client = await rig.client();
      const closed = await client.closed;
      await until(() => upstream.closes.length === 1);
      expect(client.messages).to.deep.equal(['{"op":"hello"}']);
      expect(closed.code).to.equal(1001);
      expect(upstream.closes).to.deep.equal([1007]);
    });
  });
});
