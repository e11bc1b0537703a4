/**
 * The handshake side of a `WebSocketProxy`: what is relayed from the upstream's 101 to the client,
 * what is logged of an upstream URL, and how a client is answered when its upstream fails.
 *
 * @packageDocumentation
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { HandshakeError, isWebSocketProxyError } from '../errors.js';
import { writeHttpResponse } from '../handshake/client.js';
import { HOP_BY_HOP_HEADERS, WEBSOCKET_CONNECTION_HEADERS } from '../handshake/headers.js';

/**
 * Response headers of the upstream's 101 worth relaying to the client (e.g. `Set-Cookie`).
 *
 * @param headers - the upstream's 101 response headers
 */
export function relayableHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || WEBSOCKET_CONNECTION_HEADERS.has(name)) continue;
    if (name === 'sec-websocket-protocol' || name === 'date') continue;
    out[name] = value;
  }
  return out;
}

/**
 * The part of a URL safe to log: no credentials, no query (it may carry secrets).
 *
 * @param url - an upstream URL
 */
export function loggableUrl(url: string | URL): string {
  try {
    const parsed = new URL(String(url));
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

/**
 * Answers a client whose upstream could not be connected, before any upgrade: the upstream's own
 * response when it sent one, 504 on a timeout, 502 otherwise.
 *
 * @param socket - the client's socket
 * @param err - why the upstream failed
 */
export function answerUpstreamFailure(socket: Duplex, err: unknown): void {
  if (err instanceof HandshakeError && err.code === 'WSP_ERR_UPSTREAM_REJECTED' && err.statusCode !== undefined) {
    writeHttpResponse(socket, err.statusCode, err.headers ?? {}, err.body);
  } else if (isWebSocketProxyError(err) && err.code === 'WSP_ERR_UPSTREAM_TIMEOUT') {
    writeHttpResponse(socket, 504, { 'content-type': 'text/plain' }, 'Gateway Timeout');
  } else {
    writeHttpResponse(socket, 502, { 'content-type': 'text/plain' }, 'Bad Gateway');
  }
}
