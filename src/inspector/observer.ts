/**
 * What the inspector does with each frame of one direction of one connection: it records the frame
 * (one {@link Entry}, no JSON until a page asks), and holds the data frames a breakpoint matches
 * until they are released, edited, dropped or time out. Reached through the proxy's frame observer
 * hook (`ProxyServer.addObserver()`, at the end of the direction, before `onFrame`) or through
 * {@link InspectStage} (`inspector.transforms`, for a bare `WebSocketProxy`). Without aggregation a
 * fragmented message is matched and held frame by frame.
 *
 * @packageDocumentation
 */
import type { Frame } from '../frame.js';
import type { FrameObserver, ProxyRole } from '../proxy/options.js';
import type { Breakpoints, HoldOutcome, Holds } from './breakpoints.js';
import type { Conn, Hub } from './hub.js';

/** What an observer reaches of its inspector. @internal */
export interface ObserverHost {
  readonly hub: Hub;
  readonly breakpoints: Breakpoints;
  readonly holds: Holds;
  /** Whether the inspector was closed: its observers then let everything pass unseen. */
  readonly closed: boolean;
}

/** Records (and may hold) the frames of one direction of one connection. @internal */
export class InspectObserver implements FrameObserver {
  /** Whether the fragmented message under way is binary (for its continuation frames). */
  private binaryMessage = false;

  constructor(
    private readonly host: ObserverHost,
    private readonly conn: Conn,
    private readonly role: ProxyRole,
  ) {}

  /**
   * Sees a frame.
   *
   * @returns undefined when the frame goes on as it is (recorded), or, for a frame a breakpoint
   *   holds, a promise of what goes on (null: dropped)
   */
  observe(frame: Frame): Promise<Frame | null> | undefined {
    const host = this.host;
    if (host.closed) return undefined;
    const type = frame.type;
    let binary = false;
    if (type === 'text' || type === 'binary') {
      binary = type === 'binary';
      if (!frame.fin) this.binaryMessage = binary;
    } else if (type === 'continuation') {
      binary = this.binaryMessage;
    } else {
      if (type === 'close') this.conn.noteClose(this.role, frame.code ?? 1005);
      host.hub.record(this.conn, frame, this.role, false);
      return undefined;
    }
    if (host.breakpoints.size > 0 && host.breakpoints.matches(this.role, frame, binary)) {
      return host.holds.hold(this.conn.id, this.role, frame, binary).then((outcome) => this.pass(outcome, binary));
    }
    host.hub.record(this.conn, frame, this.role, binary);
    return undefined;
  }

  /** A held frame was resolved: record what goes on, if anything. */
  private pass(outcome: HoldOutcome, binary: boolean): Frame | null {
    if (outcome.frame !== null && !this.host.closed) {
      this.host.hub.record(this.conn, outcome.frame, this.role, binary, outcome.edited ? { edited: true } : undefined);
    }
    return outcome.frame;
  }
}
