/**
 * The server side of the opening handshake (RFC 6455 section 4.2): validating a client's upgrade
 * request, answering it with a 101 (or a 400/426), and writing plain HTTP error responses on a raw
 * socket for the proxy's 502/504 or a relayed upstream rejection.
 *
 * @packageDocumentation
 */
import { type IncomingMessage, STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HandshakeError } from '../errors.js';
import {
  type DeflateParameters,
  type PerMessageDeflateOption,
  resolvePerMessageDeflate,
} from '../protocol/deflate.js';
import { type DeflateAnswer, InvalidExtensionsError, answerDeflateOffers, deflateOffers } from './extensions.js';
import {
  HOP_BY_HOP_HEADERS,
  acceptKey,
  connectionListedHeaders,
  hasToken,
  parseTokenList,
} from './headers.js';

/** A client request that is a valid WebSocket opening handshake. */
export interface ValidClientRequest {
  /** Always true. */
  ok: true;
  /** The `Sec-WebSocket-Key`, as sent. */
  key: string;
  /** The subprotocols offered in `Sec-WebSocket-Protocol`, in order; empty when none. */
  protocols: string[];
}

/** A client request that is not a valid WebSocket opening handshake, and how to answer it. */
export interface InvalidClientRequest {
  /** Always false. */
  ok: false;
  /** 426 for an unsupported `Sec-WebSocket-Version`, 400 for every other defect. */
  statusCode: 400 | 426;
  /** What is wrong, for the response body and the error message. */
  reason: string;
  /** Headers the response must carry: `Sec-WebSocket-Version: 13` with a 426. */
  headers?: Record<string, string>;
}

/** The outcome of {@link validateClientRequest}. */
export type ClientRequestCheck = ValidClientRequest | InvalidClientRequest;

/** Options of {@link validateClientRequest}. */
export interface ValidateClientRequestOptions {
  /**
   * Whether the request will be answered with permessage-deflate (as `acceptClient`'s option of
   * that name, truthy): its `Sec-WebSocket-Extensions` is then checked too, and one that cannot be
   * parsed, or a permessage-deflate offer with an unknown, repeated or invalid parameter, is 400.
   * Without it the header is not looked at (it is ignored when no extension is answered). A proxy
   * that checks the request before contacting its upstream passes the setting it will answer with,
   * so that such a request is refused before the upstream is bothered with it.
   * @defaultValue false
   */
  perMessageDeflate?: PerMessageDeflateOption;
}

/** Options of {@link acceptClient}. */
export interface AcceptClientOptions {
  /**
   * The subprotocol to select, normally the one the upstream selected. It is answered only if the
   * client offered it; otherwise (or when absent) the 101 carries no `Sec-WebSocket-Protocol`, since
   * a server may only select one of the client's values (RFC 6455 section 4.2.2). The client's list
   * is never echoed.
   * @defaultValue none selected
   */
  protocol?: string;
  /**
   * Extra headers for the 101 response (e.g. `Set-Cookie` relayed from the upstream). Names that
   * define the handshake (`Upgrade`, `Connection`, `Sec-WebSocket-Accept`, `Sec-WebSocket-Protocol`,
   * `Sec-WebSocket-Extensions`) or the message framing (`Content-Length`, `Transfer-Encoding`) are
   * ignored. An invalid name or value rejects with a TypeError before anything is written.
   * @defaultValue {}
   */
  headers?: Readonly<Record<string, string | readonly string[]>>;
  /**
   * Answer the client's permessage-deflate offers (RFC 7692) with these settings (`true`: the
   * defaults of `PerMessageDeflateSettings`): the first acceptable offer, in the client's order, is
   * answered in `Sec-WebSocket-Extensions`; when none is acceptable none is answered. A
   * `Sec-WebSocket-Extensions` header that cannot be parsed, or a permessage-deflate offer with an
   * unknown, repeated or invalid parameter, is answered 400 as `ws` does. With `false` the header is
   * ignored and no extension is answered. Invalid settings reject with a TypeError naming
   * `options.perMessageDeflate`.
   * @defaultValue false
   */
  perMessageDeflate?: PerMessageDeflateOption;
  /**
   * Parameters to reproduce when the client's offers allow, normally those the upstream accepted
   * (`UpstreamConnection.perMessageDeflate`), so that compressed frames can pass through both hops
   * untouched (see `passThroughDirections`). Ignored without `perMessageDeflate`.
   * @defaultValue none: the settings alone decide
   */
  perMessageDeflateMatch?: DeflateParameters;
}

