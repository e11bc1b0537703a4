/**
 * The inspector's stage (`inspector.transforms`, for a `WebSocketProxy` made without a
 * `ProxyServer`): one per direction of each connection, it passes each frame to the connection's
 * {@link InspectedConn}. A `ProxyServer` reaches the observers without it (`addObserver()`), which
 * spares each frame a stream stage.
 *
 * @packageDocumentation
 */
import type { Frame } from '../frame.js';
import { FrameStage, type StageOutput } from '../transforms/stage.js';
import type { ProxyRole } from '../proxy/options.js';
import type { InspectedConn } from './observer.js';

/** Records (and may hold) the frames of one direction of one connection. @internal */
export class InspectStage extends FrameStage {
  /**
   * @param conn - the connection's record (its observer)
   * @param from - the side whose frames the stage sees
   */
  constructor(private readonly conn: InspectedConn, private readonly from: ProxyRole) {
    super();
  }

  protected handle(frame: Frame): StageOutput | PromiseLike<StageOutput> {
    return this.conn.observe(frame, this.from) ?? frame;
  }
}
