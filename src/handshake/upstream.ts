/**
 * The client side of the opening handshake (RFC 6455 section 4.1): `connectUpstream` opens a
 * `ws://` or `wss://` connection to the upstream and returns its raw socket once the server's 101
 * response has been validated.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { HandshakeError } from '../errors.js';
import {
  type DeflateParameters,
  type PerMessageDeflateOption,
  resolvePerMessageDeflate,
} from '../protocol/deflate.js';
import { type DeflateOffer, acceptDeflateResponse, deflateOffer } from './extensions.js';
import { acceptKey, hasToken, isToken, parseTokenList } from './headers.js';

/** Most bytes of a non-101 response body kept in {@link HandshakeError.body}: 64 KiB. */
export const MAX_REJECTION_BODY = 64 * 1024;

/**
 * Request headers that make the request a WebSocket handshake, or would corrupt it; any of them in
 * `UpstreamOptions.headers` is ignored. Lower case.
 */
const RESERVED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-accept',
  'sec-websocket-extensions',
  'content-length',
  'transfer-encoding',
]);

/** The handshake options of {@link connectUpstream}, except `perMessageDeflate`. */
export interface UpstreamOptions {
  /**
   * Headers added to the request. They override the defaults (`Host`, for instance), except those
   * that make it a WebSocket handshake or would corrupt it, which are always ours and are ignored
   * here: `Upgrade`, `Connection`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version`,
   * `Sec-WebSocket-Accept`, `Sec-WebSocket-Extensions` (see `perMessageDeflate`), `Content-Length`
   * and `Transfer-Encoding`. A `Sec-WebSocket-Protocol` header here is parsed as the offered
   * subprotocols when `protocols` is not given, and ignored when it is.
   * @defaultValue {}
   */
  headers?: Readonly<Record<string, string | readonly string[]>>;
  /**
   * Subprotocols offered in `Sec-WebSocket-Protocol`, in order of preference. Each must be an
   * RFC 7230 token and unique (RFC 6455 section 4.1), else the call rejects with a TypeError.
   * @defaultValue none offered
   */
  protocols?: string | readonly string[];
  /**
   * `Origin` header; takes precedence over an `Origin` in `headers`.
   * @defaultValue no Origin header (unless one is in `headers`)
   */
  origin?: string;
  /**
   * Trusted CA certificates for `wss://`, replacing Node's default list.
   * @defaultValue Node's bundled root certificates
   */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /**
   * Client certificate chain for `wss://` (mutual TLS), PEM.
   * @defaultValue none
   */
  cert?: string | Buffer | ReadonlyArray<string | Buffer>;
  /**
   * Private key of `cert`, PEM.
   * @defaultValue none
   */
  key?: string | Buffer | ReadonlyArray<string | Buffer>;
  /**
   * TLS SNI server name and name the certificate is checked against.
   * @defaultValue the host of the `Host` header, i.e. the URL's host unless `headers` sets `Host`
   *   (Node's rule); no SNI is sent for an IP address, whose certificate must then list that IP
   */
  servername?: string;
  /**
   * Whether a `wss://` upstream's certificate must be valid and trusted. Turning it off accepts
   * any certificate, which defeats TLS against an active attacker.
   * @defaultValue true
   */
  rejectUnauthorized?: boolean;
  /**
   * Milliseconds allowed for the whole handshake: DNS, TCP, TLS, request and response (for a
   * non-101 response, its body too). On expiry the request is destroyed and the call rejects with
   * `WSP_ERR_UPSTREAM_TIMEOUT`. 0 means no timeout.
   * @defaultValue 0 (no timeout: the caller, e.g. the proxy's `connectTimeout`, sets one)
   */
  timeout?: number;
  /**
   * Aborts the handshake: the request is destroyed and the call rejects with the signal's reason
   * (an `AbortError` by default).
   * @defaultValue none
   */
  signal?: AbortSignal;
}

/**
 * Options of {@link connectUpstream}: {@link UpstreamOptions} plus the permessage-deflate offer,
 * kept apart so that the proxy's `ConnectOptions` (built on `UpstreamOptions`) does not expose it
 * before the frame layer handles compressed frames.
 */
