/**
 * Negotiation of permessage-deflate (RFC 7692) on one hop, in `Sec-WebSocket-Extensions`: the
 * offer the proxy sends its upstream and the check of the answer, and the proxy's answer to a
 * client's offers. Parsing, formatting and parameter rules are `ws`'s (`extension`,
 * `PerMessageDeflate.offer/accept`); this module decides what to ask for and what to accept.
 *
 * @packageDocumentation
 */
import {
  type DeflateParameters,
  type ResolvedDeflateSettings,
  parametersFromWs,
  passThroughDirections,
} from '../protocol/deflate.js';
import { type WsDeflateOptions, type WsParams, wsDeflate } from '../protocol/ws-deflate.js';

const EXTENSION = 'permessage-deflate';

/** What the proxy offered its upstream. */
export interface DeflateOffer {
  /** The `Sec-WebSocket-Extensions` request header value. */
  readonly header: string;
  /** The settings the offer was made from. */
  readonly settings: ResolvedDeflateSettings;
}

/**
 * The offer for the upstream request: `permessage-deflate` with `client_max_window_bits` (bare,
 * or with our window when it is below 15), `server_max_window_bits` when below 15, and the
 * `*_no_context_takeover` parameters that are set.
 *
 * @param settings - validated settings
 */
export function deflateOffer(settings: ResolvedDeflateSettings): DeflateOffer {
  const { PerMessageDeflate, extension } = wsDeflate();
  const options = clientOptions(settings);
  const params = new PerMessageDeflate(options).offer();
  if (Object.keys(options).length === 0) return { header: extension.format({ [EXTENSION]: params }), settings };
  // A server may refuse a constrained offer outright rather than decline it (ws answers 400 when
  // our server_max_window_bits is below its own setting): a second, plain offer, the one browsers
  // send, keeps such an upstream reachable, at the cost of its full window (see docs/architecture.md).
  const plain = new PerMessageDeflate({}).offer();
  return { header: extension.format({ [EXTENSION]: [params, plain] }), settings };
}

/** ws client options for our side of the upstream hop; `false` flags are left out (not "forbid"). */
function clientOptions(settings: ResolvedDeflateSettings): WsDeflateOptions {
  return {
    ...(settings.serverNoContextTakeover ? { serverNoContextTakeover: true } : {}),
    ...(settings.clientNoContextTakeover ? { clientNoContextTakeover: true } : {}),
    ...(settings.serverMaxWindowBits < 15 ? { serverMaxWindowBits: settings.serverMaxWindowBits } : {}),
    ...(settings.clientMaxWindowBits < 15 ? { clientMaxWindowBits: settings.clientMaxWindowBits } : {}),
  };
}

