/**
 * The inspector's stage, one per direction of each connection, last of the direction's stages (so
 * it sees what goes to the peer, after the user's stages): it records every frame that passes, and
 * holds the data frames a breakpoint matches until they are released, edited, dropped or time out.
 * Without aggregation a fragmented message is matched and held frame by frame.
 *
 * @packageDocumentation
 */
import type { Frame } from '../frame.js';
import type { ProxyRole } from '../proxy/options.js';
import { FrameStage, type StageOutput } from '../transforms/stage.js';
import type { Breakpoints, HoldOutcome, Holds } from './breakpoints.js';
import type { Conn, Hub } from './hub.js';

/** What a stage reaches of its inspector. @internal */
export interface StageHost {
  readonly hub: Hub;
  readonly breakpoints: Breakpoints;
  readonly holds: Holds;
  /** Whether the inspector was closed: its stages then let everything pass unseen. */
  readonly closed: boolean;
}

/** Records (and may hold) the frames of one direction of one connection. @internal */
export class InspectStage extends FrameStage {
  /** Whether the fragmented message under way is binary (for its continuation frames). */
  private binaryMessage = false;

  constructor(
    private readonly host: StageHost,
    private readonly conn: Conn,
    private readonly role: ProxyRole,
  ) {
    super();
  }

  protected handle(frame: Frame): StageOutput | PromiseLike<StageOutput> {
    const host = this.host;
    if (host.closed) return frame;
    let binary = false;
    if (frame.type === 'text' || frame.type === 'binary') {
      binary = frame.type === 'binary';
      if (!frame.fin) this.binaryMessage = binary;
    } else if (frame.type === 'continuation') {
      binary = this.binaryMessage;
    } else if (frame.type === 'close') {
      this.conn.noteClose(this.role, frame.code ?? 1005);
    }
    if (host.breakpoints.size > 0 && (frame.type === 'text' || frame.type === 'binary' || frame.type === 'continuation') && host.breakpoints.matches(this.role, frame, binary)) {
      return host.holds.hold(this.conn.id, this.role, frame, binary).then((outcome) => this.pass(outcome, binary));
    }
    host.hub.record(this.conn, frame, this.role, binary);
    return frame;
  }

  /** A held frame was resolved: record what goes on, if anything. */
  private pass(outcome: HoldOutcome, binary: boolean): Frame | null {
    if (outcome.frame !== null && !this.host.closed) {
      this.host.hub.record(this.conn, outcome.frame, this.role, binary, outcome.edited ? { edited: true } : undefined);
    }
    return outcome.frame;
  }
}
