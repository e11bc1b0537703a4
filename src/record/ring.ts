/**
 * `RecordingRing`: an in-memory recording that keeps the newest records within a byte and a record
 * bound, evicting the oldest: a sink for `record()` that never slows nor drops for slowness.
 *
 * @packageDocumentation
 */
import { checkNumber, checkOptionsObject } from '../transforms/stage.js';
import { type RecordedFrame, type RecordingHeader, recordingHeader, toJsonLine } from './format.js';

/** Options of {@link RecordingRing}. */
export interface RecordingRingOptions {
  /**
   * Most bytes of records kept, counted as their JSON lines; the oldest are evicted beyond it. A
   * single record larger than the bound is not kept (it is counted in `evicted`).
   * @defaultValue 8 MiB (8388608)
   */
  maxBytes?: number;
  /**
   * Most records kept; the oldest are evicted beyond it.
   * @defaultValue Infinity
   */
  maxFrames?: number;
}

/** Default {@link RecordingRingOptions.maxBytes}. */
export const DEFAULT_RING_MAX_BYTES = 8 * 1024 * 1024;

/**
 * The newest records of one or many connections, bounded by `maxBytes` and `maxFrames`: adding is
 * O(1) and synchronous, the oldest records go first. Iterate it (oldest first) or export it as JSON
 * Lines with {@link RecordingRing.toJsonl}; `toHar()` and `replay()` take it as it is.
 *
 * ```ts
 * const ring = new RecordingRing({ maxBytes: 1 << 20 });
 * new WebSocketProxy({ transforms: { client: [record(ring)], upstream: [record(ring)] } });
 * // later
 * for (const frame of ring) console.log(frame.from, frame.type, frame.size);
 * ```
 */
export class RecordingRing implements Iterable<RecordedFrame> {
  /** Bound in bytes (see {@link RecordingRingOptions.maxBytes}). */
  readonly maxBytes: number;
  /** Bound in records (see {@link RecordingRingOptions.maxFrames}). */
  readonly maxFrames: number;
  /** The header {@link RecordingRing.toJsonl} starts with; `created` is when the ring was made. */
  readonly header: RecordingHeader;
  /** Records evicted (or refused for being larger than `maxBytes`) since the ring was made. */
  evicted = 0;
  // A growing array read from `head`: eviction moves the index, and the dead prefix is cut off
  // once it is half the array, so that each record is moved O(1) times overall.
  private records: RecordedFrame[] = [];
  private sizes: number[] = [];
  private head = 0;
  private byteCount = 0;

  /**
   * @param options - see {@link RecordingRingOptions}
   * @throws TypeError for an option out of range
   */
  constructor(options: RecordingRingOptions = {}) {
    checkOptionsObject(options);
    this.maxBytes = checkNumber('maxBytes', options.maxBytes, DEFAULT_RING_MAX_BYTES, { min: 1 });
    this.maxFrames = checkNumber('maxFrames', options.maxFrames, Infinity, { min: 1, integer: true });
    this.header = recordingHeader();
  }

  /** Records held. */
  get length(): number {
    return this.records.length - this.head;
  }

  /** Bytes held, counted as JSON lines. */
  get bytes(): number {
    return this.byteCount;
  }

  /**
   * Adds a record, evicting the oldest ones as needed. The ring keeps the object: do not change it
   * afterwards.
   *
   * @param record - a frame record (see `recordFrame()`)
   * @param size - its JSON line's length in bytes, when the caller already knows it
   * @returns false when the record alone is larger than `maxBytes` and was not kept
   */
  push(record: RecordedFrame, size: number = Buffer.byteLength(toJsonLine(record))): boolean {
    if (size > this.maxBytes) {
      this.evicted++;
      return false;
    }
    this.records.push(record);
    this.sizes.push(size);
    this.byteCount += size;
    while (this.byteCount > this.maxBytes || this.length > this.maxFrames) this.evictOne();
    return true;
  }

  /** Empties the ring (eviction counts are kept). */
  clear(): void {
    this.records = [];
    this.sizes = [];
    this.head = 0;
    this.byteCount = 0;
  }

  /** The records, oldest first (a snapshot: records added while iterating are not visited). */
  [Symbol.iterator](): Iterator<RecordedFrame> {
    return this.toArray()[Symbol.iterator]();
  }

  /** The records as an array, oldest first. */
  toArray(): RecordedFrame[] {
    return this.records.slice(this.head);
  }

  /**
   * The ring as a JSONL recording: its header, then one line per record, oldest first.
   *
   * @param connection - keep only this connection's records (and name it in the header)
   */
  toJsonl(connection?: string): string {
    const header = connection === undefined ? this.header : { ...this.header, connection };
    let text = toJsonLine(header);
    for (const record of this) {
      if (connection === undefined || record.connection === connection) text += toJsonLine(record);
    }
    return text;
  }

  private evictOne(): void {
    this.byteCount -= this.sizes[this.head]!;
    this.head++;
    this.evicted++;
    if (this.head >= 1024 && this.head * 2 >= this.records.length) {
      this.records = this.records.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}
