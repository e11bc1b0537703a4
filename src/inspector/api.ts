/**
 * The inspector's REST API under `/api/` (docs/inspector.md): connections and their messages, the
 * recording downloads, sending and closing, breakpoints and held messages.
 *
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isWebSocketProxyError } from '../errors.js';
import { type Frame, isValidCloseCode } from '../frame.js';
import type { ProxyRole } from '../proxy/options.js';
import { recordFrame, recordingHeader, toJsonLine } from '../record/format.js';
import type { RecordedFrame } from '../record/format.js';
import { toHar } from '../record/har.js';
import type { Breakpoints, Holds } from './breakpoints.js';
import type { EventChannel } from './events.js';
import type { Conn, Hub } from './hub.js';
import { HttpError, readJson, sendJson } from './reply.js';
import { type Entry, detailOf, rowOf } from './row.js';
import type { InspectorEvents, MessageRow } from './types.js';

/** What the API reaches of its inspector. @internal */
export interface ApiHost {
  readonly hub: Hub;
  readonly breakpoints: Breakpoints;
  readonly holds: Holds;
  readonly channel: EventChannel;
  /** The state a page starts from. */
  hello(): InspectorEvents['hello'];
}

/** Rows answered by one `GET .../messages` at most. */
const MAX_LIMIT = 1000;
/** Longest close reason, in bytes (a close frame's payload is at most 125 bytes, 2 of them the code). */
const MAX_REASON = 123;

/**
 * Answers a request under `/api/`.
 *
 * @param host - the inspector
 * @param req - the request
 * @param res - its response
 * @param segments - the path's segments after `api`, decoded
 * @param query - the query
 */
export async function handleApi(host: ApiHost, req: IncomingMessage, res: ServerResponse, segments: string[], query: URLSearchParams): Promise<void> {
  const method = req.method ?? 'GET';
  const [first, id, action, extra] = segments;
  if (first === 'events' && segments.length === 1) {
    allow(method, 'GET');
    host.channel.attach(req, res, () => host.hello(), query.get('connection'));
    return;
  }
  if (first === 'connections') {
    if (id === undefined) {
      allow(method, 'GET');
      return sendJson(res, 200, host.hub.connections());
    }
    const conn = host.hub.get(id);
    if (conn === undefined) throw new HttpError(404, `no connection ${id}`);
    if (action === 'messages' && segments.length === 3) {
      allow(method, 'GET');
      return sendJson(res, 200, rowsAfter(conn, query));
    }
    if (action === 'messages' && segments.length === 4) {
      allow(method, 'GET');
      const entry = /^[1-9][0-9]{0,15}$/.test(extra!) ? conn.entry(Number(extra)) : undefined;
      if (entry === undefined) throw new HttpError(404, `no message ${extra} in connection ${id} (any more)`);
      return sendJson(res, 200, detailOf(conn.id, entry));
    }
    if (action === 'recording.jsonl' && segments.length === 3) {
      allow(method, 'GET');
      return sendRecording(res, conn);
    }
    if (action === 'recording.har' && segments.length === 3) {
      allow(method, 'GET');
      return sendHar(res, conn);
    }
    if (action === 'send' && segments.length === 3) {
      allow(method, 'POST');
      send(host.hub, conn, await readJson(req));
      return sendJson(res, 200, { ok: true });
    }
    if (action === 'close' && segments.length === 3) {
      allow(method, 'POST');
      close(conn, await readJson(req));
      return sendJson(res, 200, { ok: true });
    }
  }
  if (first === 'breakpoints') {
    if (id === undefined) {
      if (method === 'GET') return sendJson(res, 200, host.breakpoints.all());
      allow(method, 'POST');
      const body = await readJson(req);
      return sendJson(res, 200, badRequest(() => host.breakpoints.add(body['from'], body['pattern'], body['flags'] ?? '')));
    }
    if (segments.length === 2) {
      allow(method, 'DELETE');
      if (!host.breakpoints.remove(id)) throw new HttpError(404, `no breakpoint ${id}`);
      return sendJson(res, 200, { ok: true });
    }
  }
  if (first === 'held' && id !== undefined && segments.length === 2) {
    allow(method, 'POST');
    const body = await readJson(req);
    const failure = host.holds.resolve(id, body['action'], { text: body['text'], base64: body['base64'] });
    if (failure !== undefined) throw new HttpError(failure.status, failure.error);
    return sendJson(res, 200, { ok: true });
  }
  throw new HttpError(404, 'no such API path');
}

function allow(method: string, expected: string): void {
  if (method !== expected) throw new HttpError(405, `use ${expected}`);
}

/** Runs a check that throws TypeError for bad input: a 400. */
function badRequest<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TypeError) throw new HttpError(400, err.message);
    throw err;
  }
}

