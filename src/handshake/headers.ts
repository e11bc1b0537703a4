/**
 * HTTP header helpers shared by both opening handshakes: RFC 7230 tokens and token lists, the
 * `Sec-WebSocket-Accept` computation, hop-by-hop headers, and {@link forwardedHeaders}, the headers a
 * proxy passes from its client's upgrade request to the upstream.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** The GUID of RFC 6455 section 1.3, appended to the key to compute `Sec-WebSocket-Accept`. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** RFC 7230 section 3.2.6: token = 1*tchar. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Tells whether `value` is an RFC 7230 token, which is what RFC 6455 section 4.1 requires of a
 * subprotocol name ("characters in the range U+0021 to U+007E not including separator characters").
 *
 * @param value - the string to check
 * @returns true for a non-empty token
 */
export function isToken(value: string): boolean {
  return TOKEN.test(value);
}

/**
 * Parses a comma-separated token list such as `Connection` or `Sec-WebSocket-Protocol`. Optional
 * whitespace around elements is dropped and empty elements are ignored (RFC 7230 section 7).
 * Several header instances (an array, or values Node joined with `", "`) form one list.
 *
 * @param value - the header value(s); undefined for an absent header
 * @returns the tokens in order (empty for an absent header), or null if an element is not a token
 */
export function parseTokenList(value: string | readonly string[] | undefined): string[] | null {
  if (value === undefined) return [];
  const tokens: string[] = [];
  for (const line of typeof value === 'string' ? [value] : value) {
    for (const element of line.split(',')) {
      const token = element.trim();
      if (token === '') continue;
      if (!isToken(token)) return null;
      tokens.push(token);
    }
  }
  return tokens;
}

/**
 * Tells whether a token-list header contains `token`, compared ASCII case-insensitively.
 *
 * @param value - the header value(s)
 * @param token - the token to look for, lower case
 * @returns true if one element equals `token` ignoring case
 */
export function hasToken(value: string | readonly string[] | undefined, token: string): boolean {
  if (value === undefined) return false;
  for (const line of typeof value === 'string' ? [value] : value) {
    for (const element of line.split(',')) {
      if (element.trim().toLowerCase() === token) return true;
    }
  }
  return false;
}

/**
 * Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 section 4.2.2, item 5.4):
 * base64 of the SHA-1 of the key concatenated with {@link WEBSOCKET_GUID}.
 *
 * @param key - the `Sec-WebSocket-Key` value, as sent
 * @returns the base64 accept value
 */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/**
 * Hop-by-hop headers (RFC 7230 section 6.1), plus `Proxy-Connection` (non-standard, same meaning),
 * `Trailers` and `Content-Length`, which a proxy never relays as is: it recomputes the framing of
 * what it sends. Lower case.
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
  'content-length',
]);

/**
 * Headers that belong to one WebSocket connection and are never forwarded from one handshake to
 * another: each hop negotiates its own key, version, accept value and extensions. Lower case.
 */
export const WEBSOCKET_CONNECTION_HEADERS: ReadonlySet<string> = new Set([
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-accept',
  'sec-websocket-extensions',
]);

/**
 * The header names listed in `Connection` (lower case): "a proxy or gateway MUST remove any
 * header fields named in the Connection header field" (RFC 7230 section 6.1).
 *
 * @param connection - the `Connection` header value(s)
 * @returns the named headers, lower case
 */
export function connectionListedHeaders(connection: string | readonly string[] | undefined): Set<string> {
  const names = new Set<string>();
  if (connection === undefined) return names;
  for (const line of typeof connection === 'string' ? [connection] : connection) {
    for (const element of line.split(',')) {
      const name = element.trim().toLowerCase();
      if (name !== '') names.add(name);
    }
  }
  return names;
}

/** Options of {@link forwardedHeaders}. */
export interface ForwardedHeadersOptions {
  /**
   * Whether to add `X-Forwarded-For` (the client address appended to the client's list),
   * `X-Forwarded-Proto` (`ws` or `wss`, replacing the client's) and `X-Forwarded-Host` (the
   * client's `Host`, replacing the client's). When false, the client's `X-Forwarded-*` headers are
   * forwarded unchanged and none are added.
   * @defaultValue true
   */
  xForwarded?: boolean;
  /**
   * More header names (case-insensitive) not to forward, e.g. `['cookie']`.
   * @defaultValue []
   */
  exclude?: readonly string[];
  /**
   * Most client headers forwarded (each value of a repeated header counts once; the proxy's own
   * `X-Forwarded-*` do not count). Past it the rest are dropped and listed in
   * {@link ForwardedHeaders.dropped}. It bounds what a client makes the proxy send its upstream: an
   * upstream that keeps only so many headers (Node keeps 1000 by default) must still find the
   * handshake's own.
   * @defaultValue 100 ({@link DEFAULT_MAX_FORWARDED_HEADERS})
   */
  maxHeaders?: number;
  /**
   * Most bytes of client headers forwarded, counting each header's name, value and 4 bytes of
   * framing (`": "` and CRLF) as they go on the wire. A header that would go past it is dropped
   * (later, smaller ones may still fit) and listed in {@link ForwardedHeaders.dropped}.
   * @defaultValue 8192 ({@link DEFAULT_MAX_FORWARDED_HEADER_BYTES})
   */
  maxHeaderBytes?: number;
}

