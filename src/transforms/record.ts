/**
 * `record()`: every frame of a direction written to a recording (a JSONL file, a writable stream or
 * an in-memory `RecordingRing`) and passed on at once, never waiting for the recording.
 *
 * @packageDocumentation
 */
import { type Frame, isControlType } from '../frame.js';
import { type RecordMeta, recordFrame } from '../record/format.js';
import { RecordingRing } from '../record/ring.js';
import { type LineSink, type LineSinkSettings, type RecordOutcome, type RecordStream, fileSink, streamSink } from '../record/sink.js';
import { FrameStage, type StageOptions, checkNumber, checkOptionsObject } from './stage.js';

/** Where {@link record} writes: a file path, a writable stream, or a {@link RecordingRing}. */
export type RecordSink = string | RecordStream | RecordingRing;

/** Options of {@link record}. */
export interface RecordOptions extends StageOptions {
  /**
   * Payload bytes kept per frame: true for all, false for none (type, size and code only), a
   * number for the first that many bytes (the record is then marked `truncated`).
   * @defaultValue true
   */
  payloads?: boolean | number;
  /**
   * Whether control frames (close, ping, pong) are recorded.
   * @defaultValue true
   */
  control?: boolean;
  /**
   * Most bytes of a recording file (header and summary lines included), or of everything written to
   * a stream. A frame line too large for even an empty file keeps fewer payload bytes
   * (`truncated`). Not for a ring: bound the `RecordingRing` itself.
   * @defaultValue Infinity
   */
  maxBytes?: number;
  /**
   * Most frame lines of a recording file (or stream). Not for a ring.
   * @defaultValue Infinity
   */
  maxFrames?: number;
  /**
   * What happens at `maxBytes` or `maxFrames`: `'stop'` records nothing more (frames are counted in
   * `skipped`); `'rotate'` (file paths only) renames the file to `<path>.1` (shifting `<path>.1` to
   * `<path>.2` and so on, up to `maxFiles` files) and starts a new file, header first.
   * @defaultValue 'stop'
   */
  onLimit?: 'rotate' | 'stop';
  /**
   * With `onLimit: 'rotate'`, how many files are kept, the current one included; the oldest is
   * removed. 1 keeps only the current file (a rotation starts it afresh).
   * @defaultValue 2
   */
  maxFiles?: number;
  /**
   * Bytes a file or stream may hold that it has not written yet (its `writableLength`); a record
   * that would go over it is dropped and counted in `dropped`, so that a slow disk or a stream that
   * never drains costs bounded memory and never slows the traffic.
   * @defaultValue 1 MiB (1048576)
   */
  maxPendingBytes?: number;
  /**
   * For a stream sink: whether the stream is ended once every stage writing to it has ended (after
   * the summary line, if any). A file is always closed then.
   * @defaultValue false
   */
  end?: boolean;
}

/** Default {@link RecordOptions.maxPendingBytes}. */
export const DEFAULT_RECORD_MAX_PENDING_BYTES = 1024 * 1024;

/** Smallest `maxBytes`: room for a header and a frame line without payload. */
const MIN_MAX_BYTES = 1024;

function isRecordStream(value: unknown): value is RecordStream {
  return typeof value === 'object' && value !== null && typeof (value as RecordStream).write === 'function'
    && typeof (value as RecordStream).end === 'function' && typeof (value as RecordStream).writableLength === 'number';
}

function checkBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`options.${name} must be a boolean`);
  return value;
}

function checkPayloads(value: unknown): boolean | number {
  if (value === undefined) return true;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  throw new TypeError('options.payloads must be a boolean or an integer >= 0');
}

function lineSettings(sink: string | RecordStream, options: RecordOptions): LineSinkSettings {
  const onLimit = options.onLimit ?? 'stop';
  if (onLimit !== 'stop' && onLimit !== 'rotate') throw new TypeError("options.onLimit must be 'rotate' or 'stop'");
  if (onLimit === 'rotate' && typeof sink !== 'string') throw new TypeError("options.onLimit 'rotate' needs a file path sink");
  return {
    maxBytes: checkNumber('maxBytes', options.maxBytes, Infinity, { min: MIN_MAX_BYTES }),
    maxFrames: checkNumber('maxFrames', options.maxFrames, Infinity, { min: 1, integer: true }),
    onLimit,
    maxFiles: checkNumber('maxFiles', options.maxFiles, 2, { min: 1, integer: true }),
    maxPendingBytes: checkNumber('maxPendingBytes', options.maxPendingBytes, DEFAULT_RECORD_MAX_PENDING_BYTES, { min: 0 }),
    end: checkBoolean('end', options.end, false),
  };
}

/**
 * The transform behind {@link record}; use the factory. Frames pass on unchanged (the same objects)
 * in the same turn; the counters say what became of their records.
 */
