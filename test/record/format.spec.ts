import { expect } from 'chai';
import { WebSocketProxyError } from '../../src/errors.js';
import { binaryFrame, closeFrame, continuationFrame, pingFrame, textFrame } from '../../src/frame.js';
import {
  RECORDING_FORMAT, RECORDING_VERSION, frameFromRecord, parseRecording, recordFrame, recordingHeader, toJsonLine,
} from '../../src/record/format.js';
import { view } from '../helpers/frames.js';

const META = { time: 1700000000123.5, connection: 'c1', from: 'client' as const };

describe('record/format', () => {
  describe('recordFrame()', () => {
    it('records time, connection, side, type, FIN, size; text as UTF-8, binary as base64', () => {
      expect(recordFrame(textFrame('héllo'), META)).to.deep.equal({
        time: 1700000000123.5, connection: 'c1', from: 'client', type: 'text', fin: true, size: 6, data: 'héllo', encoding: 'utf8',
      });
      expect(recordFrame(binaryFrame(Buffer.from('hi')), META)).to.include({ data: 'aGk=', encoding: 'base64', size: 2 });
    });

    it('uses base64 for a text fragment that splits a character, so the bytes survive', () => {
      const euro = Buffer.from('€');
      const record = recordFrame(textFrame(euro.subarray(0, 2), false), META);
      expect(record).to.include({ fin: false, encoding: 'base64', data: euro.subarray(0, 2).toString('base64') });
    });

    it('uses base64 for a continuation of a binary message when told, UTF-8 otherwise', () => {
      expect(recordFrame(continuationFrame('ab'), { ...META, binary: true })).to.include({ encoding: 'base64' });
      expect(recordFrame(continuationFrame('ab'), META)).to.include({ encoding: 'utf8', data: 'ab' });
    });

    it('records a close frame with its code and its reason as data; RSV1 only when set', () => {
      const record = recordFrame(closeFrame(4000, 'bye'), META);
      expect(record).to.include({ type: 'close', code: 4000, size: 3, data: 'bye' });
      expect(record).to.not.have.property('rsv1');
      expect(recordFrame({ ...textFrame('x'), rsv1: true }, META)).to.include({ rsv1: true });
      expect(recordFrame(closeFrame(), META)).to.not.have.property('code');
    });

    it('leaves the payload out with payloads: false, keeps the first n bytes with a number', () => {
      const none = recordFrame(textFrame('hello'), META, false);
      expect(none).to.not.have.any.keys('data', 'encoding', 'truncated');
      expect(none.size).to.equal(5);
      expect(recordFrame(textFrame('hello'), META, 3)).to.include({ data: 'hel', truncated: true, size: 5 });
      expect(recordFrame(textFrame('hel'), META, 3)).to.not.have.property('truncated');
      // A cut inside a character makes the kept bytes invalid UTF-8 on their own: base64.
      expect(recordFrame(textFrame('a€'), META, 2)).to.include({ encoding: 'base64', truncated: true });
    });

    it('holds no reference to the payload', () => {
      const payload = Buffer.from('abc');
      const record = recordFrame(binaryFrame(payload), META);
      payload.fill(0);
      expect(record.data).to.equal(Buffer.from('abc').toString('base64'));
    });
  });

  describe('frameFromRecord()', () => {
    it('rebuilds every kind of frame byte for byte', () => {
      const frames = [textFrame('a€', false), continuationFrame(Buffer.from([0xe2])), binaryFrame(Buffer.from([0, 255])),
        pingFrame(Buffer.from([0xff])), closeFrame(1001, 'gone'), closeFrame(), textFrame(''), { ...binaryFrame('z'), rsv1: true }];
      for (const frame of frames) expect(view(frameFromRecord(recordFrame(frame, META)))).to.deep.equal(view(frame));
    });

    it('throws a TypeError for a record without data or with truncated data; an empty payload needs none', () => {
      expect(() => frameFromRecord(recordFrame(textFrame('abc'), META, false))).to.throw(TypeError, 'record.data is missing');
      expect(() => frameFromRecord(recordFrame(textFrame('abc'), META, 1))).to.throw(TypeError, 'record.data is truncated');
      expect(frameFromRecord(recordFrame(textFrame(''), META, false)).payload.length).to.equal(0);
    });
  });

  describe('recordingHeader() / toJsonLine() / parseRecording()', () => {
    it('writes a header with format, version, ISO time and connection, one JSON object per line', () => {
      const header = recordingHeader('c1', new Date(0));
      expect(header).to.deep.equal({ format: RECORDING_FORMAT, version: RECORDING_VERSION, created: '1970-01-01T00:00:00.000Z', connection: 'c1' });
      expect(recordingHeader()).to.not.have.property('connection');
      expect(toJsonLine(header)).to.equal(`${JSON.stringify(header)}\n`);
    });

    it('reads back what it wrote, with an optional summary line, skipping blank lines', () => {
      const frames = [recordFrame(textFrame('a'), META), recordFrame(closeFrame(1000), { ...META, from: 'upstream' })];
      const summary = { summary: true as const, frames: 2, dropped: 1, skipped: 0 };
      const text = toJsonLine(recordingHeader('c1')) + frames.map(toJsonLine).join('') + '\n' + toJsonLine(summary);
      const parsed = parseRecording(text);
      expect(parsed.header.connection).to.equal('c1');
      expect(parsed.frames).to.deep.equal(frames);
      expect(parsed.summary).to.deep.equal(summary);
    });

    it('fails with WSP_ERR_INVALID_RECORDING naming the bad line', () => {
      const header = toJsonLine(recordingHeader());
      const good = toJsonLine(recordFrame(textFrame('a'), META));
      const cases: [string, string][] = [
        ['', 'line 1: no header line'],
        ['{"format":"other"}\n', 'line 1: not a ws-frame-proxy-recording header'],
        [`{"format":"${RECORDING_FORMAT}","version":99,"created":""}\n`, 'line 1: version 99 is newer'],
        [`${header}${good}not json\n`, 'line 3: not JSON'],
        [`${header}\n${good.replace('"client"', '"server"')}`, "line 3: from must be 'client' or 'upstream'"],
        [`${header}${good.replace('"text"', '"nope"')}`, 'line 2: type must be a frame type'],
        [`${header}${good.replace('"size":1', '"size":-1')}`, 'line 2: size must be an integer >= 0'],
        [`${header}${good.replace('"utf8"', '"hex"')}`, "line 2: encoding must be 'utf8' or 'base64'"],
        [`${header}{"summary":true,"frames":0,"dropped":0,"skipped":0}\n${good}`, 'line 3: a line after the summary'],
      ];
      for (const [text, message] of cases) {
        let caught: unknown;
        try {
          parseRecording(text);
        } catch (err) {
          caught = err;
        }
        expect(caught, message).to.be.instanceOf(WebSocketProxyError);
        expect((caught as WebSocketProxyError).code).to.equal('WSP_ERR_INVALID_RECORDING');
        expect((caught as Error).message).to.include(message);
      }
    });
  });
});
