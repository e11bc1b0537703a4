/**
 * The inspector's memory: per connection a ring of the frames that passed (rows and payload
 * copies), bounded by `maxMessagesPerConnection` and `maxBytesPerConnection`, all of it bounded by
 * `maxBytes` (closed connections go first, oldest first, then the oldest frames of live ones), and
 * at most `maxClosedConnections` closed connections. What changes is published on the event channel.
 *
 * @packageDocumentation
 */
import type { Frame } from '../frame.js';
import type { ProxyRole } from '../proxy/options.js';
import type { ProxySummary } from '../proxy/lifecycle.js';
import type { WebSocketProxy } from '../proxy/websocket-proxy.js';
import type { EventChannel } from './events.js';
import type { ResolvedInspectorOptions } from './options.js';
import { RowRing } from './ring.js';
import { EDITED, INJECTED } from './row.js';
import type { ConnectionInfo, ConnectionStats, SideStats, TrackInfo } from './types.js';

/**
 * Milliseconds between two `stats` events, at most one per period (with every connection whose
 * counts changed): the page draws what arrives once per batch, and batches go once a second
 * (`FLUSH_INTERVAL`).
 */
export const STATS_PERIOD = 1000;


/**
 * One connection's record: its rows (it is their ring), its counts and what the page shows of it,
 * in one object. An inspected connection costs that object and its rows' storage (none before its
 * first frame): about 520 bytes of heap before any frame, where a ring, its bookkeeping, two
 * counts objects and an observer per direction took about 950. @internal
 */
export class Conn extends RowRing {
  /** What the ring counts for. */
  bytes = 0;
  /** The last sequence number given. */
  seq = 0;
  /** Whether it is in the hub (shown), which it is from its `'connection'` event or `track()`. */
  published = false;
  /** Whether the numbers changed since the last `stats` event. */
  dirty = false;
  /** Frames and payload bytes from the client, and from the upstream (injected frames not counted). */
  clientFrames = 0;
  clientBytes = 0;
  upstreamFrames = 0;
  upstreamBytes = 0;
  /** The proxy, while live (for send and close). */
  proxy: WebSocketProxy | undefined;
  route: string | null = null;
  clientAddress: string | null = null;
  upstreamUrl: string | null = null;
  opened = Date.now();
  closed: number | null = null;
  readonly closeCodes: { client: number | null; upstream: number | null } = { client: null, upstream: null };

  /** The id as JSON, for the rows' JSON. */
  readonly idJson: string;

  constructor(readonly id: string, proxy: WebSocketProxy | undefined) {
    super();
    this.proxy = proxy;
    this.idJson = JSON.stringify(id);
  }

  /** Its JSON view. */
  info(): ConnectionInfo {
    return {
      id: this.id,
      route: this.route,
      clientAddress: this.clientAddress,
      upstreamUrl: this.upstreamUrl,
      opened: this.opened,
      closed: this.closed,
      fromClient: this.fromClient,
      fromUpstream: this.fromUpstream,
      closeCodes: { ...this.closeCodes },
    };
  }

  /**
   * A close frame from `from` passed: the side sent it, and its peer gets it.
   *
   * @param from - the side that sent it
   * @param code - its code (1005 when it had none)
   */
  noteClose(from: ProxyRole, code: number): void {
    const peer = from === 'client' ? 'upstream' : 'client';
    this.closeCodes[from] ??= code;
    this.closeCodes[peer] ??= code;
  }

  /** What came from the client (a new object). */
  get fromClient(): SideStats {
    return { frames: this.clientFrames, bytes: this.clientBytes };
  }

  /** What came from the upstream (a new object). */
  get fromUpstream(): SideStats {
    return { frames: this.upstreamFrames, bytes: this.upstreamBytes };
  }
}

/** Options of {@link Hub.record}. */
export interface RecordFlags {
  edited?: boolean;
  injected?: boolean;
}

/** Every connection shown, and the bounds on what they keep. @internal */
export class Hub {
  /** Shown connections, in the order they were opened. */
  private readonly conns = new Map<string, Conn>();
  /** Closed ones still shown, in the order they closed. */
  private readonly closedConns = new Set<Conn>();
  private readonly dirty = new Set<Conn>();
  private readonly timer: NodeJS.Timeout;
  /** What every shown connection's ring counts for. */
  private total = 0;

  constructor(
    private readonly options: ResolvedInspectorOptions,
    private readonly channel: EventChannel,
  ) {
    // One timer for every connection's stats, not one per connection.
    this.timer = setInterval(publishStats, STATS_PERIOD, this);
    this.timer.unref();
  }

  /** Bytes kept across connections. */
  get bytes(): number {
    return this.total;
  }

  /** The shown connections, oldest first. */
  connections(): ConnectionInfo[] {
    return [...this.conns.values()].map((conn) => conn.info());
  }

  /** A shown connection. */
  get(id: string): Conn | undefined {
    return this.conns.get(id);
  }

