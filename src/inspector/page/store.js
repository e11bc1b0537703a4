// @ts-check
/**
 * What the page knows: connections, their recent rows, breakpoints and held messages. Bounded like
 * the server's own memory, so that a page left open on a busy proxy does not grow: at most
 * `maxRows` rows per connection (the oldest go first) and `maxConnections` connections (the oldest
 * closed ones go first).
 */

/** @typedef {import('./api.js').ConnectionInfo} ConnectionInfo */
/** @typedef {import('./api.js').MessageRow} MessageRow */
/** @typedef {import('./api.js').HeldMessage} HeldMessage */
/** @typedef {import('./api.js').Breakpoint} Breakpoint */
/** @typedef {import('./api.js').Hello} Hello */
/** What a filter by type calls a row: a continuation is of the kind of the message it continues. */
/** @typedef {'text' | 'binary' | 'control'} RowKind */
/** @typedef {MessageRow & { kind: RowKind }} Row */

/** Rows kept per connection. */
export const MAX_ROWS = 5000;
/** Connections kept; past it the oldest closed one is forgotten. */
export const MAX_CONNECTIONS = 500;
/**
 * Rows over the cap before trimming: trimming in batches keeps `splice` off the per-message path.
 */
const TRIM_SLACK = 250;

/**
 * The kind of a row, given the rows before it.
 * @param {MessageRow} row
 * @param {Row[]} before - rows of the same connection, older first
 * @param {number} end - index of the row's position in `before`
 * @returns {RowKind}
 */
function kindOf(row, before, end) {
  if (row.type === 'text' || row.type === 'binary') return row.type;
  if (row.type !== 'continuation') return 'control';
  for (let i = end - 1; i >= 0; i--) {
    const prev = before[i];
    if (prev.from === row.from && prev.kind !== 'control' && prev.type !== 'continuation') return prev.kind;
  }
  return 'binary';
}

/**
 * Index of the first row whose seq is at least `seq` (rows are sorted by seq).
 * @param {Row[]} rows
 * @param {number} seq
 */
export function lowerBound(rows, seq) {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Store {
  /** @param {{ maxRows?: number, maxConnections?: number }} [limits] */
  constructor(limits = {}) {
    this.maxRows = limits.maxRows ?? MAX_ROWS;
    this.maxConnections = limits.maxConnections ?? MAX_CONNECTIONS;
    /** @type {Map<string, ConnectionInfo>} in arrival order */
    this.connections = new Map();
    /** @type {Map<string, Row[]>} sorted by seq */
    this.rows = new Map();
    /** @type {Breakpoint[]} */
    this.breakpoints = [];
    /** @type {Map<string, HeldMessage>} */
    this.held = new Map();
  }

  /**
   * Takes the server's state after (re)connecting: connections it forgot are forgotten here too;
   * rows of the others are kept (the page fetches what it missed).
   * @param {Hello} hello
   */
  reset(hello) {
    const known = new Set(hello.connections.map((c) => c.id));
    for (const id of this.connections.keys()) {
      if (!known.has(id)) this.forget(id);
    }
    for (const c of hello.connections) this.upsertConnection(c);
    this.breakpoints = hello.breakpoints;
    this.held = new Map(hello.held.map((h) => [h.id, h]));
  }

  /** @param {ConnectionInfo} info */
  upsertConnection(info) {
    this.connections.set(info.id, info);
    if (this.connections.size > this.maxConnections) this.evictOne();
  }

  /**
   * @param {import('./api.js').ConnectionStats} stats
   * @returns {boolean} whether the connection is known
   */
  updateStats(stats) {
    const c = this.connections.get(stats.id);
    if (c === undefined) return false;
    c.fromClient = stats.client;
    c.fromUpstream = stats.upstream;
    return true;
  }

  /** Forgets the oldest closed connection (or the oldest one, if all are open). */
  evictOne() {
    let victim;
    for (const c of this.connections.values()) {
      if (c.closed !== null) {
        victim = c.id;
        break;
      }
    }
    this.forget(victim ?? this.connections.keys().next().value ?? '');
  }

  /** @param {string} id */
  forget(id) {
    this.connections.delete(id);
    this.rows.delete(id);
  }

  /**
   * The rows of a connection, oldest first: the live array, which later rows go into (read it, do
   * not change it).
   * @param {string} id
   * @returns {Row[]}
   */
  rowsOf(id) {
    let rows = this.rows.get(id);
    if (rows === undefined) {
      rows = [];
      if (this.connections.has(id)) this.rows.set(id, rows);
    }
    return rows;
  }

  /**
   * Adds rows of one connection, in any order, ignoring those already there.
   * @param {string} id
   * @param {MessageRow[]} incoming
   * @returns {{ added: Row[], inserted: number, trimmedBelow: number }} the rows added at the tail,
   *   how many others went in place (older than the newest row kept: a view must rebuild), and the
   *   lowest seq kept after trimming (0 when nothing was trimmed)
   */
  addRows(id, incoming) {
    if (!this.connections.has(id)) return { added: [], inserted: 0, trimmedBelow: 0 };
    const rows = this.rowsOf(id);
    /** @type {Row[]} */
    const added = [];
    let inserted = 0;
    for (const row of incoming) {
      const last = rows.length === 0 ? 0 : rows[rows.length - 1].seq;
      if (row.seq > last) {
        const r = /** @type {Row} */ ({ ...row, kind: kindOf(row, rows, rows.length) });
        rows.push(r);
        added.push(r);
        continue;
      }
      const at = lowerBound(rows, row.seq);
      if (at < rows.length && rows[at].seq === row.seq) continue;
      rows.splice(at, 0, /** @type {Row} */ ({ ...row, kind: kindOf(row, rows, at) }));
      inserted++;
    }
    let trimmedBelow = 0;
    if (rows.length > this.maxRows + TRIM_SLACK) {
      rows.splice(0, rows.length - this.maxRows);
      trimmedBelow = rows[0].seq;
    }
    return { added: added.filter((r) => r.seq >= trimmedBelow), inserted, trimmedBelow };
  }

  /** @param {Breakpoint[]} list */
  setBreakpoints(list) {
    this.breakpoints = list;
  }

  /** @param {HeldMessage} h */
  addHeld(h) {
    this.held.set(h.id, h);
  }

  /** @param {string} id */
  resolveHeld(id) {
    this.held.delete(id);
  }
}
