/**
 * The rows a connection keeps, first in first out: each row is 32 bytes of one typed array (its
 * time, sizes, where its bytes lie in a slab, its type and flags), in a ring that grows by doubling
 * up to the most rows it may hold. Recording a frame writes numbers in place and copies its first
 * bytes: no object per frame, nothing for the garbage collector to trace or collect, and a row's
 * fields share one cache line with its neighbour's. Once full, the row recorded goes where the row
 * shed just before it was: the one cache line the shedding read (its slab and size, long out of the
 * cache on a busy proxy) is the one written. {@link Entry} views are made only when asked for (the
 * API, a page's batch).
 *
 * @packageDocumentation
 */
import { type Frame, type FrameType, opcodeOf } from '../frame.js';
import type { ProxyRole } from '../proxy/options.js';
import { turnTime } from './clock.js';
import { ENTRY_OVERHEAD, Entry, keptLength } from './row.js';
import { keepBytes, keptSlab, releaseSlab, slabBuffer } from './slab.js';

/** 32-bit words of a row: a float64 time (words 0-1), then the fields below. */
const WORDS = 8;
const SIZE = 2;
const KEPT = 3;
const OFFSET = 4;
const SLAB = 5;
const INFO = 6;

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
 * What a ring holds, apart from the ring: what its finalizer needs to let its rows' slabs go when a
 * ring is dropped without being cleared (a connection the inspector never showed).
 */
interface Rows {
  words: Uint32Array;
  times: Float64Array;
  /** Rows it can hold before growing. */
  capacity: number;
  head: number;
  count: number;
}

/** Lets the slabs of a dropped ring's rows go. */
const finalizer = new FinalizationRegistry<Rows>(releaseRows);

function releaseRows(rows: Rows): void {
  while (rows.count > 0) dropHead(rows);
}

/** Lets the first row go (its slab's share too): returns where its words start. */
function dropHead(rows: Rows): number {
  const base = rows.head * WORDS;
  releaseSlab(rows.words[base + SLAB]!);
  rows.head = rows.head + 1 === rows.capacity ? 0 : rows.head + 1;
  rows.count--;
  return base;
}

/** A connection's kept rows. @internal */
export class RowRing {
  private readonly rows: Rows = { words: new Uint32Array(0), times: new Float64Array(0), capacity: 0, head: 0, count: 0 };
  /** The sequence number of the first row (rows hold consecutive numbers). */
  private firstSeq = 0;

  /** How many rows it holds. */
  get length(): number {
    return this.rows.count;
  }

  /** How many rows its storage holds before it must grow. */
  get capacity(): number {
    return this.rows.capacity;
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
    const rows = this.rows;
    if (rows.count === rows.capacity) this.grow(maxRows);
    if (rows.count === 0) this.firstSeq = seq;
    const type = frame.type;
    const payload = frame.payload;
    const kept = keptLength(payload, maxPayload, !binary && type !== 'ping' && type !== 'pong');
    const offset = keepBytes(payload, kept);
    let at = rows.head + rows.count;
    if (at >= rows.capacity) at -= rows.capacity;
    const base = at * WORDS;
    const words = rows.words;
    rows.times[at * (WORDS / 2)] = turnTime();
    words[base + SIZE] = payload.length;
    words[base + KEPT] = kept;
    words[base + OFFSET] = offset;
    words[base + SLAB] = keptSlab();
    const code = frame.code;
    words[base + INFO] = typeCode(type) | (frame.fin ? FIN : 0) | (binary ? BINARY : 0) | (from === 'upstream' ? UPSTREAM : 0) |
      (flags << FLAGS_SHIFT) | (code === undefined ? 0 : HAS_CODE | (code << CODE_SHIFT));
    rows.count++;
    return kept + ENTRY_OVERHEAD;
  }

  /**
   * Lets the first row go.
   *
   * @returns what it counted for (0 when empty)
   */
  shift(): number {
    const rows = this.rows;
    if (rows.count === 0) return 0;
    const base = dropHead(rows);
    this.firstSeq++;
    return rows.words[base + KEPT]! + ENTRY_OVERHEAD;
  }

  /** The row at a position from the first (0), as a new {@link Entry}, or undefined. */
  at(index: number): Entry | undefined {
    const rows = this.rows;
    if (index < 0 || index >= rows.count) return undefined;
    let at = rows.head + index;
    if (at >= rows.capacity) at -= rows.capacity;
    const base = at * WORDS;
    const words = rows.words;
    const info = words[base + INFO]!;
    const entry = new Entry();
    entry.seq = this.firstSeq + index;
    entry.time = rows.times[at * (WORDS / 2)]!;
    entry.from = (info & UPSTREAM) === 0 ? 'client' : 'upstream';
    entry.type = TYPES[info & 7]!;
    entry.fin = (info & FIN) !== 0;
    entry.size = words[base + SIZE]!;
    entry.code = (info & HAS_CODE) === 0 ? undefined : info >>> CODE_SHIFT;
    entry.flags = (info >>> FLAGS_SHIFT) & 3;
    entry.binary = (info & BINARY) !== 0;
    entry.kept = words[base + KEPT]!;
    entry.setBytes(slabBuffer(words[base + SLAB]!), words[base + OFFSET]!);
    return entry;
  }

  /** The row of a sequence number, if still kept. */
  entry(seq: number): Entry | undefined {
    return this.at(seq - this.firstSeq);
  }

  /** Lets every row go, and the storage. */
  clear(): void {
    const rows = this.rows;
    if (rows.capacity === 0) return;
    releaseRows(rows);
    finalizer.unregister(rows);
    rows.words = new Uint32Array(0);
    rows.times = new Float64Array(0);
    rows.capacity = 0;
    rows.head = 0;
  }

  private grow(maxRows: number): void {
    const rows = this.rows;
    // The first row of a ring: from now on, its rows' slabs are let go with it if nobody clears it.
    if (rows.capacity === 0) finalizer.register(this, rows, rows);
    const capacity = Math.max(rows.count + 1, Math.min(Math.max(8, rows.capacity * 2), maxRows));
    const words = new Uint32Array(capacity * WORDS);
    // The rows in order from 0: at most two runs (before and after the wrap).
    const firstRun = Math.min(rows.count, rows.capacity - rows.head);
    words.set(rows.words.subarray(rows.head * WORDS, (rows.head + firstRun) * WORDS), 0);
    words.set(rows.words.subarray(0, (rows.count - firstRun) * WORDS), firstRun * WORDS);
    rows.words = words;
    rows.times = new Float64Array(words.buffer);
    rows.capacity = capacity;
    rows.head = 0;
  }
}