/** A client connection after the 101 response. */
export interface AcceptedClient {
  /** The client's socket, now speaking WebSocket. */
  socket: Duplex;
  /** Bytes the client sent past its request (its first frames), as given to {@link acceptClient}. */
  head: Buffer;
  /** The subprotocol answered in the 101, or undefined for none. */
  protocol: string | undefined;
  /** The permessage-deflate parameters answered in the 101, or undefined for none. */
  perMessageDeflate: DeflateParameters | undefined;
}

/** Response headers of the 101 that the caller may not set. Lower case. */
const RESERVED_101_HEADERS: ReadonlySet<string> = new Set([
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'content-length',
  'transfer-encoding',
]);

/** A base64 encoding of exactly 16 bytes: 22 characters and "==" padding. */
const KEY_SHAPE = /^[A-Za-z0-9+/]{22}==$/;

function invalid(reason: string): InvalidClientRequest {
  return { ok: false, statusCode: 400, reason };
}

/**
 * Checks a client's upgrade request against RFC 6455 section 4.2.1.
 *
 * Every defect gives 400, except an unsupported `Sec-WebSocket-Version`, which gives 426 with
 * `Sec-WebSocket-Version: 13` (section 4.2.2). A *missing* version gives 400: without it the request
 * is not a WebSocket handshake at all (section 4.2.1), whereas 426 answers a version the server does
 * not understand (sections 4.2.2 and 4.4). `Sec-WebSocket-Extensions` is checked only with
 * `options.perMessageDeflate` (see {@link ValidateClientRequestOptions}) and `Origin` is not checked
 * (that is the proxy's policy). Every check is linear in the header's length (no backtracking
 * pattern sees a client's list), whatever the header holds (CVE-2021-32640 was a quadratic split of
 * `Sec-WebSocket-Protocol` in ws).
 *
 * @param req - the request, e.g. from the HTTP server's `'upgrade'` event
 * @param options - see {@link ValidateClientRequestOptions}
 * @returns `{ ok: true, key, protocols }` or `{ ok: false, statusCode, reason, headers? }`
 */
export function validateClientRequest(req: IncomingMessage, options: ValidateClientRequestOptions = {}): ClientRequestCheck {
  const headers = req.headers;
  // Section 4.2.1, item 1: "An HTTP/1.1 or higher GET request".
  if (req.method !== 'GET') return invalid(`method ${req.method ?? '(none)'} is not GET`);
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) {
    return invalid(`HTTP/${req.httpVersion} is older than HTTP/1.1`);
  }
  // Item 2: "A |Host| header field containing the server's authority."
  if (headers.host === undefined || headers.host === '') return invalid('missing Host header');
  // Item 3: "An |Upgrade| header field containing the value "websocket", treated as an ASCII
  // case-insensitive value."
  if (!hasToken(headers.upgrade, 'websocket')) {
    return invalid(headers.upgrade === undefined ? 'missing Upgrade header' : 'Upgrade header does not contain "websocket"');
  }
  // Item 4: "A |Connection| header field that includes the token "Upgrade", treated as an ASCII
  // case-insensitive value."
  if (!hasToken(headers.connection, 'upgrade')) {
    return invalid(headers.connection === undefined ? 'missing Connection header' : 'Connection header does not contain "upgrade"');
  }
  // Item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
  const version = headers['sec-websocket-version'];
  if (version === undefined) return invalid('missing Sec-WebSocket-Version header');
  if (version !== '13') {
    // Section 4.2.2: "If this version does not match a version understood by the server, the server
    // MUST abort the WebSocket handshake ... and instead send an appropriate HTTP error code (such as
    // 426 Upgrade Required) and a |Sec-WebSocket-Version| header field indicating the version(s) the
    // server is capable of understanding."
    return {
      ok: false,
      statusCode: 426,
      reason: `unsupported Sec-WebSocket-Version ${JSON.stringify(version)}`,
      headers: { 'Sec-WebSocket-Version': '13' },
    };
  }
  // Item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that, when decoded, is
  // 16 bytes in length."
  const key = headers['sec-websocket-key'];
  if (key === undefined) return invalid('missing Sec-WebSocket-Key header');
  if (!KEY_SHAPE.test(key) || Buffer.from(key, 'base64').toString('base64') !== key) {
    return invalid('Sec-WebSocket-Key is not the base64 encoding of 16 bytes');
  }
  // Item 8, with section 4.1: the subprotocols "MUST be non-empty strings with characters in the
  // range U+0021 to U+007E not including separator characters ... and MUST all be unique strings."
  const protocols = parseTokenList(headers['sec-websocket-protocol']);
  if (protocols === null) return invalid('Sec-WebSocket-Protocol is not a list of tokens');
  if (new Set(protocols).size !== protocols.length) return invalid('Sec-WebSocket-Protocol lists a subprotocol twice');
  if (options.perMessageDeflate !== undefined && options.perMessageDeflate !== false) {
    try {
      deflateOffers(headers['sec-websocket-extensions']);
    } catch (err) {
      if (!(err instanceof InvalidExtensionsError)) throw err;
      return invalid(err.message);
    }
  }
  return { ok: true, key, protocols };
}