export interface ConnectUpstreamOptions extends UpstreamOptions {
  /**
   * Offer permessage-deflate (RFC 7692) with these settings (`true`: the defaults of
   * `PerMessageDeflateSettings`) and accept the upstream's answer if it is valid for the offer; an
   * invalid answer fails with `WSP_ERR_UPSTREAM_HANDSHAKE`. With `false` no extension is offered
   * and an upstream that answers one is refused. Invalid settings reject with a TypeError naming
   * `options.perMessageDeflate`.
   * @defaultValue false
   */
  perMessageDeflate?: PerMessageDeflateOption;
}

/** An upstream WebSocket connection, after a valid 101 response. */
export interface UpstreamConnection {
  /**
   * The raw connection (a `tls.TLSSocket` for `wss://`), in no particular flowing state, with
   * `setNoDelay(true)`, no timeout and no listener of `connectUpstream` left on it: attach an
   * `'error'` listener (a `FrameReadable` does) as soon as the promise resolves.
   */
  socket: Socket;
  /** Bytes received past the 101 response: the first frames of the upstream, possibly empty. */
  head: Buffer;
  /** The subprotocol the upstream selected, or undefined if it selected none. */
  protocol: string | undefined;
  /** The permessage-deflate parameters the upstream accepted, or undefined for none. */
  perMessageDeflate: DeflateParameters | undefined;
  /** The 101 response's headers (lower-case names). */
  headers: IncomingHttpHeaders;
  /** The URL connected to. */
  url: URL;
}

/** A URL checked against RFC 6455 section 3, with what `request()` needs from it. */
interface Target {
  url: URL;
  secure: boolean;
  hostname: string;
  port: number;
  path: string;
}

function parseTarget(input: string | URL): Target {
  let url: URL;
  try {
    url = new URL(typeof input === 'string' ? input : input.href);
  } catch {
    throw new HandshakeError('WSP_ERR_INVALID_URL', `cannot parse ${JSON.stringify(String(input))}`);
  }
  // RFC 6455 section 4.1: "If /uri/ is not a valid WebSocket URI according to the rules specified
  // in Section 3, then the client MUST fail the WebSocket connection"; section 3 allows ws and wss.
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new HandshakeError('WSP_ERR_INVALID_URL', `scheme ${url.protocol} is not ws: or wss:`);
  }
  // Section 3: "Fragment identifiers ... MUST NOT be used on these URIs."
  if (url.hash !== '' || input.toString().includes('#')) {
    throw new HandshakeError('WSP_ERR_INVALID_URL', 'a WebSocket URL cannot have a fragment');
  }
  if (url.hostname === '') throw new HandshakeError('WSP_ERR_INVALID_URL', 'no host');
  const secure = url.protocol === 'wss:';
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    url,
    secure,
    hostname,
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    path: (url.pathname === '' ? '/' : url.pathname) + url.search,
  };
}

function offeredProtocols(protocols: string | readonly string[]): string[] {
  const list = typeof protocols === 'string' ? [protocols] : [...protocols];
  const seen = new Set<string>();
  for (const protocol of list) {
    // Section 4.1: the elements "MUST be non-empty strings with characters in the range U+0021 to
    // U+007E not including separator characters ... and MUST all be unique strings."
    if (typeof protocol !== 'string' || !isToken(protocol)) {
      throw new TypeError(`invalid subprotocol ${JSON.stringify(protocol)}: not an RFC 7230 token`);
    }
    if (seen.has(protocol)) throw new TypeError(`duplicate subprotocol ${JSON.stringify(protocol)}`);
    seen.add(protocol);
  }
  return list;
}

function checkTimeout(timeout: number | undefined): number {
  if (timeout === undefined) return 0;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0) {
    throw new TypeError('options.timeout must be a finite number >= 0');
  }
  return timeout;
}

/**
 * Builds the request headers: ours first (`Host`, then those that make the request a WebSocket
 * handshake), then `Origin` and the caller's. Returns them and the offered protocols. `deflate` is
 * the permessage-deflate offer, if any.
 *
 * Ours go first because a server may keep only so many header lines (Node's keeps 1000 and drops
 * the rest): behind a long list of forwarded headers, `Upgrade` or `Sec-WebSocket-Key` would be the
 * ones lost, and the upstream would answer 400. Node writes the headers in this object's order and
 * adds `Host` at the end unless it is given, so it is given here.
 */