/** Default {@link ForwardedHeadersOptions.maxHeaders}. */
export const DEFAULT_MAX_FORWARDED_HEADERS = 100;

/** Default {@link ForwardedHeadersOptions.maxHeaderBytes}: 8 KiB. */
export const DEFAULT_MAX_FORWARDED_HEADER_BYTES = 8192;

/** What {@link forwardedHeaders} returns. */
export interface ForwardedHeaders {
  /**
   * The client's end-to-end headers (lower-case names) plus the `X-Forwarded-*` ones, for
   * `UpstreamOptions.headers`.
   */
  headers: Record<string, string | string[]>;
  /**
   * The subprotocols the client offered in `Sec-WebSocket-Protocol`, in order, for
   * `UpstreamOptions.protocols` (the header itself is not in `headers`: `connectUpstream` must know
   * the offered list to check the upstream's choice).
   */
  protocols: string[];
  /**
   * Names (lower case) of the client's headers left out because of `maxHeaders` or
   * `maxHeaderBytes`, in the client's order, one per header dropped; empty when all fit. Worth a
   * log line: the upstream does not see them.
   */
  dropped: string[];
}

/**
 * The headers a proxy sends upstream for a client's upgrade request.
 *
 * Kept: every end-to-end header of the client (`Cookie`, `Authorization`, `Origin`, `User-Agent`,
 * custom `X-*`...). Removed: hop-by-hop headers ({@link HOP_BY_HOP_HEADERS}, every header named in
 * `Connection`, and `Host`: the upstream gets its own), the per-connection WebSocket headers
 * ({@link WEBSOCKET_CONNECTION_HEADERS}) and `Sec-WebSocket-Protocol`, returned as `protocols`.
 * At most `maxHeaders` headers and `maxHeaderBytes` bytes of them are kept, in the client's order;
 * the others are named in `dropped`.
 *
 * @param req - the client's upgrade request
 * @param options - see {@link ForwardedHeadersOptions}
 * @returns the headers to forward and the offered subprotocols
 * @throws TypeError if `Sec-WebSocket-Protocol` is not a token list (`validateClientRequest`
 *   rejects such a request first), or for a `maxHeaders` / `maxHeaderBytes` that is not an integer
 *   >= 0 (or Infinity)
 */
export function forwardedHeaders(req: IncomingMessage, options?: ForwardedHeadersOptions): ForwardedHeaders {
  const xForwarded = options?.xForwarded ?? true;
  const maxHeaders = bound(options?.maxHeaders, DEFAULT_MAX_FORWARDED_HEADERS, 'maxHeaders');
  const maxBytes = bound(options?.maxHeaderBytes, DEFAULT_MAX_FORWARDED_HEADER_BYTES, 'maxHeaderBytes');
  const source: IncomingHttpHeaders = req.headers;
  const drop = connectionListedHeaders(source.connection);
  for (const name of options?.exclude ?? []) drop.add(name.toLowerCase());

  const protocols = parseTokenList(source['sec-websocket-protocol']);
  if (protocols === null) throw new TypeError('Sec-WebSocket-Protocol is not a list of tokens');

  const headers: Record<string, string | string[]> = {};
  const dropped: string[] = [];
  let count = 0;
  let bytes = 0;
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP_HEADERS.has(name) || WEBSOCKET_CONNECTION_HEADERS.has(name) || drop.has(name)) continue;
    if (name === 'host' || name === 'sec-websocket-protocol') continue;
    if (xForwarded && (name === 'x-forwarded-for' || name === 'x-forwarded-proto' || name === 'x-forwarded-host')) {
      continue;
    }
    // A client may send as many headers as the proxy's HTTP server parses (Node keeps 1000): all
    // relayed, they would crowd the upstream's own limits. Each value goes on the wire as a line.
    const lines = typeof value === 'string' ? 1 : value.length;
    const size = typeof value === 'string'
      ? name.length + value.length + 4
      : value.reduce((sum, item) => sum + name.length + item.length + 4, 0);
    if (count + lines > maxHeaders || bytes + size > maxBytes) {
      dropped.push(name);
      continue;
    }
    count += lines;
    bytes += size;
    headers[name] = value;
  }

  if (xForwarded) {
    const chain: string[] = [];
    const previous = source['x-forwarded-for'];
    if (previous !== undefined && !drop.has('x-forwarded-for')) {
      for (const line of typeof previous === 'string' ? [previous] : previous) {
        for (const part of line.split(',')) {
          const hop = part.trim();
          if (hop !== '') chain.push(hop);
        }
      }
    }
    const address = req.socket.remoteAddress;
    if (address !== undefined) chain.push(address);
    if (chain.length > 0) headers['x-forwarded-for'] = chain.join(', ');
    headers['x-forwarded-proto'] = (req.socket as Partial<TLSSocket>).encrypted === true ? 'wss' : 'ws';
    if (source.host !== undefined) headers['x-forwarded-host'] = source.host;
  }
  return { headers, protocols, dropped };
}

/** A count option of {@link forwardedHeaders}: an integer >= 0, or Infinity. */
function bound(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value === Infinity || (Number.isInteger(value) && value >= 0))) {
    throw new TypeError(`options.forwarded.${name} must be an integer >= 0 or Infinity`);
  }
  return value;
}