/** `Name: value` lines of the caller's extra headers, validated; reserved names skipped. */
function headerLines(
  headers: Readonly<Record<string, string | readonly string[] | number | undefined>>,
  skip: (lowerName: string) => boolean,
): string[] {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || skip(name.toLowerCase())) continue;
    validateHeaderName(name);
    for (const item of Array.isArray(value) ? value : [value]) {
      const text = String(item);
      validateHeaderValue(name, text);
      lines.push(`${name}: ${text}\r\n`);
    }
  }
  return lines;
}

/** Lets the peer's FIN be read (so the socket closes) and keeps a late error from crashing. */
function letClose(socket: Duplex): void {
  if (socket.listenerCount('error') === 0) socket.on('error', noop);
  socket.resume();
}

/**
 * Answers a client's upgrade request: with `101 Switching Protocols` if it is a valid WebSocket
 * handshake (see {@link validateClientRequest}), else with 400 or 426 and a short `text/plain`
 * reason, after which the socket is ended.
 *
 * The 101 carries `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept`,
 * `Sec-WebSocket-Protocol` only when `options.protocol` is one the client offered (a protocol the
 * upstream selected but the client did not offer is not answered: the client would have to fail
 * the connection, section 4.1), `Sec-WebSocket-Extensions` only with `options.perMessageDeflate`
 * and an acceptable offer, and `options.headers`.
 *
 * @param req - the client's request
 * @param socket - its socket, from the HTTP server's `'upgrade'` event
 * @param head - the bytes the client sent past the request, from the same event
 * @param options - see {@link AcceptClientOptions}
 * @returns once the 101 is handed to the socket: the socket, `head`, the answered subprotocol and
 *   permessage-deflate parameters
 * @throws (rejects) {@link HandshakeError} `WSP_ERR_CLIENT_HANDSHAKE`, with `statusCode` 400 or 426,
 *   for an invalid request (with `perMessageDeflate`, also for a malformed
 *   `Sec-WebSocket-Extensions`); without `statusCode` if the socket is closed or the 101 cannot be
 *   written. TypeError for invalid `options.headers` or `options.perMessageDeflate`.
 */