function requestHeaders(
  options: ConnectUpstreamOptions,
  target: Target,
  key: string,
  deflate: DeflateOffer | undefined,
): [Record<string, string | string[]>, string[]] {
  const own: Record<string, string | string[]> = {};
  const rest: Record<string, string | string[]> = {};
  let host: string | string[] = target.url.host;
  let protocols: string[] = [];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    const lower = name.toLowerCase();
    if (RESERVED_REQUEST_HEADERS.has(lower)) continue;
    if (lower === 'sec-websocket-protocol') {
      if (options.protocols === undefined) {
        const parsed = parseTokenList(value);
        if (parsed === null) throw new TypeError('headers: Sec-WebSocket-Protocol is not a list of tokens');
        protocols = offeredProtocols(parsed);
      }
      continue;
    }
    if (lower === 'origin' && options.origin !== undefined) continue;
    // The caller's Host replaces the URL's (and names the TLS server, as Node does).
    if (lower === 'host') host = typeof value === 'string' ? value : [...value];
    else rest[name] = typeof value === 'string' ? value : [...value];
  }
  if (options.protocols !== undefined) protocols = offeredProtocols(options.protocols);
  // Section 4.1, client requirements, items 4 (Host), 5, 6, 7, 9 and 10 of the opening handshake.
  own['Host'] = host;
  own['Upgrade'] = 'websocket';
  own['Connection'] = 'Upgrade';
  own['Sec-WebSocket-Key'] = key;
  own['Sec-WebSocket-Version'] = '13';
  if (protocols.length > 0) own['Sec-WebSocket-Protocol'] = protocols.join(', ');
  // Section 4.1, item 11: "The request MAY include a header field with the name
  // |Sec-WebSocket-Extensions|."
  if (deflate !== undefined) own['Sec-WebSocket-Extensions'] = deflate.header;
  if (options.origin !== undefined) own['Origin'] = options.origin;
  return [Object.assign(own, rest), protocols];
}

/**
 * Checks a 101 response against RFC 6455 section 4.1 (the client's validation of the server's
 * handshake).
 *
 * @returns the selected subprotocol (undefined for none) and the accepted permessage-deflate
 *   parameters, or the failure's detail as a string inside an object
 */
function validateResponse(
  res: IncomingMessage,
  key: string,
  offered: readonly string[],
  deflate: DeflateOffer | undefined,
): { protocol: string | undefined; perMessageDeflate: DeflateParameters | undefined } | { error: string } {
  const headers = res.headers;
  // "If the response lacks an |Upgrade| header field or the |Upgrade| header field contains a value
  // that is not an ASCII case-insensitive match for the value "websocket", the client MUST _Fail
  // the WebSocket Connection_."
  const upgrade = headers.upgrade;
  if (upgrade === undefined) return { error: 'no Upgrade header' };
  if (upgrade.trim().toLowerCase() !== 'websocket') return { error: `Upgrade is ${JSON.stringify(upgrade)}` };
  // "If the response lacks a |Connection| header field or the |Connection| header field doesn't
  // contain a token that is an ASCII case-insensitive match for the value "Upgrade", the client
  // MUST _Fail the WebSocket Connection_."
  if (headers.connection === undefined) return { error: 'no Connection header' };
  if (!hasToken(headers.connection, 'upgrade')) {
    return { error: `Connection ${JSON.stringify(headers.connection)} does not contain "upgrade"` };
  }
  // "If the response lacks a |Sec-WebSocket-Accept| header field or the |Sec-WebSocket-Accept|
  // contains a value other than the base64-encoded SHA-1 of the concatenation of the
  // |Sec-WebSocket-Key| (as a string, not base64-decoded) with the string
  // "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" ... the client MUST _Fail the WebSocket Connection_."
  const accept = headers['sec-websocket-accept'];
  if (accept === undefined) return { error: 'no Sec-WebSocket-Accept header' };
  if (accept !== acceptKey(key)) return { error: `Sec-WebSocket-Accept ${JSON.stringify(accept)} does not match the key` };
  // "If the response includes a |Sec-WebSocket-Extensions| header field and this header field
  // indicates the use of an extension that was not present in the client's handshake ... the
  // client MUST _Fail the WebSocket Connection_." Only permessage-deflate is ever offered.
  const extensions = headers['sec-websocket-extensions'];
  let perMessageDeflate: DeflateParameters | undefined;
  if (deflate === undefined) {
    if (extensions !== undefined && extensions.trim() !== '') {
      return { error: `extension ${JSON.stringify(extensions)} not offered` };
    }
  } else {
    const answer = acceptDeflateResponse(extensions, deflate);
    if ('error' in answer) return answer;
    perMessageDeflate = answer.parameters;
  }
  // "If the response includes a |Sec-WebSocket-Protocol| header field and this header field
  // indicates the use of a subprotocol that was not present in the client's handshake ... the
  // client MUST _Fail the WebSocket Connection_."
  const selected = headers['sec-websocket-protocol'];
  if (selected === undefined) return { protocol: undefined, perMessageDeflate };
  if (offered.length === 0) return { error: `subprotocol ${JSON.stringify(selected)} selected but none was offered` };
  if (!offered.includes(selected)) return { error: `subprotocol ${JSON.stringify(selected)} was not offered` };
  return { protocol: selected, perMessageDeflate };
}

