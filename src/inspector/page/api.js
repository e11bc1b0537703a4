// @ts-check
/**
 * The inspector's HTTP API as the page sees it: every URL carries the token the page was opened
 * with (`?token=`), since neither EventSource nor a download link can send an Authorization header.
 */

/** @typedef {{ frames: number, bytes: number }} SideStats */
/** @typedef {{ id: string, client: SideStats, upstream: SideStats }} ConnectionStats */
/**
 * @typedef {{ id: string, route: string | null, clientAddress: string | null,
 *   upstreamUrl: string | null, opened: number, closed: number | null,
 *   fromClient: SideStats, fromUpstream: SideStats,
 *   closeCodes: { client: number | null, upstream: number | null } }} ConnectionInfo
 */
/**
 * @typedef {{ connection: string, seq: number, time: number, from: 'client' | 'upstream',
 *   type: string, fin: boolean, size: number, code?: number, preview: string,
 *   edited?: boolean, injected?: boolean }} MessageRow
 */
/** @typedef {MessageRow & { payload: string, encoding: 'utf8' | 'base64', truncated: boolean }} MessageDetail */
/**
 * @typedef {{ id: string, connection: string, from: 'client' | 'upstream', type: 'text' | 'binary',
 *   size: number, text?: string, base64?: string, deadline: number }} HeldMessage
 */
/** @typedef {{ id: string, from: 'client' | 'upstream' | 'both', pattern: string, flags: string }} Breakpoint */
/** @typedef {{ connections: ConnectionInfo[], breakpoints: Breakpoint[], held: HeldMessage[] }} Hello */

const token = new URLSearchParams(location.search).get('token');

/**
 * The URL of an API path, with the token when the page has one.
 * @param {string} path - absolute path, may hold a query already
 * @returns {string}
 */
export function apiUrl(path) {
  if (token === null) return path;
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/** Path of a connection's resource. @param {string} id @param {string} rest */
export function connectionPath(id, rest) {
  return `/api/connections/${encodeURIComponent(id)}/${rest}`;
}

/**
 * Sends a request and parses its JSON answer; an error status throws with the server's `error`.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function request(method, path, body) {
  /** @type {RequestInit} */
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  const res = await fetch(apiUrl(path), init);
  const text = await res.text();
  /** @type {any} */
  let json = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    // A non-JSON answer (a proxy in between, a crash page): reported below by status.
  }
  if (!res.ok) throw new Error(json && typeof json.error === 'string' ? json.error : `${res.status} ${res.statusText}`);
  return json;
}

/** @param {string} path */
export const getJson = (path) => request('GET', path);
/** @param {string} path @param {unknown} body */
export const postJson = (path, body) => request('POST', path, body);

/**
 * Rows of a connection still in the server's ring, after `after`.
 * @param {string} id
 * @param {number} after
 * @param {number} limit
 * @returns {Promise<MessageRow[]>}
 */
export function fetchMessages(id, after, limit) {
  return getJson(`${connectionPath(id, 'messages')}?after=${after}&limit=${limit}`);
}

/**
 * One message with its payload.
 * @param {string} id
 * @param {number} seq
 * @returns {Promise<MessageDetail>}
 */
export function fetchMessage(id, seq) {
  return getJson(connectionPath(id, `messages/${seq}`));
}

/**
 * @typedef {object} EventHandlers
 * @property {(hello: Hello) => void} hello
 * @property {(c: ConnectionInfo) => void} open
 * @property {(rows: MessageRow[]) => void} messages
 * @property {(s: { connection: string, count: number }) => void} skipped
 * @property {(list: ConnectionStats[]) => void} stats
 * @property {(c: ConnectionInfo) => void} close
 * @property {(h: HeldMessage) => void} held
 * @property {(r: { id: string, action: string }) => void} resolved
 * @property {(list: Breakpoint[]) => void} breakpoints
 * @property {(state: 'open' | 'reconnecting' | 'failed') => void} status
 */

/**
 * Opens the live channel. EventSource reconnects by itself (after a network error or when the
 * server dropped a page that read too slowly); each reconnection starts with a new `hello`.
 * Handlers are called only while the returned source is open: after `close()` nothing more arrives.
 * @param {EventHandlers} handlers
 * @param {string | null} connection - the connection whose rows to receive ('' for none; the
 *   server sends every connection's `open`, `close` and `stats` anyway), or null for every
 *   connection's rows
 * @returns {EventSource}
 */
export function openEvents(handlers, connection) {
  const path = connection === null ? '/api/events' : `/api/events?connection=${encodeURIComponent(connection)}`;
  const source = new EventSource(apiUrl(path));
  /** @type {(keyof EventHandlers)[]} */
  const names = ['hello', 'open', 'messages', 'skipped', 'stats', 'close', 'held', 'resolved', 'breakpoints'];
  for (const name of names) {
    source.addEventListener(name, (event) => {
      // An event already queued when the page moved to another source is not this page's any more.
      if (source.readyState === EventSource.CLOSED) return;
      // The server's `event: open` and EventSource's own "connected" event share the name 'open':
      // only the server's carries data.
      if (!(event instanceof MessageEvent)) {
        if (name === 'open') handlers.status('open');
        return;
      }
      const handler = /** @type {(data: any) => void} */ (handlers[name]);
      handler(JSON.parse(event.data));
    });
  }
  // EventSource retries by itself after a network error, but gives up on an HTTP error (a 401
  // for a wrong token): then it is CLOSED.
  source.addEventListener('error', () => {
    handlers.status(source.readyState === EventSource.CLOSED ? 'failed' : 'reconnecting');
  });
  return source;
}
