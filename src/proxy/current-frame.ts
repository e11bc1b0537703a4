/**
 * "Forward this frame, then close": actions that must run right after the frame a direction's end
 * (its `Forwarder` or its `Link`) is processing has been handed over, or at once when none is.
 *
 * @packageDocumentation
 */

/** The frame a direction's end is processing, and what waits for it to be handed over. @internal */
export class CurrentFrame {
  private busy = false;
  private deferred: (() => void)[] = [];

  /** Whether a frame is between its arrival and its hand-over. */
  get active(): boolean {
    return this.busy;
  }

  /** A frame arrived. */
  begin(): void {
    this.busy = true;
  }

  /**
   * Runs `action` once the current frame is handed over, or now when there is none.
   *
   * @param action - what to run
   */
  after(action: () => void): void {
    if (this.busy) this.deferred.push(action);
    else action();
  }

  /** The frame was handed over (or dropped, or will never be): what waited for it runs now. */
  end(): void {
    this.busy = false;
    if (this.deferred.length === 0) return;
    const actions = this.deferred;
    this.deferred = [];
    for (const action of actions) action();
  }
}
