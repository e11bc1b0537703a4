/**
 * The live channel, `GET /api/events`: Server-Sent Events to every open page. Each event is
 * serialized once whatever the number of pages, events go out together every {@link FLUSH_INTERVAL}
 * ms (or as soon as {@link FLUSH_BYTES} wait) in one write per page, and a page that does not read
 * is dropped once its response has buffered `maxPageBuffer` bytes: memory never grows with a slow
 * page, and the page's `EventSource` reconnects (and gets a fresh `hello`).
 *
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InspectorEvents } from './types.js';

/**
 * Milliseconds events wait to go out together: a page cannot show more than a few updates a
 * second anyway, and one write of many events costs the proxy far less than many writes (at tens
 * of thousands of frames a second, a write per turn of the event loop is a write per few frames).
 */
export const FLUSH_INTERVAL = 25;
/** Bytes of waiting events past which they go out at once, whatever the interval. */
export const FLUSH_BYTES = 64 * 1024;

/** The open pages of an inspector and what is waiting to be written to them. @internal */
export class EventChannel {
  private readonly pages = new Set<ServerResponse>();
  /** Events of this turn, serialized, not yet written. */
  private pending: string[] = [];
  private pendingBytes = 0;
  private scheduled: NodeJS.Timeout | undefined;
  private closed = false;
  /** Pages dropped for not reading. */
  dropped = 0;

  /** @param maxPageBuffer - bytes a page's response may have buffered before it is dropped */
  constructor(private readonly maxPageBuffer: number) {}

  /** How many pages are open. */
  get size(): number {
    return this.pages.size;
  }

  /**
   * Queues an event for every open page (nothing is done without pages: the caller may check
   * {@link EventChannel.size} before building the data).
   */
  publish<K extends keyof InspectorEvents>(name: K, data: InspectorEvents[K]): void {
    if (this.pages.size === 0) return;
    this.publishJson(name, JSON.stringify(data));
  }

  /** {@link EventChannel.publish} with the data serialized already (the hot path: rows). */
  publishJson(name: keyof InspectorEvents, json: string): void {
    if (this.pages.size === 0) return;
    const event = `event: ${name}\ndata: ${json}\n\n`;
    this.pending.push(event);
    this.pendingBytes += event.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else this.scheduled ??= setTimeout(flushChannel, FLUSH_INTERVAL, this);
  }

  /**
   * Takes a page's request: answers the event-stream head and `hello`, then live events.
   *
   * @param req - the request
   * @param res - its response
   * @param hello - the state the page starts from, read now
   */
  attach(req: IncomingMessage, res: ServerResponse, hello: () => InspectorEvents['hello']): void {
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
    this.pages.add(res);
    res.on('close', () => this.pages.delete(res));
  }

  /** Writes what is pending to every page; drops the pages that have not read what they had. */
  flush(): void {
    if (this.scheduled !== undefined) {
      clearTimeout(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.pending.length === 0) return;
    const chunk = Buffer.from(this.pending.join(''));
    this.pending = [];
    this.pendingBytes = 0;
    for (const res of this.pages) {
      if (res.writableLength > this.maxPageBuffer) {
        this.drop(res);
        continue;
      }
      res.write(chunk);
    }
  }

  /** Ends every page's response and takes no more. */
  close(): void {
    this.closed = true;
    this.flush();
    for (const res of this.pages) res.end();
    this.pages.clear();
  }

  private drop(res: ServerResponse): void {
    this.dropped++;
    this.pages.delete(res);
    // Its buffer is freed only with its socket: end() would wait for a reader that does not read.
    res.destroy();
  }
}

function flushChannel(channel: EventChannel): void {
  channel.flush();
}

/** One event in the event-stream format; JSON has no raw newline, so `data` is one line. */
function format(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
