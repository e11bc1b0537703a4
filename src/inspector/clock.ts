/**
 * The time rows are stamped with: `Date.now()` read once per turn of the event loop while frames
 * are recorded, not once per frame. A read costs about 0.1 µs here, as much as the rest of
 * recording a small frame; the frames one turn of the loop handles (the socket reads of one poll)
 * arrived together and share a time. Nothing runs while nothing is recorded.
 *
 * @packageDocumentation
 */

/** The time read this turn, valid while {@link fresh}. */
let time = 0;
/** Whether {@link time} was read this turn (an immediate clears it, after the turn's I/O). */
let fresh = false;

/** Epoch ms, as read at the first call in this turn of the event loop. @internal */
export function turnTime(): number {
  if (!fresh) {
    time = Date.now();
    fresh = true;
    setImmediate(expire);
  }
  return time;
}

function expire(): void {
  fresh = false;
}
