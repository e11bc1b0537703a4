/**
 * The live channel, `GET /api/events`: Server-Sent Events to every open page. A page may subscribe
 * to the rows of one connection (`?connection=<id>`); it still gets every connection's `open`,
 * `close` and `stats`, and every `held`, `resolved` and `breakpoints`. Events go out together every
 * {@link FLUSH_INTERVAL} ms (or as soon as {@link FLUSH_BYTES} of events wait) in one write per
 * page, the rows of a flush as ONE `messages` event (an array) per page. Rows are capped per
 * connection and flush (`liveRowsPerSecond`): only the newest of a flush's rows are kept for it, and
 * a `skipped` event counts the others (still in the hub's ring, for the API), and the rows the ring
 * shed before the flush. A row is queued as its sequence number and read from the ring and
 * serialized only at the flush, only if a page receives it, once whatever the number of pages; a row
 * no page subscribes to is not even queued. A page that does not read is dropped once its response has
 * buffered `maxPageBuffer` bytes: memory never grows with a slow page, and the page's
 * `EventSource` reconnects (and gets a fresh `hello`).
 *
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Entry, rowJson } from './row.js';
import type { InspectorEvents } from './types.js';

/**
 * Milliseconds events wait to go out together: rows then show within about a second, one write of
 * many events costs the proxy far less than many writes, and each batch received costs the browser
 * (on the same machine as the proxy, often) a wake-up of its network, browser and page processes
 * and, as the page draws once per batch, a style, layout and paint pass, whatever its size. The
 * same as the stats' period (`STATS_PERIOD`), so that a busy proxy's rows and counts arrive in the
 * same batch, drawn together.
 */
export const FLUSH_INTERVAL = 1000;
/** Bytes of waiting events past which they go out at once, whatever the interval. */
export const FLUSH_BYTES = 64 * 1024;
/**
 * What a waiting row counts for against {@link FLUSH_BYTES} (about its JSON with a full preview): a
 * row counts while it is among those the batch will carry (up to the cap per connection), so that a
 * batch under a high `liveRowsPerSecond` goes before it grows large, and one under the default cap
 * (200 rows, about 50 KiB) waits for the interval.
 */
const ROW_BYTES = 256;
/** What a queued row needs of its connection. @internal */
export interface RowSource {
  readonly id: string;
  /** The id as JSON. */
  readonly idJson: string;
  /** A kept row, read at the flush (undefined once shed: the row is then counted as skipped). */
  entry(seq: number): Entry | undefined;
}

/** Events a channel can queue with {@link EventChannel.publish}: rows go by {@link EventChannel.publishRow}. */
export type ChannelEvent = Exclude<keyof InspectorEvents, 'messages' | 'skipped'>;

/** An open page: its response and the connection whose rows it takes (null: every connection's). */
interface Page {
  readonly res: ServerResponse;
  readonly connection: string | null;
}

/**
 * The rows of one connection waiting for the next flush, by sequence number: its newest (at most
 * twice the cap between two trims, the cap once trimmed) and how many came in all.
 */
interface RowQueue {
  readonly source: RowSource;
  seqs: number[];
  count: number;
  /** How many of them a flush found still kept and sent. */
  sent: number;
}

/** The open pages of an inspector and what is waiting to be written to them. @internal */
export class EventChannel {
  private readonly pages = new Set<Page>();
  /** Pages taking every connection's rows. */
  private allRows = 0;
  /** Pages per subscribed connection. */
  private readonly subscribers = new Map<string, number>();
  /** Events other than rows, serialized, not yet written, in order. */
  private pending: string[] = [];
  /** Their bytes, and {@link ROW_BYTES} for each waiting row the next batch will carry. */
  private pendingBytes = 0;
  /** Rows not yet written, per connection, in the order of each connection's first row. */
  private rows = new Map<RowSource, RowQueue>();
  private scheduled: NodeJS.Timeout | undefined;
  private closed = false;
  /** Rows a flush carries per connection, at most. */
  private readonly rowsPerFlush: number;
  /** Pages dropped for not reading. */
  dropped = 0;

  /**
   * @param maxPageBuffer - bytes a page's response may have buffered before it is dropped
   * @param liveRowsPerSecond - rows per second of a connection a page gets, at most (one flush's
   *   share: this over the flushes in a second, at least one)
   */
  constructor(private readonly maxPageBuffer: number, liveRowsPerSecond = Infinity) {
    this.rowsPerFlush = Math.max(1, Math.ceil((liveRowsPerSecond * FLUSH_INTERVAL) / 1000));
  }

  /** How many pages are open. */
  get size(): number {
    return this.pages.size;
  }

  /** The connection each open page subscribes to (null: all), for tests and diagnostics. */
  subscriptions(): (string | null)[] {
    return [...this.pages].map((page) => page.connection);
  }

  /** Whether a page takes the rows of a connection (the caller skips the row otherwise). */
  wants(connection: string): boolean {
    return this.allRows > 0 || (this.subscribers.size > 0 && this.subscribers.has(connection));
  }

  /**
   * Queues an event for every open page (nothing is done without pages: the caller may check
   * {@link EventChannel.size} before building the data).
   */
  publish<K extends ChannelEvent>(name: K, data: InspectorEvents[K]): void {
    if (this.pages.size === 0) return;
    const event = format(name, data);
    this.pending.push(event);
    this.pendingBytes += event.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else this.scheduled ??= setTimeout(flushChannel, FLUSH_INTERVAL, this);
  }

