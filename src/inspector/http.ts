/**
 * The inspector's HTTP server: the token check, the page's files, and the API.
 *
 * Security: with a token, every request must carry it (`?token=` or `Authorization: Bearer`),
 * compared in constant time. Without one (loopback only), requests must name a loopback host in
 * their `Host` header, so that a web page cannot reach the inspector through DNS rebinding; and the
 * API's POST bodies must be `application/json`, which a page of another origin cannot send without a
 * CORS preflight (never granted).
 *
 * @packageDocumentation
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';
import { type ApiHost, handleApi } from './api.js';
import { isLoopback } from './options.js';
import { HttpError, sendJson } from './reply.js';

/** Content types of the page's files, by extension; other files are not served. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** A path segment of a page file: no dot first (no `..`, no hidden file), no separator, no escape. */
const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** How the server answers. @internal */
export interface HttpSettings {
  /** The token, if any. */
  token: string | undefined;
  /** The folder of the page's files. */
  pageDir: string;
}

/**
 * The request handler of the inspector's server.
 *
 * @param host - the inspector
 * @param settings - token and page folder
 */
export function requestHandler(host: ApiHost, settings: HttpSettings): (req: IncomingMessage, res: ServerResponse) => void {
  const expected = settings.token === undefined ? undefined : digest(settings.token);
  return (req, res) => {
    handle(host, settings, expected, req, res).catch((err: unknown) => fail(res, err));
  };
}

async function handle(host: ApiHost, settings: HttpSettings, expected: Buffer | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://inspector.invalid');
  if (expected !== undefined) {
    if (!tokenMatches(req, url, expected)) throw new HttpError(401, 'a valid token is required (?token= or Authorization: Bearer)');
  } else if (!loopbackHost(req.headers.host)) {
    throw new HttpError(403, 'the Host header must name a loopback address (give the inspector a token to serve other names)');
  }
  const raw = url.pathname.split('/').slice(1);
  if (raw[0] === 'api') return handleApi(host, req, res, raw.slice(1).map(decodeSegment), url.searchParams);
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET');
  return serveFile(settings.pageDir, raw, req, res);
}

/** SHA-256 of a token: equal-length buffers for `timingSafeEqual`, whatever was sent. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function tokenMatches(req: IncomingMessage, url: URL, expected: Buffer): boolean {
  const header = req.headers.authorization;
  const bearer = header !== undefined && /^Bearer /i.test(header) ? header.slice(7).trim() : undefined;
  const given = bearer ?? url.searchParams.get('token');
  return given !== null && timingSafeEqual(digest(given), expected);
}

/** Whether a `Host` header names a loopback address (its port left aside). */
function loopbackHost(header: string | undefined): boolean {
  if (header === undefined) return false;
  const host = header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.split(':', 1)[0]!;
  return isLoopback(host);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'a path segment is not valid percent-encoding');
  }
}

/** `GET /` is the page's `index.html`; `GET /<file>` one of its files, nothing outside its folder. */
async function serveFile(dir: string, segments: string[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const parts = segments.length === 1 && segments[0] === '' ? ['index.html'] : segments;
  const type = CONTENT_TYPES[extname(parts[parts.length - 1] ?? '').toLowerCase()];
  if (type === undefined || !parts.every((part) => SAFE_SEGMENT.test(part))) throw new HttpError(404, 'no such file');
  const path = join(dir, ...parts);
  if (!path.startsWith(join(dir, sep))) throw new HttpError(404, 'no such file');
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch {
    throw new HttpError(404, 'no such file');
  }
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // No other site may frame the page (clickjacking its buttons).
    'x-frame-options': 'DENY',
    'content-security-policy': "frame-ancestors 'none'",
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function fail(res: ServerResponse, err: unknown): void {
  const status = err instanceof HttpError ? err.status : 500;
  const message = err instanceof Error ? err.message : String(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: message });
}