export class RecordStage extends FrameStage {
  /** Frames recorded by this stage. */
  recorded = 0;
  /** Records this stage dropped because the sink was slower than the traffic (or had failed). */
  dropped = 0;
  /** Frames this stage did not record because a bound stopped the recording. */
  skipped = 0;
  private readonly ring: RecordingRing | undefined;
  private readonly lines: LineSink | undefined;
  private readonly payloads: boolean | number;
  private readonly control: boolean;
  /** Whether the data message under way is binary, so that its continuations are base64 too. */
  private binaryMessage = false;
  private detached = false;

  /**
   * @param sink - see {@link RecordSink}
   * @param options - see {@link RecordOptions}
   * @throws TypeError for a sink of another kind or an option out of range
   */
  constructor(sink: RecordSink, options: RecordOptions = {}) {
    checkOptionsObject(options);
    const payloads = checkPayloads(options.payloads);
    const control = checkBoolean('control', options.control, true);
    let ring: RecordingRing | undefined;
    let settings: LineSinkSettings | undefined;
    if (sink instanceof RecordingRing) {
      for (const name of ['maxBytes', 'maxFrames', 'onLimit', 'maxFiles', 'maxPendingBytes', 'end'] as const) {
        if (options[name] !== undefined) throw new TypeError(`options.${name} does not apply to a RecordingRing: bound the ring itself`);
      }
      ring = sink;
    } else if ((typeof sink === 'string' && sink !== '') || isRecordStream(sink)) {
      settings = lineSettings(sink, options);
    } else {
      throw new TypeError('sink must be a file path, a writable stream or a RecordingRing');
    }
    super(options);
    this.payloads = payloads;
    this.control = control;
    this.ring = ring;
    if (settings !== undefined) {
      this.lines = typeof sink === 'string' ? fileSink(sink, settings) : streamSink(sink as RecordStream, settings);
      this.lines.attach(this);
    }
  }

  /** The error the file or stream failed with, if it did (records are dropped since). */
  get sinkError(): Error | undefined {
    return this.lines?.error;
  }

  /** @internal */
  protected handle(frame: Frame): Frame {
    if (!isControlType(frame.type)) {
      const partial = frame.partial;
      if (partial === undefined || partial.offset === 0) {
        if (frame.type !== 'continuation') this.binaryMessage = frame.type === 'binary';
      }
      if (partial !== undefined) {
        this.add(pieceAsFragment(frame));
        return frame;
      }
    } else if (!this.control) {
      return frame;
    }
    this.add(frame);
    return frame;
  }

  private add(frame: Frame): void {
    const meta: RecordMeta = { time: Date.now(), connection: this.context.id, from: this.context.role };
    if (frame.type === 'continuation' && this.binaryMessage) meta.binary = true;
    let outcome: RecordOutcome;
    if (this.ring !== undefined) {
      // A record larger than the whole ring is refused: a skip, like a bound reached.
      outcome = this.ring.push(recordFrame(frame, meta, this.payloads)) ? 'written' : 'skipped';
    } else {
      outcome = this.lines!.add(frame, meta, this.payloads);
    }
    if (outcome === 'written') this.recorded++;
    else if (outcome === 'dropped') this.dropped++;
    else this.skipped++;
  }

  /** @internal */
  override _flush(callback: (error?: Error | null) => void): void {
    this.detach();
    callback();
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.detach();
    super._destroy(error, callback);
  }

  private detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.lines?.detach(this);
  }
}

/**
 * A piece of a cut-through frame (stages do not get them, but a stage may be used elsewhere) as a
 * fragment of its own: the first piece keeps the frame's type, later ones are continuations, and
 * only the last keeps the frame's FIN. The message's bytes are kept; its framing becomes finer.
 */
function pieceAsFragment(frame: Frame): Frame {
  const { offset, length } = frame.partial!;
  const last = offset + frame.payload.length >= length;
  return {
    type: offset === 0 ? frame.type : 'continuation',
    fin: last && frame.fin,
    payload: frame.payload,
    rsv1: offset === 0 && frame.rsv1,
  };
}

/**
 * A stage that writes a record of every frame to `sink` and passes the frame on in the same turn:
 * it never holds back the pipeline. A file or stream that cannot keep up (more than
 * `maxPendingBytes` not yet written) loses records, counted in `dropped`; a bound reached with
 * `onLimit: 'stop'` ends the recording, later frames counted in `skipped`. Both are also reported
 * on the recording's last line (a summary) when the file is closed, if it fits within `maxBytes`.
 *
 * Stages given the same path (or stream) share it: put one in each direction to record a whole
 * connection. A path is opened (truncated) at the first frame and closed when every stage writing to
 * it has ended. See docs/recording.md for the format.
 *
 * ```ts
 * const stages = (ctx: StageContext) => [record(`recordings/${ctx.id}.jsonl`, { maxBytes: 10_000_000 })];
 * new WebSocketProxy({ transforms: { client: stages, upstream: stages } });
 * ```
 *
 * @param sink - a file path, a writable stream (strings are written to it) or a {@link RecordingRing}
 * @param options - see {@link RecordOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError for a sink of another kind or an invalid option
 */
export function record(sink: RecordSink, options?: RecordOptions): RecordStage {
  return new RecordStage(sink, options);
}