/**
 * Opens a WebSocket connection to an upstream server: sends the opening handshake (RFC 6455
 * section 4.1) over `node:http` or `node:https` and validates the server's answer.
 *
 * The request is `GET <path+query>` with `Host`, `Upgrade: websocket`, `Connection: Upgrade`, a
 * fresh random 16-byte `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`, the offered subprotocols,
 * `Origin`, the permessage-deflate offer when `perMessageDeflate` asks for one, and the caller's
 * headers. Credentials in the URL
 * (`ws://user:pass@host`) are sent as Basic `Authorization`.
 *
 * Every failure is a rejection (never a synchronous throw), and leaves no socket or timer behind:
 * - an URL that is not `ws://` or `wss://` (or has a fragment): {@link HandshakeError}
 *   `WSP_ERR_INVALID_URL`; invalid options: `TypeError`;
 * - DNS, TCP or TLS failure (refused, untrusted certificate, `wss://` to a plain port...) or a
 *   connection closed before the response: `WSP_ERR_UPSTREAM_UNREACHABLE`, with the error as
 *   `cause` and its code in the message;
 * - `timeout` elapsed: `WSP_ERR_UPSTREAM_TIMEOUT`;
 * - a status other than 101: `WSP_ERR_UPSTREAM_REJECTED` with `statusCode`, `headers` and `body`
 *   (at most {@link MAX_REJECTION_BODY} bytes; what was received if the body was cut short);
 * - a 101 that is not a valid WebSocket answer (Upgrade, Connection, Sec-WebSocket-Accept, an
 *   extension that was not offered or an invalid permessage-deflate answer, or a subprotocol that
 *   was not offered): `WSP_ERR_UPSTREAM_HANDSHAKE`.
 *
 * @param url - `ws://host[:port]/path?query` or `wss://...`; IPv6 literals in brackets; default
 *   ports 80 and 443
 * @param options - see {@link ConnectUpstreamOptions}
 * @returns the connection: raw socket, bytes past the response, selected subprotocol, accepted
 *   permessage-deflate parameters, response headers and URL
 *
 * @example
 * ```ts
 * const { socket, head, protocol } = await connectUpstream('ws://127.0.0.1:8080/chat', {
 *   protocols: ['chat'], timeout: 5000,
 * });
 * const frames = new FrameReadable(socket, { role: 'client', head });
 * ```
 */
