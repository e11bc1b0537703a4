import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ErrorCode, ErrorCodes, HandshakeError, WebSocketProxyError, isWebSocketProxyError } from '../src/errors.js';

const CODES = Object.keys(ErrorCodes) as ErrorCode[];
// 1001 (going away) is WSP_ERR_SEND_TIMEOUT's: a peer that accepts no bytes is treated as gone.
const CLOSE_CODES = [1001, 1002, 1006, 1007, 1008, 1009, 1011, 1014];

/** The rows of the table in docs/errors.md whose first cell is a code in backquotes. */
function docRows(): { code: string; closeCode: number }[] {
  const text = readFileSync(resolve(process.cwd(), 'docs/errors.md'), 'utf8');
  const rows: { code: string; closeCode: number }[] = [];
  for (const line of text.split('\n')) {
    const match = /^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|/.exec(line);
    if (match !== null) rows.push({ code: match[1]!, closeCode: Number(match[2]) });
  }
  return rows;
}

describe('errors', () => {
  describe('ErrorCodes', () => {
    it('has codes', () => {
      expect(CODES.length).to.be.at.least(20);
    });

    for (const code of CODES) {
      it(`${code} starts with WSP_ERR_, has a known close code and a message`, () => {
        expect(code).to.match(/^WSP_ERR_[A-Z0-9_]+$/);
        expect(CLOSE_CODES).to.include(ErrorCodes[code].closeCode);
        expect(ErrorCodes[code].message).to.be.a('string').and.not.equal('');
      });
    }

    it('gives the protocol-layer codes the close codes RFC 6455 calls for', () => {
      const expected: Partial<Record<ErrorCode, number>> = {
        WSP_ERR_UNEXPECTED_RSV: 1002,
        WSP_ERR_INVALID_OPCODE: 1002,
        WSP_ERR_FRAGMENTED_CONTROL: 1002,
        WSP_ERR_CONTROL_TOO_LONG: 1002,
        WSP_ERR_INVALID_LENGTH: 1002,
        WSP_ERR_MASK_REQUIRED: 1002,
        WSP_ERR_MASK_FORBIDDEN: 1002,
        WSP_ERR_INVALID_CLOSE_BODY: 1002,
        WSP_ERR_INVALID_CLOSE_CODE: 1002,
        WSP_ERR_INVALID_UTF8: 1007,
        WSP_ERR_UNEXPECTED_CONTINUATION: 1002,
        WSP_ERR_MESSAGE_NOT_FINISHED: 1002,
        WSP_ERR_FRAME_TOO_LARGE: 1009,
        WSP_ERR_BUFFER_LIMIT: 1009,
        WSP_ERR_TRUNCATED_FRAME: 1006,
      };
      for (const [code, closeCode] of Object.entries(expected)) {
        expect(ErrorCodes[code as ErrorCode].closeCode, code).to.equal(closeCode);
      }
    });
  });

  describe('WebSocketProxyError', () => {
    it('carries code, closeCode, name and the table message', () => {
      const err = new WebSocketProxyError('WSP_ERR_INVALID_OPCODE');
      expect(err).to.be.instanceOf(Error);
      expect(err).to.be.instanceOf(WebSocketProxyError);
      expect(err.code).to.equal('WSP_ERR_INVALID_OPCODE');
      expect(err.closeCode).to.equal(1002);
      expect(err.name).to.equal('WebSocketProxyError');
      expect(err.message).to.equal('reserved opcode');
      expect(err.stack).to.be.a('string');
    });

    it('appends the detail to the message after a colon', () => {
      const err = new WebSocketProxyError('WSP_ERR_FRAME_TOO_LARGE', '17 > 16');
      expect(err.message).to.equal('frame payload exceeds maxFrameSize: 17 > 16');
      expect(err.closeCode).to.equal(1009);
      expect(String(err)).to.equal('WebSocketProxyError: frame payload exceeds maxFrameSize: 17 > 16');
    });

    for (const code of CODES) {
      it(`takes closeCode and message of ${code} from the table`, () => {
        const err = new WebSocketProxyError(code, 'x');
        expect(err.code).to.equal(code);
        expect(err.closeCode).to.equal(ErrorCodes[code].closeCode);
        expect(err.message).to.equal(`${ErrorCodes[code].message}: x`);
      });
    }
  });

  describe('HandshakeError', () => {
    it('carries the cause it was given, and none otherwise', () => {
      const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      const err = new HandshakeError('WSP_ERR_UPSTREAM_UNREACHABLE', 'ECONNREFUSED', { cause });
      expect(err.cause).to.equal(cause);
      expect(err.statusCode).to.equal(undefined);
      expect(new HandshakeError('WSP_ERR_UPSTREAM_TIMEOUT').cause).to.equal(undefined);
      expect(new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED', undefined, { cause }).cause).to.equal(cause);
    });

    it('carries statusCode, headers and body', () => {
      const headers = { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] };
      const body = Buffer.from('nope');
      const err = new HandshakeError('WSP_ERR_UPSTREAM_REJECTED', '403', { statusCode: 403, headers, body });
      expect(err).to.be.instanceOf(Error);
      expect(err).to.be.instanceOf(WebSocketProxyError);
      expect(err).to.be.instanceOf(HandshakeError);
      expect(err.name).to.equal('HandshakeError');
      expect(err.code).to.equal('WSP_ERR_UPSTREAM_REJECTED');
      expect(err.closeCode).to.equal(1014);
      expect(err.message).to.equal('upstream rejected the WebSocket handshake: 403');
      expect(err.statusCode).to.equal(403);
      expect(err.headers).to.equal(headers);
      expect(err.body).to.equal(body);
    });

    it('leaves statusCode, headers and body undefined without a response', () => {
      const err = new HandshakeError('WSP_ERR_UPSTREAM_TIMEOUT');
      expect(err.message).to.equal('upstream handshake timed out');
      expect(err.closeCode).to.equal(1014);
      expect(err.statusCode).to.equal(undefined);
      expect(err.headers).to.equal(undefined);
      expect(err.body).to.equal(undefined);
    });

    it('takes a status alone for a rejected client request', () => {
      const err = new HandshakeError('WSP_ERR_CLIENT_HANDSHAKE', 'bad version', { statusCode: 426 });
      expect(err.closeCode).to.equal(1002);
      expect(err.statusCode).to.equal(426);
      expect(err.headers).to.equal(undefined);
      expect(err.body).to.equal(undefined);
    });
  });

  describe('isWebSocketProxyError', () => {
    it('is true for WebSocketProxyError and HandshakeError', () => {
      expect(isWebSocketProxyError(new WebSocketProxyError('WSP_ERR_INVALID_UTF8'))).to.equal(true);
      expect(isWebSocketProxyError(new HandshakeError('WSP_ERR_CLIENT_HANDSHAKE'))).to.equal(true);
    });

    it('is false for anything else, look-alikes included', () => {
      const fake = new Error('reserved opcode') as Error & { code?: string; closeCode?: number };
      fake.code = 'WSP_ERR_INVALID_OPCODE';
      fake.closeCode = 1002;
      for (const value of [
        new Error(),
        fake,
        { code: 'WSP_ERR_INVALID_OPCODE', closeCode: 1002 },
        { name: 'WebSocketProxyError', code: 'WSP_ERR_INVALID_OPCODE', closeCode: 1002, message: 'x' },
        null,
        undefined,
        'WSP_ERR_INVALID_OPCODE',
        '',
        1002,
      ]) {
        expect(isWebSocketProxyError(value), String(value)).to.equal(false);
      }
    });
  });

  describe('docs/errors.md', () => {
    it('has a table row for every code, with its close code', () => {
      const rows = docRows();
      for (const code of CODES) {
        const matching = rows.filter((row) => row.code === code);
        expect(matching, `rows for ${code}`).to.have.length(1);
        expect(matching[0]!.closeCode, `close code of ${code}`).to.equal(ErrorCodes[code].closeCode);
      }
    });

    it('lists no code that is not in the table', () => {
      const listed = docRows().map((row) => row.code);
      expect(listed.length).to.be.at.least(CODES.length);
      expect(listed.filter((code) => !(CODES as string[]).includes(code))).to.deep.equal([]);
      const text = readFileSync(resolve(process.cwd(), 'docs/errors.md'), 'utf8');
      const mentioned = new Set(text.match(/WSP_ERR_[A-Z0-9_]+/g) ?? []);
      expect([...mentioned].filter((code) => !(CODES as string[]).includes(code))).to.deep.equal([]);
    });
  });
});