export async function acceptClient(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: AcceptClientOptions = {},
): Promise<AcceptedClient> {
  if (socket.destroyed || !socket.writable) {
    throw new HandshakeError('WSP_ERR_CLIENT_HANDSHAKE', 'the client socket is closed');
  }
  const extra = headerLines(options.headers ?? {}, (name) => RESERVED_101_HEADERS.has(name));
  const settings = resolvePerMessageDeflate(options.perMessageDeflate ?? false);

  const check = validateClientRequest(req);
  if (!check.ok) rejectRequest(socket, check);
  let deflate: DeflateAnswer | undefined;
  if (settings !== false) {
    try {
      // Section 4.2.2, /extensions/: "Either a list representing the protocol-level extensions the
      // server is ready to use or null"; RFC 7692 section 5: the server accepts one offer or none.
      deflate = answerDeflateOffers(req.headers['sec-websocket-extensions'], settings, options.perMessageDeflateMatch);
    } catch (err) {
      if (!(err instanceof InvalidExtensionsError)) throw err;
      rejectRequest(socket, { ok: false, statusCode: 400, reason: err.message });
    }
  }

  // Section 4.2.2, item 5.3: "Either a single value representing the subprotocol the server is
  // ready to use or null. The value chosen MUST be derived from the client's handshake".
  const protocol = options.protocol !== undefined && check.protocols.includes(options.protocol)
    ? options.protocol
    : undefined;
  // Section 4.2.2, item 5: the status line, Upgrade, Connection and Sec-WebSocket-Accept.
  const response = 'HTTP/1.1 101 Switching Protocols\r\n'
    + 'Upgrade: websocket\r\n'
    + 'Connection: Upgrade\r\n'
    + `Sec-WebSocket-Accept: ${acceptKey(check.key)}\r\n`
    + (protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`)
    + (deflate === undefined ? '' : `Sec-WebSocket-Extensions: ${deflate.header}\r\n`)
    + extra.join('')
    + '\r\n';

  if (socket instanceof Socket) socket.setNoDelay(true);
  return new Promise<AcceptedClient>((resolve, reject) => {
    let settled = false;
    const failed = (err: Error): void => {
      if (settled) return;
      settled = true;
      // Keep a listener: the socket may still emit this error after the write callback.
      socket.on('error', noop);
      socket.off('error', failed);
      reject(new HandshakeError('WSP_ERR_CLIENT_HANDSHAKE', `cannot write the 101 response: ${err.message}`, { cause: err }));
    };
    socket.on('error', failed);
    socket.write(Buffer.from(response, 'latin1'), (err?: Error | null) => {
      if (err) {
        failed(err);
        return;
      }
      if (settled) return;
      settled = true;
      socket.off('error', failed);
      resolve({ socket, head, protocol, perMessageDeflate: deflate?.parameters });
    });
  });
}

/**
 * Answers an invalid request with its status and a `text/plain` reason, ends the socket, and throws
 * the matching `WSP_ERR_CLIENT_HANDSHAKE`.
 */
function rejectRequest(socket: Duplex, check: InvalidClientRequest): never {
  const headers = { 'Content-Type': 'text/plain; charset=utf-8', ...check.headers };
  // Section 4.2.1: the server "MUST stop processing the client's handshake and return an HTTP
  // response with an appropriate error code (such as 400 Bad Request)".
  writeHttpResponse(socket, check.statusCode, headers, `${check.reason}\n`);
  throw new HandshakeError('WSP_ERR_CLIENT_HANDSHAKE', check.reason, { statusCode: check.statusCode, headers });
}

/**
 * Writes a complete HTTP/1.1 response on a raw socket and ends the socket: for the proxy's own
 * errors (502, 504...) and for relaying an upstream's non-101 answer (`HandshakeError` `statusCode`,
 * `headers` and `body`).
 *
 * Hop-by-hop headers (`Connection` and those it names, `Keep-Alive`, `Transfer-Encoding`,
 * `Upgrade`...) and `Sec-WebSocket-Accept` are dropped; `Connection: close` is added, and
 * `Content-Length` is recomputed for `body` (none for 1xx, 204 and 304, which have no body; `body`
 * is then ignored). `Date` is added when absent. A closed socket is destroyed and nothing is written.
 * Once the response is flushed the socket is destroyed, or after {@link RESPONSE_FLUSH_TIMEOUT} ms if
 * the client does not take it.
 *
 * @param socket - the client's socket (not yet upgraded)
 * @param statusCode - 100 to 599, not 101
 * @param headers - response headers, e.g. an upstream's `IncomingHttpHeaders`
 * @param body - the body, if any
 * @throws TypeError for an invalid status code, header name or header value (nothing is written)
 */
export function writeHttpResponse(
  socket: Duplex,
  statusCode: number,
  headers: Readonly<Record<string, string | readonly string[] | number | undefined>> = {},
  body?: Buffer | string,
): void {
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599 || statusCode === 101) {
    throw new TypeError(`invalid status code ${statusCode} for an HTTP error response`);
  }
  const connection = Object.entries(headers).find(([name]) => name.toLowerCase() === 'connection')?.[1];
  const listed = connectionListedHeaders(typeof connection === 'number' ? String(connection) : connection);
  let hasDate = false;
  const lines = headerLines(headers, (name) => {
    if (name === 'date') hasDate = true;
    return HOP_BY_HOP_HEADERS.has(name) || listed.has(name) || name === 'sec-websocket-accept';
  });
  const noBody = statusCode < 200 || statusCode === 204 || statusCode === 304;
  const payload = noBody || body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  const head = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'Unknown'}\r\n`
    + lines.join('')
    + (hasDate ? '' : `Date: ${new Date().toUTCString()}\r\n`)
    + 'Connection: close\r\n'
    + (noBody ? '' : `Content-Length: ${payload.length}\r\n`)
    + '\r\n';
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  letClose(socket);
  // The response is the last thing on this connection: once it is flushed the socket is destroyed,
  // whether or not the client closes its end (as ws's abortHandshake does), and a client that never
  // reads it is cut off after RESPONSE_FLUSH_TIMEOUT. No half-open socket is left behind.
  socket.once('finish', destroySocket);
  const timer = setTimeout(destroySocket.bind(socket), RESPONSE_FLUSH_TIMEOUT);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(payload.length === 0 ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), payload]));
}

/**
 * Milliseconds a rejected client has to take an error response (see {@link writeHttpResponse})
 * before its socket is destroyed.
 */
export const RESPONSE_FLUSH_TIMEOUT = 2000;

function destroySocket(this: Duplex): void {
  this.destroy();
}

function noop(): void {}
