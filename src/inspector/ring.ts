/**
 * The rows a connection keeps, first in first out: each row is eight 32-bit words of one typed
 * array (its time, sizes, where its bytes lie in a slab, its type and flags), in a ring that grows by
 * doubling up to the most rows it may hold. Recording a frame writes numbers in place and copies its
 * first bytes: no object per frame, nothing for the garbage collector to trace or collect, and a
 * row's fields share one cache line with its neighbour's. Once full, the row recorded goes where
 * the row shed just before it was: the one cache line the shedding read (its slab and size, long
 * out of the cache on a busy proxy) is the one written. {@link Entry} views are made only when
 * asked for (the API, a page's batch). The inspector's connection record extends the ring: one
 * object per connection for its rows' bookkeeping and the rest.
 *
 * @packageDocumentation
 */
import { type Frame, type FrameType, opcodeOf } from '../frame.js';
import type { ProxyRole } from '../proxy/options.js';
import { turnTime } from './clock.js';
import { ENTRY_OVERHEAD, Entry, keptLength } from './row.js';
import { keepBytes, keptSlab, NO_SLAB, releaseSlab, slabBuffer } from './slab.js';

/** 32-bit words of a row: its time in two words (ms; low, then high), then the fields below. */
const WORDS = 8;
const TIME_LOW = 0;
const TIME_HIGH = 1;
const SIZE = 2;
const KEPT = 3;
const OFFSET = 4;
/** Its bytes' slab, as {@link slabWord} writes it (0: none, or let go). */
const SLAB = 5;
const INFO = 6;
/** 2^32: a time's high word counts these. */
const TIME_UNIT = 0x100000000;

/** Frame types by their code in a row's info word (bits 0-2). */
const TYPES: readonly FrameType[] = ['continuation', 'text', 'binary', 'close', 'ping', 'pong'];
/**
 * A frame type's code in a row (its index in TYPES): its opcode, the control opcodes (8-10) moved
 * down to 3-5 so that the code fits in 3 bits.
 */
function typeCode(type: FrameType): number {
  const opcode = opcodeOf(type)!;
  return opcode < 8 ? opcode : opcode - 5;
}
const FIN = 1 << 3;
const BINARY = 1 << 4;
const UPSTREAM = 1 << 5;
/** The entry flags (EDITED, INJECTED: 1 and 2) go at bits 6-7. */
const FLAGS_SHIFT = 6;
const HAS_CODE = 1 << 8;
/** A close code goes at bits 16-31. */
const CODE_SHIFT = 16;

/**
 * A row's slab word: the slab id plus one, so that 0, what new storage holds, names no slab
 * ({@link NO_SLAB}).
 */
function slabWord(id: number): number {
  return id === NO_SLAB ? 0 : id + 1;
}

/** The slab id a row's slab word names ({@link NO_SLAB} for 0). */
function slabOf(word: number): number {
  return word === 0 ? NO_SLAB : word - 1;
}

/**
 * Lets a dropped ring's slabs go (a connection the inspector never showed, never cleared): it is
 * given the ring's storage, in which the rows let go have slab word 0.
 */
const finalizer = new FinalizationRegistry<Uint32Array>(releaseStorage);

/** The storage of a ring that holds no row yet (or no longer), shared. */
const NO_ROWS = new Uint32Array(0);

function releaseStorage(words: Uint32Array): void {
  for (let at = SLAB; at < words.length; at += WORDS) releaseSlab(slabOf(words[at]!));
}

/**
 * A connection's kept rows. Its fields are its own, with no object of their own, so that the
 * inspector's connection record, which extends it, is one object. @internal
 */
export class RowRing {
  /** The rows, {@link WORDS} words each, from {@link RowRing.head}, wrapping. */
  private words = NO_ROWS;
  /** Rows its storage holds before it must grow. */
  private rowCapacity = 0;
  /** Where the first row is. */
  private head = 0;
  /** How many rows it holds. */
  private count = 0;
  /** The sequence number of the first row (rows hold consecutive numbers). */
  private firstSeq = 0;

  /** How many rows it holds. */
  get length(): number {
    return this.count;
  }

  /** How many rows its storage holds before it must grow. */
  get capacity(): number {
    return this.rowCapacity;
  }