/** A copy of offers as parsed by ws (accept() normalizes them in place). */
function copy(offers: readonly WsParams[]): WsParams[] {
  return offers.map((params) => Object.fromEntries(Object.entries(params).map(([key, values]) => [key, Array.isArray(values) ? [...values] : values])));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Checks the upstream's `Sec-WebSocket-Extensions` answer against our offer.
 *
 * @param header - the response header (undefined or blank: the upstream declined, no compression)
 * @param offer - what was offered
 * @returns the hop's parameters (undefined when declined), or the reason to fail the connection
 */
export function acceptDeflateResponse(
  header: string | undefined,
  offer: DeflateOffer,
): { parameters: DeflateParameters | undefined } | { error: string } {
  if (header === undefined || header.trim() === '') return { parameters: undefined };
  const { PerMessageDeflate, extension } = wsDeflate();
  let parsed: Record<string, WsParams[]>;
  try {
    parsed = extension.parse(header);
  } catch (err) {
    return { error: `invalid Sec-WebSocket-Extensions ${JSON.stringify(header)}: ${describe(err)}` };
  }
  // RFC 6455 section 4.1: "If the response includes a |Sec-WebSocket-Extensions| header field and
  // this header field indicates the use of an extension that was not present in the client's
  // handshake ... the client MUST _Fail the WebSocket Connection_."
  const names = Object.keys(parsed);
  const answers = parsed[EXTENSION];
  if (names.length !== 1 || answers === undefined) {
    return { error: `extension ${JSON.stringify(header)} not offered` };
  }
  if (answers.length !== 1) return { error: `permessage-deflate answered ${answers.length} times` };
  const answered = answers[0]!;
  const clientWindowAnswered = answered['client_max_window_bits'] !== undefined;
  let accepted: Record<string, number | true> | undefined;
  let refusal = '';
  // The answer accepts one of the offers, without saying which: the constrained one, or else the
  // plain one (when it was made).
  const offered = [clientOptions(offer.settings)];
  if (Object.keys(offered[0]!).length > 0) offered.push({});
  for (const options of offered) {
    try {
      // RFC 7692 section 7.1: "A client MUST _Fail the WebSocket Connection_ if the peer server
      // accepted an extension negotiation offer for this extension with an extension negotiation
      // response" including an undefined or repeated parameter or an invalid value, or that
      // represents a configuration the client does not support; ws's acceptAsClient checks these.
      // A server_max_window_bits above our constrained offer's (RFC 7692 section 7.1.2.1: "the same
      // or smaller value as the offer") answers the plain offer, which allows any: nothing to refuse.
      accepted = new PerMessageDeflate(options).accept(copy(answers));
      break;
    } catch (err) {
      refusal ||= describe(err);
    }
  }
  if (accepted === undefined) {
    return { error: `unacceptable Sec-WebSocket-Extensions ${JSON.stringify(header)}: ${refusal}` };
  }
  const parameters = parametersFromWs(accepted);
  // ws fills in our own client window when the answer has none; the hop's parameter is what the
  // upstream accepts (15), our smaller window being our choice (see MessageDeflater).
  return {
    parameters: clientWindowAnswered ? parameters : { ...parameters, clientMaxWindowBits: 15 },
  };
}

/** The proxy's answer to a client's permessage-deflate offers. */
export interface DeflateAnswer {
  /** The `Sec-WebSocket-Extensions` response header value. */
  readonly header: string;
  /** What the hop negotiated. */
  readonly parameters: DeflateParameters;
}

/** A `Sec-WebSocket-Extensions` request header that cannot be parsed, or with an invalid parameter. */
export class InvalidExtensionsError extends Error {
  /** @param detail - what is wrong */
  constructor(detail: string) {
    super(`invalid Sec-WebSocket-Extensions header: ${detail}`);
    this.name = 'InvalidExtensionsError';
  }
}

/** The first value of a raw offer parameter, or undefined when absent. */
function raw(offer: WsParams, key: string): string | true | undefined {
  const values = offer[key];
  return Array.isArray(values) ? values[0] : undefined;
}

/**
 * ws server options that accept `offer` with parameters as close to `target` as the offer allows:
 * a window the client asks to be smaller is made smaller, a client window is only bounded when the
 * client offered `client_max_window_bits`, and `false` flags are left out (a client asking for no
 * context takeover gets it).
 */
function serverOptions(offer: WsParams, target: DeflateParameters): WsDeflateOptions {
  const askedServer = raw(offer, 'server_max_window_bits');
  const serverBits = askedServer === undefined ? target.serverMaxWindowBits : Math.min(target.serverMaxWindowBits, Number(askedServer));
  const offeredClient = raw(offer, 'client_max_window_bits');
  let clientBits: number | undefined;
  if (offeredClient === true) clientBits = target.clientMaxWindowBits < 15 ? target.clientMaxWindowBits : undefined;
  else if (offeredClient !== undefined) clientBits = Math.min(target.clientMaxWindowBits, Number(offeredClient));
  return {
    isServer: true,
    ...(target.serverNoContextTakeover ? { serverNoContextTakeover: true } : {}),
    ...(target.clientNoContextTakeover ? { clientNoContextTakeover: true } : {}),
    ...(serverBits < 15 ? { serverMaxWindowBits: serverBits } : {}),
    ...(clientBits === undefined ? {} : { clientMaxWindowBits: clientBits }),
  };
}

/**
 * The permessage-deflate offers of a client's `Sec-WebSocket-Extensions`, checked as `ws` checks
 * them: the header must parse, and each offer's parameters must be known, single and valid. ws's
 * parser reads the header once, character by character: linear in its length, whatever it holds.
 *
 * @param header - the client's `Sec-WebSocket-Extensions` (several lines joined by ", ")
 * @returns the offers, or undefined when the header is absent or blank or offers no permessage-deflate
 * @throws {@link InvalidExtensionsError} for a header ws cannot parse or an offer with an unknown,
 *   repeated or invalid parameter
 */
export function deflateOffers(header: string | undefined): WsParams[] | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const { PerMessageDeflate, extension } = wsDeflate();
  try {
    const offers = extension.parse(header)[EXTENSION];
    if (offers === undefined) return undefined;
    // A server instance with no options accepts any well-formed offer: this throws only for a
    // malformed one (ws's normalizeParams).
    new PerMessageDeflate({ isServer: true }).accept(copy(offers));
    return offers;
  } catch (err) {
    throw new InvalidExtensionsError(describe(err));
  }
}

/**
 * Answers a client's `Sec-WebSocket-Extensions` offers (as the server of the hop). Offers are
 * tried in the client's order of preference. With `match` (normally the upstream hop's
 * parameters), the first offer that can be answered so that both directions pass through (see
 * `passThroughDirections`) wins; otherwise, or without `match`, the first offer acceptable with
 * `settings`. An offer that cannot be accepted is declined, not an error (RFC 7692 section 5: "the
 * server declines"); unlike `ws`, which answers 400 when no offer is acceptable.
 *
 * @param header - the client's `Sec-WebSocket-Extensions` (several lines joined by ", ")
 * @param settings - validated settings
 * @param match - parameters to reproduce when the client's offers allow
 * @returns the answer, or undefined when the client offered no permessage-deflate or none is
 *   acceptable (no extension then)
 * @throws {@link InvalidExtensionsError} for a header ws cannot parse or a permessage-deflate offer
 *   with an unknown, repeated or invalid parameter: `ws` answers those with 400, and so should the
 *   caller
 */
export function answerDeflateOffers(
  header: string | undefined,
  settings: ResolvedDeflateSettings,
  match?: DeflateParameters,
): DeflateAnswer | undefined {
  const offers = deflateOffers(header);
  if (offers === undefined) return undefined;
  const { PerMessageDeflate, extension } = wsDeflate();
  const attempt = (offer: WsParams, target: DeflateParameters): DeflateAnswer | undefined => {
    try {
      const accepted = new PerMessageDeflate(serverOptions(offer, target)).accept(copy([offer]));
      return { header: extension.format({ [EXTENSION]: accepted }), parameters: parametersFromWs(accepted) };
    } catch {
      return undefined;
    }
  };
  if (match !== undefined) {
    for (const offer of offers) {
      const answer = attempt(offer, match);
      if (answer === undefined) continue;
      const relay = passThroughDirections(answer.parameters, match);
      if (relay.clientToUpstream && relay.upstreamToClient) return answer;
    }
  }
  const target: DeflateParameters = settings;
  for (const offer of offers) {
    const answer = attempt(offer, target);
    if (answer !== undefined) return answer;
  }
  return undefined;
}
