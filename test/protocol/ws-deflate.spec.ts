import { expect } from 'chai';
import { createRequire } from 'node:module';
import * as ws from 'ws';
import { wsDeflate } from '../../src/protocol/ws-deflate.js';

const require = createRequire(import.meta.url);

describe('protocol/ws-deflate', () => {
  // These exports are undocumented: this spec is what fails if a ws upgrade drops or reshapes them.
  it('finds PerMessageDeflate and extension among the ESM exports of ws, the same as the CommonJS statics', () => {
    const { PerMessageDeflate, extension } = wsDeflate();
    expect(PerMessageDeflate).to.equal((ws as unknown as Record<string, unknown>)['PerMessageDeflate']);
    const commonJs = require('ws') as Record<string, unknown>;
    expect(PerMessageDeflate).to.equal(commonJs['PerMessageDeflate']);
    expect(extension).to.equal(commonJs['extension']);
    expect(PerMessageDeflate.extensionName).to.equal('permessage-deflate');
    expect(extension.parse).to.be.a('function');
    expect(extension.format).to.be.a('function');
  });

  it('is the ws range the bridge was written against', () => {
    const version = (require('ws/package.json') as { version: string }).version;
    const [major, minor] = version.split('.').map(Number);
    expect(major).to.equal(8);
    expect(minor).to.be.at.least(23);
  });

  it('parses and formats Sec-WebSocket-Extensions as the bridge declares', () => {
    const { extension } = wsDeflate();
    const parsed = extension.parse('permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-other');
    expect(Object.keys(parsed)).to.deep.equal(['permessage-deflate', 'x-other']);
    expect({ ...parsed['permessage-deflate']![0] }).to.deep.equal({ client_max_window_bits: [true], server_max_window_bits: ['10'] });
    expect(() => extension.parse('permessage-deflate;;')).to.throw(SyntaxError);
    expect(extension.format({ 'permessage-deflate': { server_no_context_takeover: true, client_max_window_bits: 9 } }))
      .to.equal('permessage-deflate; server_no_context_takeover; client_max_window_bits=9');
  });

  it('has the PerMessageDeflate members the codecs use, _maxPayload included', () => {
    const { PerMessageDeflate } = wsDeflate();
    const pmd = new PerMessageDeflate({ isServer: true, maxPayload: 7 });
    expect(pmd._maxPayload).to.equal(7);
    for (const name of ['offer', 'accept', 'compress', 'decompress', 'cleanup'] as const) {
      expect(pmd[name]).to.be.a('function');
    }
    expect(pmd.params).to.equal(null);
    expect(pmd.accept([{ client_max_window_bits: ['10'] }])).to.deep.equal({ client_max_window_bits: 10 });
  });
});
