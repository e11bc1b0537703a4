import { expect } from 'chai';
import {
  CloseCode,
  type FrameType,
  Opcode,
  binaryFrame,
  closeFrame,
  continuationFrame,
  isControlType,
  isValidCloseCode,
  opcodeOf,
  pingFrame,
  pongFrame,
  textFrame,
} from '../src/frame.js';
import { view } from './fixtures/frames.js';

describe('frame', () => {
  describe('constructors', () => {
    it('textFrame encodes a string as UTF-8, FIN set by default', () => {
      expect(view(textFrame('hé'))).to.deep.equal({
        type: 'text', fin: true, rsv1: false, payload: '68c3a9', code: null, hasCode: false,
      });
    });

    it('textFrame takes a Buffer as it is and fin=false', () => {
      const payload = Buffer.from([0xe2, 0x82]);
      const f = textFrame(payload, false);
      expect(f.payload).to.equal(payload);
      expect(view(f)).to.deep.equal({
        type: 'text', fin: false, rsv1: false, payload: 'e282', code: null, hasCode: false,
      });
    });

    it('binaryFrame', () => {
      expect(view(binaryFrame(Buffer.from([0, 255])))).to.deep.equal({
        type: 'binary', fin: true, rsv1: false, payload: '00ff', code: null, hasCode: false,
      });
      expect(view(binaryFrame('ab', false))).to.deep.equal({
        type: 'binary', fin: false, rsv1: false, payload: '6162', code: null, hasCode: false,
      });
    });

    it('continuationFrame', () => {
      expect(view(continuationFrame('x'))).to.deep.equal({
        type: 'continuation', fin: true, rsv1: false, payload: '78', code: null, hasCode: false,
      });
      expect(view(continuationFrame(Buffer.alloc(0), false))).to.deep.equal({
        type: 'continuation', fin: false, rsv1: false, payload: '', code: null, hasCode: false,
      });
    });

    it('pingFrame with and without data', () => {
      expect(view(pingFrame())).to.deep.equal({
        type: 'ping', fin: true, rsv1: false, payload: '', code: null, hasCode: false,
      });
      expect(view(pingFrame('hi'))).to.deep.equal({
        type: 'ping', fin: true, rsv1: false, payload: '6869', code: null, hasCode: false,
      });
    });

    it('pongFrame with and without data', () => {
      expect(view(pongFrame())).to.deep.equal({
        type: 'pong', fin: true, rsv1: false, payload: '', code: null, hasCode: false,
      });
      expect(view(pongFrame(Buffer.from([1, 2])))).to.deep.equal({
        type: 'pong', fin: true, rsv1: false, payload: '0102', code: null, hasCode: false,
      });
    });

    it('closeFrame without a code has no code property and an empty payload', () => {
      const f = closeFrame();
      expect(Object.keys(f).sort()).to.deep.equal(['fin', 'payload', 'rsv1', 'type']);
      expect(view(f)).to.deep.equal({
        type: 'close', fin: true, rsv1: false, payload: '', code: null, hasCode: false,
      });
    });

    it('closeFrame with a code, and with a code and a reason', () => {
      expect(view(closeFrame(1000))).to.deep.equal({
        type: 'close', fin: true, rsv1: false, payload: '', code: 1000, hasCode: true,
      });
      expect(view(closeFrame(4000, 'bye'))).to.deep.equal({
        type: 'close', fin: true, rsv1: false, payload: '627965', code: 4000, hasCode: true,
      });
      expect(view(closeFrame(1001, Buffer.from([0xc3, 0xa9])))).to.deep.equal({
        type: 'close', fin: true, rsv1: false, payload: 'c3a9', code: 1001, hasCode: true,
      });
    });
  });

  describe('isValidCloseCode', () => {
    const cases: readonly [number, boolean][] = [
      [0, false], [999, false], [1000, true], [1001, true], [1002, true], [1003, true],
      [1004, false], [1005, false], [1006, false], [1007, true], [1011, true], [1014, true],
      [1015, false], [1016, false], [2999, false], [3000, true], [4999, true], [5000, false],
      [65535, false], [-1000, false],
    ];
    for (const [code, valid] of cases) {
      it(`${valid ? 'accepts' : 'rejects'} ${code}`, () => {
        expect(isValidCloseCode(code)).to.equal(valid);
      });
    }

    it('rejects non-integers and NaN, which cannot be sent as a 16-bit code', () => {
      expect(isValidCloseCode(1000.5)).to.equal(false);
      expect(isValidCloseCode(3000.25)).to.equal(false);
      expect(isValidCloseCode(NaN)).to.equal(false);
      expect(isValidCloseCode(Infinity)).to.equal(false);
    });

    it('agrees with CloseCode: only the reserved NO_STATUS, ABNORMAL and TLS_HANDSHAKE are invalid', () => {
      const invalid = Object.entries(CloseCode).filter(([, code]) => !isValidCloseCode(code)).map(([name]) => name);
      expect(invalid.sort()).to.deep.equal(['ABNORMAL', 'NO_STATUS', 'TLS_HANDSHAKE']);
    });
  });

  describe('opcodeOf', () => {
    it('gives the RFC 6455 opcode of each type', () => {
      const types: FrameType[] = ['continuation', 'text', 'binary', 'close', 'ping', 'pong'];
      expect(types.map((t) => opcodeOf(t))).to.deep.equal([0x0, 0x1, 0x2, 0x8, 0x9, 0xa]);
      expect(Opcode).to.deep.equal({ CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 });
    });

    it('gives undefined for a value that is not a frame type, prototype keys included', () => {
      for (const bad of ['', 'TEXT', 'unknown', 'toString', 'constructor', '__proto__', 'valueOf', 'hasOwnProperty']) {
        expect(opcodeOf(bad as FrameType), bad).to.equal(undefined);
      }
    });
  });

  describe('isControlType', () => {
    it('is true for close, ping and pong only', () => {
      const types: FrameType[] = ['continuation', 'text', 'binary', 'close', 'ping', 'pong'];
      expect(types.map((t) => isControlType(t))).to.deep.equal([false, false, false, true, true, true]);
    });
  });
});