  /**
   * Shows a connection (its `open` event).
   *
   * @param conn - the connection's record, made by its stages
   * @param meta - route, client address, upstream URL
   */
  publish(conn: Conn, meta: TrackInfo): void {
    if (conn.published) return;
    conn.route = meta.route ?? null;
    conn.clientAddress = meta.clientAddress ?? null;
    conn.upstreamUrl = meta.upstreamUrl ?? null;
    conn.published = true;
    this.conns.set(conn.id, conn);
    this.total += conn.bytes;
    this.channel.publish('open', conn.info());
    if (this.total > this.options.maxBytes) this.reclaim(conn);
  }

  /**
   * Keeps a frame that passed (or was injected), and publishes its row.
   *
   * @param conn - its connection
   * @param frame - the frame (its payload is copied, up to `maxPayloadBytes`)
   * @param from - the side that sent it
   * @param binary - whether its message is binary
   * @param flags - edited / injected
   */
  record(conn: Conn, frame: Frame, from: ProxyRole, binary: boolean, flags?: RecordFlags): void {
    const bits = flags === undefined ? 0 : (flags.edited === true ? EDITED : 0) | (flags.injected === true ? INJECTED : 0);
    const { maxMessagesPerConnection, maxBytesPerConnection } = this.options;
    // Full: the oldest goes first, so that the ring's storage never grows past the bound.
    if (conn.length >= maxMessagesPerConnection) this.shift(conn);
    this.add(conn, conn.record(frame, ++conn.seq, from, binary, bits, this.options.maxPayloadBytes, maxMessagesPerConnection));
    if ((bits & INJECTED) === 0) {
      if (from === 'client') {
        conn.clientFrames++;
        conn.clientBytes += frame.payload.length;
      } else {
        conn.upstreamFrames++;
        conn.upstreamBytes += frame.payload.length;
      }
      if (conn.published && !conn.dirty) {
        conn.dirty = true;
        this.dirty.add(conn);
      }
    }
    while (conn.length > 1 && (conn.length > maxMessagesPerConnection || conn.bytes > maxBytesPerConnection)) this.shift(conn);
    if (!conn.published) return;
    if (this.total > this.options.maxBytes) this.reclaim(conn);
    // Queued (by number; read at the flush) only when a page takes this connection's rows.
    this.channel.publishRow(conn, conn.seq);
  }

  /**
   * A connection ended: it stays shown (without its proxy) until evicted.
   *
   * @param conn - the connection
   * @param summary - its summary, for the close codes the stages did not see
   */
  close(conn: Conn, summary: ProxySummary | undefined): void {
    if (conn.closed !== null) return;
    conn.closed = Date.now();
    conn.proxy = undefined;
    if (summary !== undefined) {
      for (const role of ['client', 'upstream'] as const) {
        const side = summary[role];
        const close = side.closeReceived ?? side.closeSent;
        if (conn.closeCodes[role] === null && close !== undefined) conn.closeCodes[role] = close.code ?? 1005;
      }
    }
    if (!conn.published) return;
    conn.dirty = false;
    this.dirty.delete(conn);
    this.channel.publish('close', conn.info());
    this.closedConns.add(conn);
    if (this.closedConns.size > this.options.maxClosedConnections) this.evict(this.closedConns.values().next().value!);
  }

  /**
   * Publishes the stats that changed (every {@link STATS_PERIOD} ms), as one event: a page takes
   * one event for a busy proxy's connections, not one per connection.
   */
  publishStats(): void {
    if (this.dirty.size === 0) return;
    const list: ConnectionStats[] | undefined = this.channel.size > 0 ? [] : undefined;
    for (const conn of this.dirty) {
      conn.dirty = false;
      list?.push({ id: conn.id, client: conn.fromClient, upstream: conn.fromUpstream });
    }
    this.dirty.clear();
    if (list !== undefined) this.channel.publish('stats', list);
  }

  /** Forgets everything and stops the timer. */
  dispose(): void {
    clearInterval(this.timer);
    for (const conn of this.conns.values()) conn.clear();
    this.conns.clear();
    this.closedConns.clear();
    this.dirty.clear();
    this.total = 0;
  }

  private add(conn: Conn, cost: number): void {
    conn.bytes += cost;
    if (conn.published) this.total += cost;
  }

  private shift(conn: Conn): void {
    this.add(conn, -conn.shift());
  }

  /** Brings the total under `maxBytes`: closed connections first, then the oldest frames. */
  private reclaim(current: Conn): void {
    const max = this.options.maxBytes;
    for (const conn of this.closedConns) {
      if (this.total <= max) return;
      this.evict(conn);
    }
    // The connection that brought the flood pays first, then the others from the oldest.
    while (this.total > max && current.length > 1) this.shift(current);
    for (const conn of this.conns.values()) {
      if (this.total <= max) return;
      if (conn === current) continue;
      while (this.total > max && conn.length > 0) this.shift(conn);
    }
  }

  private evict(conn: Conn): void {
    this.closedConns.delete(conn);
    this.conns.delete(conn.id);
    this.total -= conn.bytes;
    conn.bytes = 0;
    conn.clear();
  }
}

function publishStats(hub: Hub): void {
  hub.publishStats();
}
