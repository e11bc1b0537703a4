/**
 * Where the inspector copies the payloads it keeps: small ones one after the other into shared 8
 * KiB slabs (as `Buffer.allocUnsafe`'s pool does), larger ones into a buffer of their own. A row
 * names its bytes by a slab id and an offset (numbers, in the ring's typed arrays), never by a
 * reference: the kept rows are no objects for the garbage collector to trace, and a row written over
 * an old one makes no old-to-new pointer for every scavenge to visit. Each slab counts the rows in
 * it; once none is left (and it is not the one being filled), it goes to a small pool of spare
 * slabs and is filled again: a flood recycles its memory instead of allocating and collecting it.
 *
 * A slab id is valid only while a row holding it is kept: read a row's bytes at once, never keep a
 * view of them across turns.
 *
 * @packageDocumentation
 */

/** Bytes of a slab. */
export const SLAB_BYTES = 8 * 1024;
/** Payloads above this get a buffer of their own. */
const SLAB_MAX = SLAB_BYTES / 4;
/** Spare slabs kept for reuse, at most (256 KiB across every inspector of the process). */
const SPARE_MAX = 32;
/** The slab id of a row that kept no byte. */
export const NO_SLAB = 0xffffffff;

const EMPTY = Buffer.alloc(0);
/** Buffers by id (undefined: a free id). */
const buffers: (Buffer | undefined)[] = [];
/** Rows in each slab, by id. */
let refs = new Int32Array(64);
/** Ids free for reuse. */
const freeIds: number[] = [];
/** Emptied slabs, ready to be filled again. */
const spare: Buffer[] = [];
/** The slab being filled (NO_SLAB before the first), and its bytes used. */
let current = NO_SLAB;
let used = SLAB_BYTES;
/** The slab the last {@link keepBytes} wrote into. */
let lastSlab = NO_SLAB;

/**
 * Copies the first `length` bytes of a payload into a slab (or a buffer of its own) and counts a
 * row in it; {@link keptSlab} tells which one.
 *
 * @param payload - the payload (never modified)
 * @param length - how many of its first bytes to keep (0: none, no slab)
 * @returns the bytes' offset in their slab
 */
export function keepBytes(payload: Buffer, length: number): number {
  if (length === 0) {
    lastSlab = NO_SLAB;
    return 0;
  }
  if (length > SLAB_MAX) {
    const id = newId(Buffer.allocUnsafeSlow(length));
    payload.copy(buffers[id]!, 0, 0, length);
    refs[id] = 1;
    lastSlab = id;
    return 0;
  }
  if (used + length > SLAB_BYTES) {
    const previous = current;
    current = newId(spare.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES));
    used = 0;
    // The slab left behind is freed by its last row, or now if none is left in it.
    if (previous !== NO_SLAB && refs[previous] === 0) free(previous);
  }
  const offset = used;
  const slab = buffers[current]!;
  // A whole small payload (the common case) goes by TypedArray.set, without Buffer.copy's checks.
  if (length === payload.length) slab.set(payload, offset);
  else payload.copy(slab, offset, 0, length);
  used += length;
  refs[current]!++;
  lastSlab = current;
  return offset;
}

/** The slab the last {@link keepBytes} wrote into ({@link NO_SLAB} when it kept nothing). */
export function keptSlab(): number {
  return lastSlab;
}

/** The buffer of a slab id (an empty one for {@link NO_SLAB}). */
export function slabBuffer(id: number): Buffer {
  return id === NO_SLAB ? EMPTY : buffers[id]!;
}

/** A row in a slab was let go: the slab is freed with its last row (unless it is being filled). */
export function releaseSlab(id: number): void {
  if (id === NO_SLAB) return;
  if (--refs[id]! === 0 && id !== current) free(id);
}

/** Slabs in use and spare, for tests and diagnostics. */
export function slabCounts(): { live: number; spare: number } {
  return { live: buffers.length - freeIds.length, spare: spare.length };
}

function newId(buffer: Buffer): number {
  const id = freeIds.pop() ?? buffers.length;
  if (id === buffers.length) buffers.push(buffer);
  else buffers[id] = buffer;
  if (id >= refs.length) {
    const grown = new Int32Array(refs.length * 2);
    grown.set(refs);
    refs = grown;
  }
  refs[id] = 0;
  return id;
}

function free(id: number): void {
  const buffer = buffers[id]!;
  buffers[id] = undefined;
  freeIds.push(id);
  if (buffer.length === SLAB_BYTES && spare.length < SPARE_MAX) spare.push(buffer);
}
