import { expect } from 'chai';
import {
  InvalidExtensionsError,
  acceptDeflateResponse,
  answerDeflateOffers,
  deflateOffer,
} from '../../src/handshake/extensions.js';
import { type DeflateParameters, type ResolvedDeflateSettings, resolvePerMessageDeflate } from '../../src/protocol/deflate.js';

function settings(overrides: Record<string, unknown> = {}): ResolvedDeflateSettings {
  return resolvePerMessageDeflate(overrides) as ResolvedDeflateSettings;
}

function params(overrides: Partial<DeflateParameters> = {}): DeflateParameters {
  return { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, ...overrides };
}

describe('handshake/extensions', () => {
  describe('deflateOffer', () => {
    it('offers our windows, and the context takeover flags that are set', () => {
      // A constrained offer is followed by the plain one, which a server refusing the first may take.
      expect(deflateOffer(settings()).header)
        .to.equal('permessage-deflate; server_max_window_bits=12; client_max_window_bits=12, permessage-deflate; client_max_window_bits');
      expect(deflateOffer(settings({ serverMaxWindowBits: 15, clientMaxWindowBits: 15 })).header)
        .to.equal('permessage-deflate; client_max_window_bits');
      expect(deflateOffer(settings({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15 })).header)
        .to.equal('permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=12, permessage-deflate; client_max_window_bits');
    });
  });

  describe('acceptDeflateResponse', () => {
    const offer = deflateOffer(settings());

    it('reads no header, or a blank one, as declined', () => {
      expect(acceptDeflateResponse(undefined, offer)).to.deep.equal({ parameters: undefined });
      expect(acceptDeflateResponse(' ', offer)).to.deep.equal({ parameters: undefined });
    });

    const valid: Array<[string, DeflateParameters]> = [
      // No client_max_window_bits in the answer: the upstream accepts any window from us.
      ['permessage-deflate', params()],
      ['permessage-deflate; server_max_window_bits=12; client_max_window_bits=12', params({ serverMaxWindowBits: 12, clientMaxWindowBits: 12 })],
      ['permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8',
        params({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 8 })],
      ['permessage-deflate;server_max_window_bits="10"', params({ serverMaxWindowBits: 10 })],
      // Answers to the plain offer: any window.
      ['permessage-deflate; server_max_window_bits=13', params({ serverMaxWindowBits: 13 })],
      ['permessage-deflate; client_max_window_bits=13', params({ clientMaxWindowBits: 13 })],
    ];
    for (const [header, expected] of valid) {
      it(`accepts ${JSON.stringify(header)}`, () => {
        expect(acceptDeflateResponse(header, offer)).to.deep.equal({ parameters: expected });
      });
    }

    const invalid: Array<[string, string]> = [
      ['permessage-deflate;;', 'invalid Sec-WebSocket-Extensions "permessage-deflate;;": Unexpected character at index 19'],
      ['x-webkit-deflate-frame', 'extension "x-webkit-deflate-frame" not offered'],
      ['permessage-deflate, x-webkit-deflate-frame', 'not offered'],
      ['permessage-deflate, permessage-deflate', 'permessage-deflate answered 2 times'],
      ['permessage-deflate; client_max_window_bits', 'Invalid value for parameter "client_max_window_bits": true'],
      ['permessage-deflate; server_max_window_bits=7', 'Invalid value for parameter "server_max_window_bits": 7'],
      ['permessage-deflate; server_no_context_takeover=1', 'Invalid value for parameter "server_no_context_takeover"'],
      ['permessage-deflate; mystery', 'Unknown parameter "mystery"'],
      ['permessage-deflate; server_max_window_bits=9; server_max_window_bits=9', 'must have only a single value'],
    ];
    for (const [header, detail] of invalid) {
      it(`refuses ${JSON.stringify(header)}`, () => {
        const result = acceptDeflateResponse(header, offer);
        expect(result).to.have.property('error').that.contains(detail);
      });
    }

    it('lets a server that was not asked for a window choose one', () => {
      const unbounded = deflateOffer(settings({ serverMaxWindowBits: 15 }));
      expect(acceptDeflateResponse('permessage-deflate; server_max_window_bits=15', unbounded))
        .to.deep.equal({ parameters: params() });
    });
  });

  describe('answerDeflateOffers', () => {
    it('answers nothing without a permessage-deflate offer', () => {
      expect(answerDeflateOffers(undefined, settings())).to.equal(undefined);
      expect(answerDeflateOffers('', settings())).to.equal(undefined);
      expect(answerDeflateOffers('x-webkit-deflate-frame; no_context_takeover', settings())).to.equal(undefined);
    });

    const answers: Array<[string, Record<string, unknown>, string, string, DeflateParameters]> = [
      ['a browser offer', {}, 'permessage-deflate; client_max_window_bits',
        'permessage-deflate; client_max_window_bits=12; server_max_window_bits=12', params({ serverMaxWindowBits: 12, clientMaxWindowBits: 12 })],
      ['an offer that cannot bound the client window', {}, 'permessage-deflate',
        'permessage-deflate; server_max_window_bits=12', params({ serverMaxWindowBits: 12 })],
      ['smaller windows asked by the client', {}, 'permessage-deflate; server_max_window_bits=10; client_max_window_bits=9',
        'permessage-deflate; server_max_window_bits=10; client_max_window_bits=9', params({ serverMaxWindowBits: 10, clientMaxWindowBits: 9 })],
      ['no context takeover asked by the client', {}, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
        'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12',
        params({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12 })],
      ['no context takeover asked by us', { serverNoContextTakeover: true, clientNoContextTakeover: true }, 'permessage-deflate; client_max_window_bits',
        'permessage-deflate; client_max_window_bits=12; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12',
        params({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 12 })],
      ['full windows', { serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, 'permessage-deflate; client_max_window_bits',
        'permessage-deflate', params()],
      ['the first of several offers', {}, 'permessage-deflate; server_max_window_bits=10, permessage-deflate',
        'permessage-deflate; server_max_window_bits=10', params({ serverMaxWindowBits: 10 })],
    ];
    for (const [what, given, offer, header, parameters] of answers) {
      it(`answers ${what}`, () => {
        expect(answerDeflateOffers(offer, settings(given))).to.deep.equal({ header, parameters });
      });
    }

    it('with match, answers the first offer that lets both directions pass through', () => {
      const header = 'permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits';
      const upstream = params({ serverMaxWindowBits: 12 });
      expect(answerDeflateOffers(header, settings(), upstream))
        .to.deep.equal({ header: 'permessage-deflate; server_max_window_bits=12', parameters: upstream });
      const reset = params({ serverNoContextTakeover: true, clientNoContextTakeover: true });
      expect(answerDeflateOffers('permessage-deflate; client_max_window_bits', settings(), reset))
        .to.deep.equal({ header: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover', parameters: reset });
    });

    it('with match, falls back to the settings when no offer allows pass-through', () => {
      // The client wants a 10-bit server window; the upstream compresses with 12.
      const answer = answerDeflateOffers('permessage-deflate; server_max_window_bits=10', settings(), params({ serverMaxWindowBits: 12 }));
      expect(answer).to.deep.equal({
        header: 'permessage-deflate; server_max_window_bits=10',
        parameters: params({ serverMaxWindowBits: 10 }),
      });
    });

    const garbled = [
      'permessage-deflate;;',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; client_max_window_bits=7',
      'permessage-deflate; server_max_window_bits',
      'permessage-deflate; mystery',
      'permessage-deflate; client_max_window_bits=9; client_max_window_bits=10',
      'permessage-deflate, permessage-deflate; server_no_context_takeover=yes',
      'x-foo; a="b',
      'permessage-deflate, ',
    ];
    for (const header of garbled) {
      it(`throws InvalidExtensionsError for ${JSON.stringify(header)}`, () => {
        expect(() => answerDeflateOffers(header, settings())).to.throw(InvalidExtensionsError, 'invalid Sec-WebSocket-Extensions header: ');
      });
    }
  });
});
