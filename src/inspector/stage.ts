/**
 * The inspector's stage (`inspector.transforms`, for a `WebSocketProxy` made without a
 * `ProxyServer`): one per direction of each connection, it passes each frame to the direction's
 * {@link InspectObserver}. A `ProxyServer` reaches the observers without it (`addObserver()`), which
 * spares each frame a stream stage.
 *
 * @packageDocumentation
 */
import type { Frame } from '../frame.js';
import { FrameStage, type StageOutput } from '../transforms/stage.js';
import type { InspectObserver } from './observer.js';

/** Records (and may hold) the frames of one direction of one connection. @internal */
export class InspectStage extends FrameStage {
  constructor(private readonly observer: InspectObserver) {
    super();
  }

  protected handle(frame: Frame): StageOutput | PromiseLike<StageOutput> {
    return this.observer.observe(frame) ?? frame;
  }
}