export async function connectUpstream(url: string | URL, options: ConnectUpstreamOptions = {}): Promise<UpstreamConnection> {
  const target = parseTarget(url);
  const timeout = checkTimeout(options.timeout);
  // Section 4.1: "a nonce consisting of a randomly selected 16-byte value that has been
  // base64-encoded"; "The nonce MUST be selected randomly for each connection."
  const key = randomBytes(16).toString('base64');
  const settings = resolvePerMessageDeflate(options.perMessageDeflate ?? false);
  const deflate = settings === false ? undefined : deflateOffer(settings);
  const [headers, offered] = requestHeaders(options, target, key, deflate);
  const signal = options.signal;
  signal?.throwIfAborted();

  const auth = target.url.username !== '' || target.url.password !== ''
    ? `${decodeURIComponent(target.url.username)}:${decodeURIComponent(target.url.password)}`
    : undefined;
  const common = {
    method: 'GET',
    hostname: target.hostname,
    port: target.port,
    path: target.path,
    headers,
    // A fresh connection, never a pooled one: it leaves HTTP for good after the 101.
    agent: false as const,
    ...(auth === undefined ? {} : { auth }),
  };

  return new Promise<UpstreamConnection>((resolve, reject) => {
    let req: ClientRequest;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;

    const finish = (): void => {
      settled = true;
      if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error): void => {
      if (settled) return;
      finish();
      reject(err);
      req.destroy();
    };
    let onTimeout = (): void => {
      fail(new HandshakeError('WSP_ERR_UPSTREAM_TIMEOUT', `no handshake response within ${timeout} ms`));
    };
    const onAbort = (): void => {
      const reason: unknown = signal?.reason;
      fail(reason instanceof Error ? reason : new DOMException('the handshake was aborted', 'AbortError'));
    };

    try {
      req = target.secure
        ? httpsRequest({
          ...common,
          rejectUnauthorized: options.rejectUnauthorized ?? true,
          ...(options.ca === undefined ? {} : { ca: options.ca as string | Buffer | Array<string | Buffer> }),
          ...(options.cert === undefined ? {} : { cert: options.cert as string | Buffer | Array<string | Buffer> }),
          ...(options.key === undefined ? {} : { key: options.key as string | Buffer | Array<string | Buffer> }),
          ...(options.servername === undefined ? {} : { servername: options.servername }),
        })
        : httpRequest(common);
    } catch (err) {
      // Invalid header names or values (ERR_INVALID_HTTP_TOKEN, ERR_INVALID_CHAR are TypeErrors).
      reject(err);
      return;
    }

    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      const code = err.code === undefined ? '' : `${err.code}: `;
      fail(new HandshakeError('WSP_ERR_UPSTREAM_UNREACHABLE', `${code}${err.message}`, { cause: err }));
    });

    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (settled) {
        socket.destroy();
        return;
      }
      const result = validateResponse(res, key, offered, deflate);
      if ('error' in result) {
        finish();
        socket.destroy();
        reject(new HandshakeError('WSP_ERR_UPSTREAM_HANDSHAKE', result.error));
        return;
      }
      finish();
      socket.setTimeout(0);
      socket.setNoDelay(true);
      resolve({
        socket,
        head,
        protocol: result.protocol,
        perMessageDeflate: result.perMessageDeflate,
        headers: res.headers,
        url: target.url,
      });
    });

    req.on('response', (res: IncomingMessage) => {
      if (settled) return;
      if (res.statusCode === 101) {
        // Node reports a 101 as an upgrade only with both Upgrade and Connection: upgrade; the
        // validation says which one is wrong.
        const result = validateResponse(res, key, offered, deflate);
        fail(new HandshakeError('WSP_ERR_UPSTREAM_HANDSHAKE',
          'error' in result ? result.error : 'the 101 response is not an upgrade'));
        return;
      }
      // Section 4.1: "If the status code received from the server is not 101, the client handles
      // the response per HTTP [RFC2616] procedures." Here: hand it to the caller.
      const chunks: Buffer[] = [];
      let length = 0;
      const reject4xx = (note: string): void => {
        const body = Buffer.concat(chunks, length);
        fail(new HandshakeError('WSP_ERR_UPSTREAM_REJECTED', `status ${res.statusCode}${note}`,
          { statusCode: res.statusCode, headers: res.headers, body }));
      };
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        const room = MAX_REJECTION_BODY - length;
        if (chunk.length >= room) {
          chunks.push(chunk.subarray(0, room));
          length += room;
          reject4xx(chunk.length > room ? ' (body cut at 64 KiB)' : '');
          return;
        }
        chunks.push(chunk);
        length += chunk.length;
      });
      res.on('end', () => reject4xx(''));
      res.on('error', () => reject4xx(' (body cut short)'));
      res.on('aborted', () => reject4xx(' (body cut short)'));
      res.on('close', () => reject4xx(res.complete ? '' : ' (body cut short)'));
      // A timeout while the body arrives still reports the rejection, with what was received.
      onTimeout = () => reject4xx(' (body cut short: timed out)');
    });

    if (timeout > 0) {
      timer = setTimeout(() => {
        timer = undefined;
        onTimeout();
      }, timeout);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    req.end();
  });
}