  /**
   * Keeps a frame as the last row: copies its first bytes (at most `maxPayload`; text cut at a
   * character boundary) and writes its fields.
   *
   * @param frame - the frame (its payload is copied, never kept)
   * @param seq - its sequence number: the last row's plus one (or any, into an empty ring)
   * @param from - the side that sent it
   * @param binary - whether its message is binary
   * @param flags - EDITED, INJECTED
   * @param maxPayload - most payload bytes to keep
   * @param maxRows - most rows it will hold (the caller sheds the first before it would hold more):
   *   its storage grows up to this and no further
   * @returns what the row counts for in the memory bounds
   */
  record(frame: Frame, seq: number, from: ProxyRole, binary: boolean, flags: number, maxPayload: number, maxRows: number): number {
    if (this.count === this.rowCapacity) this.grow(maxRows);
    if (this.count === 0) this.firstSeq = seq;
    const type = frame.type;
    const payload = frame.payload;
    const kept = keptLength(payload, maxPayload, !binary && type !== 'ping' && type !== 'pong');
    const offset = keepBytes(payload, kept);
    let at = this.head + this.count;
    if (at >= this.rowCapacity) at -= this.rowCapacity;
    const base = at * WORDS;
    const words = this.words;
    const time = turnTime();
    words[base + TIME_LOW] = time % TIME_UNIT;
    words[base + TIME_HIGH] = time / TIME_UNIT;
    words[base + SIZE] = payload.length;
    words[base + KEPT] = kept;
    words[base + OFFSET] = offset;
    words[base + SLAB] = slabWord(keptSlab());
    const code = frame.code;
    words[base + INFO] = typeCode(type) | (frame.fin ? FIN : 0) | (binary ? BINARY : 0) | (from === 'upstream' ? UPSTREAM : 0) |
      (flags << FLAGS_SHIFT) | (code === undefined ? 0 : HAS_CODE | (code << CODE_SHIFT));
    this.count++;
    return kept + ENTRY_OVERHEAD;
  }

  /**
   * Lets the first row go.
   *
   * @returns what it counted for (0 when empty)
   */
  shift(): number {
    if (this.count === 0) return 0;
    const base = this.head * WORDS;
    const words = this.words;
    releaseSlab(slabOf(words[base + SLAB]!));
    // Let go: a dropped ring's finalizer must not release it again.
    words[base + SLAB] = 0;
    this.head = this.head + 1 === this.rowCapacity ? 0 : this.head + 1;
    this.count--;
    this.firstSeq++;
    return words[base + KEPT]! + ENTRY_OVERHEAD;
  }

  /** The row at a position from the first (0), as a new {@link Entry}, or undefined. */
  at(index: number): Entry | undefined {
    if (index < 0 || index >= this.count) return undefined;
    let at = this.head + index;
    if (at >= this.rowCapacity) at -= this.rowCapacity;
    const base = at * WORDS;
    const words = this.words;
    const info = words[base + INFO]!;
    const entry = new Entry();
    entry.seq = this.firstSeq + index;
    entry.time = words[base + TIME_HIGH]! * TIME_UNIT + words[base + TIME_LOW]!;
    entry.from = (info & UPSTREAM) === 0 ? 'client' : 'upstream';
    entry.type = TYPES[info & 7]!;
    entry.fin = (info & FIN) !== 0;
    entry.size = words[base + SIZE]!;
    entry.code = (info & HAS_CODE) === 0 ? undefined : info >>> CODE_SHIFT;
    entry.flags = (info >>> FLAGS_SHIFT) & 3;
    entry.binary = (info & BINARY) !== 0;
    entry.kept = words[base + KEPT]!;
    entry.setBytes(slabBuffer(slabOf(words[base + SLAB]!)), words[base + OFFSET]!);
    return entry;
  }

  /** The row of a sequence number, if still kept. */
  entry(seq: number): Entry | undefined {
    return this.at(seq - this.firstSeq);
  }

  /** Lets every row go, and the storage. */
  clear(): void {
    if (this.rowCapacity === 0) return;
    releaseStorage(this.words);
    finalizer.unregister(this);
    this.words = NO_ROWS;
    this.rowCapacity = 0;
    this.head = 0;
    this.count = 0;
  }

  private grow(maxRows: number): void {
    const count = this.count;
    const capacity = Math.max(count + 1, Math.min(Math.max(8, this.rowCapacity * 2), maxRows));
    const old = this.words;
    const words = new Uint32Array(capacity * WORDS);
    // The rows in order from 0: at most two runs (before and after the wrap).
    const firstRun = Math.min(count, this.rowCapacity - this.head);
    words.set(old.subarray(this.head * WORDS, (this.head + firstRun) * WORDS), 0);
    words.set(old.subarray(0, (count - firstRun) * WORDS), firstRun * WORDS);
    // The finalizer lets go what the new storage holds (the old one's rows moved, their slabs once).
    if (this.rowCapacity !== 0) finalizer.unregister(this);
    finalizer.register(this, words, this);
    this.words = words;
    this.rowCapacity = capacity;
    this.head = 0;
  }
}