  /**
   * Queues a row for the pages that take its connection's rows; its JSON is made at the flush, if
   * it is among the newest of its connection's then.
   *
   * @param source - its connection
   * @param seq - the row's sequence number (read from the source at the flush; a row its ring shed
   *   meanwhile is counted as skipped)
   */
  publishRow(source: RowSource, seq: number): void {
    if (!this.wants(source.id)) return;
    let queue = this.rows.get(source);
    if (queue === undefined) {
      queue = { source, seqs: [], count: 0, sent: 0 };
      this.rows.set(source, queue);
    }
    queue.count++;
    const seqs = queue.seqs;
    seqs.push(seq);
    if (queue.count <= this.rowsPerFlush) {
      this.pendingBytes += ROW_BYTES;
      if (this.pendingBytes >= FLUSH_BYTES) {
        this.flush();
        return;
      }
    }
    // Only the newest go: the older are let go in batches, which keeps splice off the per-row path.
    if (seqs.length >= 2 * this.rowsPerFlush) seqs.splice(0, seqs.length - this.rowsPerFlush);
    this.scheduled ??= setTimeout(flushChannel, FLUSH_INTERVAL, this);
  }

  /**
   * Takes a page's request: answers the event-stream head and `hello`, then live events.
   *
   * @param req - the request
   * @param res - its response
   * @param hello - the state the page starts from, read now
   * @param connection - the connection whose rows the page takes, or null for every connection's
   */
  attach(req: IncomingMessage, res: ServerResponse, hello: () => InspectorEvents['hello'], connection: string | null = null): void {
    if (this.closed) {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"the inspector is closing"}');
      return;
    }
    // Events queued before this page came are in its hello already: send them to the others first.
    this.flush();
    req.socket.setNoDelay(true);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // A dropped page retries soon.
    res.write(`retry: 1000\n\n${format('hello', hello())}`);
    const page: Page = { res, connection };
    this.pages.add(page);
    if (connection === null) this.allRows++;
    else this.subscribers.set(connection, (this.subscribers.get(connection) ?? 0) + 1);
    res.on('close', () => this.remove(page));
  }

  /** Writes what is pending to every page; drops the pages that have not read what they had. */
  flush(): void {
    if (this.scheduled !== undefined) {
      clearTimeout(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.pending.length === 0 && this.rows.size === 0) return;
    const events = this.pending.join('');
    const queues = [...this.rows.values()];
    this.pending = [];
    this.pendingBytes = 0;
    this.rows = new Map();
    const cap = this.rowsPerFlush;
    for (const queue of queues) if (queue.seqs.length > cap) queue.seqs.splice(0, queue.seqs.length - cap);
    // What a page gets depends only on its subscription: one chunk per subscription, made once.
    const chunks = new Map<string | null, Buffer>();
    const json = new Map<RowQueue, string>();
    for (const page of [...this.pages]) {
      if (page.res.writableLength > this.maxPageBuffer) {
        this.drop(page);
        continue;
      }
      let chunk = chunks.get(page.connection);
      if (chunk === undefined) {
        chunk = Buffer.from(events + rowEvents(page.connection, queues, json));
        chunks.set(page.connection, chunk);
      }
      if (chunk.length > 0) page.res.write(chunk);
    }
  }

  /** Ends every page's response and takes no more. */
  close(): void {
    this.closed = true;
    this.flush();
    for (const page of this.pages) page.res.end();
    this.pages.clear();
    this.allRows = 0;
    this.subscribers.clear();
  }

  private remove(page: Page): void {
    if (!this.pages.delete(page)) return;
    if (page.connection === null) {
      this.allRows--;
      return;
    }
    const count = (this.subscribers.get(page.connection) ?? 1) - 1;
    if (count === 0) this.subscribers.delete(page.connection);
    else this.subscribers.set(page.connection, count);
  }

  private drop(page: Page): void {
    this.dropped++;
    this.remove(page);
    // Its buffer is freed only with its socket: end() would wait for a reader that does not read.
    page.res.destroy();
  }
}

function flushChannel(channel: EventChannel): void {
  channel.flush();
}

/**
 * The row events of a subscription: a `skipped` event per connection whose rows were more than the
 * cap, then ONE `messages` event with the rows it takes (grouped by connection), or '' when it
 * takes none. Each connection's rows are serialized once, on first need, into `json`.
 */
function rowEvents(connection: string | null, queues: RowQueue[], json: Map<RowQueue, string>): string {
  let skipped = '';
  let body = '';
  for (const queue of queues) {
    const source = queue.source;
    if (connection !== null && source.id !== connection) continue;
    let rows = json.get(queue);
    if (rows === undefined) {
      rows = '';
      for (const seq of queue.seqs) {
        const entry = source.entry(seq);
        if (entry === undefined) continue;
        rows = rows === '' ? rowJson(source.idJson, entry) : `${rows},${rowJson(source.idJson, entry)}`;
        queue.sent++;
      }
      json.set(queue, rows);
    }
    if (queue.count > queue.sent) skipped += format('skipped', { connection: source.id, count: queue.count - queue.sent } satisfies InspectorEvents['skipped']);
    if (rows !== '') body = body === '' ? rows : `${body},${rows}`;
  }
  return body === '' ? skipped : `${skipped}event: messages\ndata: [${body}]\n\n`;
}

/** One event in the event-stream format; JSON has no raw newline, so `data` is one line. */
function format(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