/** `?after=<seq>&limit=<n>`: rows after `after` still in the ring, at most `limit` (100 by default). */
function rowsAfter(conn: Conn, query: URLSearchParams): MessageRow[] {
  const after = integerParam(query, 'after', 0);
  const limit = Math.min(integerParam(query, 'limit', 100), MAX_LIMIT);
  const first = conn.at(0);
  if (first === undefined) return [];
  const rows: MessageRow[] = [];
  for (let i = Math.max(0, after + 1 - first.seq); i < conn.length && rows.length < limit; i++) rows.push(rowOf(conn.id, conn.at(i)!));
  return rows;
}

function integerParam(query: URLSearchParams, name: string, fallback: number): number {
  const value = query.get(name);
  if (value === null || value === '') return fallback;
  if (!/^[0-9]{1,15}$/.test(value)) throw new HttpError(400, `${name} must be an integer >= 0`);
  return Number(value);
}

/** The ring as recording records, each with its kept payload. */
function recordsOf(conn: Conn): RecordedFrame[] {
  const records: RecordedFrame[] = [];
  for (let i = 0; i < conn.length; i++) records.push(recordOf(conn.id, conn.at(i)!));
  return records;
}

function recordOf(connection: string, entry: Entry): RecordedFrame {
  const frame: Frame = { type: entry.type, fin: entry.fin, payload: entry.payload, rsv1: false };
  if (entry.code !== undefined) frame.code = entry.code;
  const record = recordFrame(frame, { time: entry.time, connection, from: entry.from, binary: entry.binary });
  if (entry.kept < entry.size) {
    record.size = entry.size;
    record.truncated = true;
  }
  return record;
}

function attachment(res: ServerResponse, conn: Conn, type: string, extension: string): void {
  const name = `connection-${conn.id.replace(/[^A-Za-z0-9_-]/g, '_')}.${extension}`;
  res.writeHead(200, { 'content-type': type, 'content-disposition': `attachment; filename="${name}"`, 'cache-control': 'no-store' });
}

function sendRecording(res: ServerResponse, conn: Conn): void {
  const header = recordingHeader(conn.id, new Date(conn.opened));
  const lines = [toJsonLine(header), ...recordsOf(conn).map((record) => toJsonLine(record))];
  attachment(res, conn, 'application/x-ndjson; charset=utf-8', 'jsonl');
  res.end(lines.join(''));
}

function sendHar(res: ServerResponse, conn: Conn): void {
  const recording = { header: recordingHeader(conn.id, new Date(conn.opened)), frames: recordsOf(conn) };
  const har = toHar(recording, conn.upstreamUrl === null ? {} : { url: conn.upstreamUrl });
  attachment(res, conn, 'application/json; charset=utf-8', 'har');
  res.end(JSON.stringify(har));
}

function role(value: unknown, name: string): ProxyRole {
  if (value !== 'client' && value !== 'upstream') throw new HttpError(400, `${name} must be 'client' or 'upstream'`);
  return value;
}

/** `POST .../send`: a whole message from the proxy to a side, shown as injected. */
function send(hub: Hub, conn: Conn, body: Record<string, unknown>): void {
  const to = role(body['to'], 'to');
  const type = body['type'];
  if (type !== 'text' && type !== 'binary') throw new HttpError(400, "type must be 'text' or 'binary'");
  const data = body['data'];
  if (typeof data !== 'string') throw new HttpError(400, 'data must be a string');
  const encoding = body['encoding'] ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64') throw new HttpError(400, "encoding must be 'utf8' or 'base64'");
  if (encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw new HttpError(400, 'data must be base64');
  const frame: Frame = { type, fin: true, payload: Buffer.from(data, encoding), rsv1: false };
  const proxy = live(conn);
  try {
    proxy.send(to, frame);
  } catch (err) {
    throw proxyError(err);
  }
  hub.record(conn, frame, to === 'client' ? 'upstream' : 'client', type === 'binary', { injected: true });
}

/** `POST .../close`: a close frame with that code to both sides. */
function close(conn: Conn, body: Record<string, unknown>): void {
  const code = body['code'];
  if (typeof code !== 'number' || !isValidCloseCode(code)) throw new HttpError(400, 'code must be a close code that may be sent (1000-1003, 1007-1014, 3000-4999)');
  const reason = body['reason'] ?? '';
  // RFC 6455 section 5.5: "All control frames MUST have a payload length of 125 bytes or less",
  // two of them the code.
  if (typeof reason !== 'string' || Buffer.byteLength(reason) > MAX_REASON) throw new HttpError(400, `reason must be a string of at most ${MAX_REASON} UTF-8 bytes`);
  const proxy = live(conn);
  try {
    proxy.close(code, reason);
  } catch (err) {
    throw proxyError(err);
  }
}

function live(conn: Conn) {
  if (conn.proxy === undefined) throw new HttpError(409, `connection ${conn.id} is closed`);
  return conn.proxy;
}

/** A proxy's refusal as an HTTP error: a bad frame is the caller's (400), the rest the connection's state (409). */
function proxyError(err: unknown): HttpError {
  if (isWebSocketProxyError(err)) return new HttpError(err.code === 'WSP_ERR_INVALID_FRAME' ? 400 : 409, `${err.code}: ${err.message}`);
  return new HttpError(500, (err as Error)?.message ?? String(err));
}
