/**
 * What the inspector does with each frame of a connection, both directions: it records the frame
 * (one row, no JSON until a page asks), and holds the data frames a breakpoint matches until they
 * are released, edited, dropped or time out. Reached through the proxy's frame observer hook
 * (`ProxyServer.addObserver()`, at the end of each direction, before `onFrame`) or through
 * {@link InspectStage} (`inspector.transforms`, for a bare `WebSocketProxy`). Without aggregation a
 * fragmented message is matched and held frame by frame.
 *
 * @packageDocumentation
 */
import type { Frame } from '../frame.js';
import type { FrameObserver, ProxyRole } from '../proxy/options.js';
import type { WebSocketProxy } from '../proxy/websocket-proxy.js';
import type { Breakpoints, HoldOutcome, Holds } from './breakpoints.js';
import { Conn, type Hub } from './hub.js';

/** What an observer reaches of its inspector. @internal */
export interface ObserverHost {
  readonly hub: Hub;
  readonly breakpoints: Breakpoints;
  readonly holds: Holds;
  /** Whether the inspector was closed: its observers then let everything pass unseen. */
  readonly closed: boolean;
}

/**
 * A connection's record that is also the observer of both its directions: a frame reaches its
 * rows and counts through this one object (see {@link Conn}). @internal
 */
export class InspectedConn extends Conn implements FrameObserver {
  /** Whether the fragmented message under way from each side is binary (for its continuation frames). */
  private clientBinary = false;
  private upstreamBinary = false;

  /**
   * @param host - the inspector
   * @param id - the connection's id
   * @param proxy - its proxy
   */
  constructor(private readonly host: ObserverHost, id: string, proxy: WebSocketProxy | undefined) {
    super(id, proxy);
  }

  /**
   * Sees a frame.
   *
   * @returns undefined when the frame goes on as it is (recorded), or, for a frame a breakpoint
   *   holds, a promise of what goes on (null: dropped)
   */
  observe(frame: Frame, from: ProxyRole): Promise<Frame | null> | undefined {
    const host = this.host;
    if (host.closed) return undefined;
    const type = frame.type;
    let binary = false;
    if (type === 'text' || type === 'binary') {
      binary = type === 'binary';
      if (!frame.fin) {
        if (from === 'client') this.clientBinary = binary;
        else this.upstreamBinary = binary;
      }
    } else if (type === 'continuation') {
      binary = from === 'client' ? this.clientBinary : this.upstreamBinary;
    } else {
      if (type === 'close') this.noteClose(from, frame.code ?? 1005);
      host.hub.record(this, frame, from, false);
      return undefined;
    }
    if (host.breakpoints.size > 0 && host.breakpoints.matches(from, frame, binary)) {
      return host.holds.hold(this.id, from, frame, binary).then((outcome) => this.pass(outcome, from, binary));
    }
    host.hub.record(this, frame, from, binary);
    return undefined;
  }

  /** A held frame was resolved: record what goes on, if anything. */
  private pass(outcome: HoldOutcome, from: ProxyRole, binary: boolean): Frame | null {
    if (outcome.frame !== null && !this.host.closed) {
      this.host.hub.record(this, outcome.frame, from, binary, outcome.edited ? { edited: true } : undefined);
    }
    return outcome.frame;
  }
}
