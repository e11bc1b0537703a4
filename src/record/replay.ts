/**
 * `replay()`: the frames one side sent in a recording, as a readable stream of `Frame`s, with the
 * recorded gaps, faster, or at once: feed it to a `FrameWritable` to re-send a captured connection
 * to an upstream, or through stages in a test.
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { Readable } from 'readable-stream';
import { checkNumber, checkOptionsObject } from '../transforms/stage.js';
import { type ParsedRecording, type RecordedFrame, type RecordedSide, frameFromRecord, parseRecording } from './format.js';
import { RecordingRing } from './ring.js';

/**
 * What {@link replay} reads: a file path or the JSONL text itself (text is told from a path by its
 * first character, `{`), a parsed recording, a {@link RecordingRing}, or frame records.
 */
export type ReplaySource = string | ParsedRecording | RecordingRing | readonly RecordedFrame[];

/** Pace of a replay: see {@link ReplayOptions.timing}. */
export type ReplayTiming = 'original' | 'fast' | number;

/** Options of {@link replay}. */
export interface ReplayOptions {
  /**
   * `'original'`: each frame after the same gap as in the recording (timers, from the previous
   * frame pushed); `'fast'`: no waiting; a number: the gaps divided by it (2 is twice as fast).
   * @defaultValue 'fast'
   */
  timing?: ReplayTiming;
  /**
   * Whose frames are replayed: `'client'` (to re-send to an upstream) or `'upstream'`.
   * @defaultValue 'client'
   */
  from?: RecordedSide;
  /**
   * Which connection, when the recording holds several.
   * @defaultValue the header's `connection`, else the first frame record's
   */
  connection?: string;
  /**
   * Frames buffered ahead of the reader (object-mode high-water mark).
   * @defaultValue 16
   */
  highWaterMark?: number;
}

function checkTiming(value: unknown): number {
  if (value === undefined || value === 'fast') return Infinity;
  if (value === 'original') return 1;
  if (typeof value === 'number' && value > 0 && !Number.isNaN(value)) return value;
  throw new TypeError("options.timing must be 'original', 'fast' or a number > 0");
}

function checkReplayable(record: RecordedFrame): void {
  // frameFromRecord throws the TypeError that says why (no data, truncated data).
  frameFromRecord(record);
}

/**
 * The stream {@link replay} returns: an object-mode `Readable` of `Frame`s that respects
 * backpressure (it never pushes past its high-water mark; a timer runs only while the reader wants
 * more) and ends after the last frame.
 */
export class ReplayStream extends Readable {
  /** Frames pushed so far. */
  pushed = 0;
  private records: readonly RecordedFrame[] = [];
  private next = 0;
  private previousTime: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Whether the wait before `records[next]` is over. */
  private waited = false;
  private readonly speed: number;
  private readonly from: RecordedSide;
  private readonly connection: string | undefined;
  private readonly path: string | undefined;

  /**
   * @param source - see {@link ReplaySource}
   * @param options - see {@link ReplayOptions}
   * @throws TypeError for another source, an invalid option, or a record of the replayed side
   *   without its whole payload (a recording made with `payloads: false` or a number)
   */
  constructor(source: ReplaySource, options: ReplayOptions = {}) {
    checkOptionsObject(options);
    const speed = checkTiming(options.timing);
    const from = options.from ?? 'client';
    if (from !== 'client' && from !== 'upstream') throw new TypeError("options.from must be 'client' or 'upstream'");
    if (options.connection !== undefined && typeof options.connection !== 'string') throw new TypeError('options.connection must be a string');
    super({ objectMode: true, highWaterMark: checkNumber('highWaterMark', options.highWaterMark, 16, { min: 1, integer: true }) });
    this.speed = speed;
    this.from = from;
    this.connection = options.connection;
    if (typeof source === 'string' && !source.trimStart().startsWith('{')) {
      this.path = source;
    } else {
      this.records = this.select(parsedOf(source));
      this.records.forEach(checkReplayable);
    }
  }

  /** @internal Reads the file, when the source is a path. */
  _construct(callback: (error?: Error | null) => void): void {
    if (this.path === undefined) {
      callback();
      return;
    }
    readFile(this.path, 'utf8').then(
      (text) => {
        try {
          this.records = this.select(parseRecording(text));
          this.records.forEach(checkReplayable);
          callback();
        } catch (err) {
          callback(err as Error);
        }
      },
      (err: Error) => callback(err),
    );
  }

  /** @internal */
  override _read(): void {
    this.pump();
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    callback(error);
  }

  /** The records of the chosen side and connection, in order. */
  private select(recording: ParsedRecording): RecordedFrame[] {
    const connection = this.connection ?? recording.header.connection ?? recording.frames[0]?.connection;
    return recording.frames.filter((r) => r.from === this.from && r.connection === connection);
  }

  /** Pushes frames while the reader wants them, waiting out each gap with one timer. */
  private pump(): void {
    while (this.timer === undefined && this.next < this.records.length) {
      const record = this.records[this.next]!;
      const gap = this.previousTime === undefined ? 0 : (record.time - this.previousTime) / this.speed;
      if (gap > 0 && !this.waited) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.waited = true;
          this.pump();
        }, gap);
        return;
      }
      this.waited = false;
      this.next++;
      this.previousTime = record.time;
      this.pushed++;
      if (!this.push(frameFromRecord(record))) return;
    }
    if (this.timer === undefined && this.next >= this.records.length && !this.readableEnded) this.push(null);
  }
}

/** Parsed recording from text, a ring, records or a parsed recording. */
function parsedOf(source: Exclude<ReplaySource, string> | string): ParsedRecording {
  if (typeof source === 'string') return parseRecording(source);
  if (source instanceof RecordingRing) return { header: source.header, frames: source.toArray() };
  if (Array.isArray(source)) return { header: { format: 'ws-frame-proxy-recording', version: 1, created: '' }, frames: source as RecordedFrame[] };
  if (typeof source === 'object' && source !== null && Array.isArray((source as ParsedRecording).frames)) return source as ParsedRecording;
  throw new TypeError('source must be a file path, JSONL text, a parsed recording, a RecordingRing or frame records');
}

/**
 * The frames one side sent in a recording, as an object-mode readable stream of new `Frame`s
 * (byte-exact: type, FIN, RSV1, payload, close code), paced by `timing`.
 *
 * ```ts
 * // Re-send what a client sent, with its original pacing, to an upstream:
 * const { socket, head } = await connectUpstream('ws://127.0.0.1:8080/');
 * await pipeline(replay('rec.jsonl', { timing: 'original' }), new FrameWritable(socket, { role: 'client' }));
 * ```
 *
 * @param source - see {@link ReplaySource}
 * @param options - see {@link ReplayOptions}
 * @returns a {@link ReplayStream}; a file that cannot be read or parsed fails it
 *   (`WSP_ERR_INVALID_RECORDING` for a bad line)
 * @throws TypeError for another source, an invalid option, or records without their whole payload
 */
export function replay(source: ReplaySource, options?: ReplayOptions): ReplayStream {
  return new ReplayStream(source, options);
}
