/**
 * Where `record()` stages write: JSON Lines to a file (with bounds and rotation) or to a writable
 * stream, shared by every stage that names the same path or stream, so that both directions of a
 * connection (or many connections) land in one recording with one header and one set of bounds.
 *
 * Nothing here ever waits: a line is handed to the stream now, or dropped and counted.
 *
 * @packageDocumentation
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { Frame } from '../frame.js';
import { type RecordMeta, type RecordedFrame, type RecordingSummary, recordFrame, recordingHeader, toJsonLine } from './format.js';

/** What `record()` asks of a writable stream sink. */
export interface RecordStream {
  /** Node's `Writable.write`, with strings. */
  write(chunk: string): boolean;
  /** Bytes (or, in object mode, chunks) buffered and not yet accepted by the underlying resource. */
  readonly writableLength: number;
  /** Ends the stream (called only with `end: true`). */
  end(): unknown;
}

/** The sink-level settings of a recording to a file or stream. */
export interface LineSinkSettings {
  /** See `RecordOptions.maxBytes`. */
  maxBytes: number;
  /** See `RecordOptions.maxFrames`. */
  maxFrames: number;
  /** See `RecordOptions.onLimit`. */
  onLimit: 'rotate' | 'stop';
  /** See `RecordOptions.maxFiles`. */
  maxFiles: number;
  /** See `RecordOptions.maxPendingBytes`. */
  maxPendingBytes: number;
  /** See `RecordOptions.end`. */
  end: boolean;
}

/** What became of one frame. */
export type RecordOutcome = 'written' | 'dropped' | 'skipped';

/** A stage writing to a sink, for the header's `connection`. */
export interface SinkUser {
  readonly context: { readonly id: string };
}

/**
 * Bytes kept free at the end of a bounded file for the summary line: its fields with counts of up
 * to 15 digits each fit.
 */
const SUMMARY_ROOM = 100;

/** The summary line. */
function summaryLine(frames: number, dropped: number, skipped: number): string {
  const summary: RecordingSummary = { summary: true, frames, dropped, skipped };
  return toJsonLine(summary);
}

/**
 * One recording file or stream, shared by its stages (see the module comment). Counters are those
 * of the current file: a rotation starts them again.
 */
export class LineSink {
  /** Frame lines written to the current file. */
  frames = 0;
  /** Records dropped (the sink was slower than the traffic) since the current file started. */
  dropped = 0;
  /** Frames not recorded since the current file started because a bound stopped the recording. */
  skipped = 0;
  /** The stream's error, if it failed; every later record is dropped. */
  error: Error | undefined;
  private readonly users = new Set<SinkUser>();
  private out: RecordStream | undefined;
  private bytes = 0;
  /** Bytes of the current file's header line. */
  private headerBytes = 0;
  private stopped = false;
  /** Lines waiting for the next file while a rotation renames files. */
  private queue: string[][] | undefined;
  private queued = 0;
  private closing = false;

  /**
   * @param path - the file (resolved), or undefined for a stream
   * @param stream - the stream, when no path
   * @param settings - bounds and policy, from the first stage
   * @param onClosed - called once the file is closed (the registry forgets it)
   */
  constructor(
    private readonly path: string | undefined,
    stream: RecordStream | undefined,
    readonly settings: LineSinkSettings,
    private readonly onClosed: () => void,
  ) {
    this.out = stream;
  }

  /** Adds a stage. */
  attach(user: SinkUser): void {
    this.users.add(user);
  }

  /** Removes a stage; the last one out ends the recording (a file is closed, a stream ended with `end: true`). */
  detach(user: SinkUser): void {
    if (!this.users.delete(user) || this.users.size > 0) return;
    if (this.path === undefined && !this.settings.end) return;
    this.closing = true;
    if (this.queue === undefined) this.finish();
  }

  /**
   * Records a frame, or drops or skips it; never waits.
   *
   * @param frame - the frame
   * @param meta - its time, connection, side
   * @param payloads - the stage's `payloads` option
   */
  add(frame: Frame, meta: RecordMeta, payloads: boolean | number): RecordOutcome {
    if (this.error !== undefined || (this.closing && this.queue === undefined)) return this.drop();
    if (this.stopped) return this.skip();
    if (this.bytes === 0) this.start(meta.connection);
    let record = recordFrame(frame, meta, payloads);
    let line = toJsonLine(record);
    let size = Buffer.byteLength(line);
    const limit = this.settings.maxBytes - SUMMARY_ROOM;
    const room = limit - this.headerBytes;
    if (size > room) {
      // Too large even for a fresh file: keep fewer payload bytes, so that the frame is still seen.
      record = this.shrink(frame, meta, payloads, record, room);
      line = toJsonLine(record);
      size = Buffer.byteLength(line);
      if (size > room) return this.skip();
    }
    if (this.bytes + size > limit || this.frames >= this.settings.maxFrames) {
      if (this.settings.onLimit === 'stop' || this.path === undefined) {
        this.stopped = true;
        return this.skip();
      }
      this.rotate(meta.connection);
    }
    if (this.pending() + size > this.settings.maxPendingBytes) return this.drop();
    this.emit(line, size);
    this.frames++;
    return 'written';
  }

  private drop(): RecordOutcome {
    this.dropped++;
    return 'dropped';
  }

  private skip(): RecordOutcome {
    this.skipped++;
    return 'skipped';
  }

  /** Bytes handed over and not yet written, rotation queue included. */
  private pending(): number {
    return this.queued + (this.out?.writableLength ?? 0);
  }

  private emit(line: string, size: number): void {
    this.bytes += size;
    if (this.queue !== undefined) {
      this.queue[this.queue.length - 1]!.push(line);
      this.queued += size;
    } else {
      this.out!.write(line);
    }
  }

  /** Opens the file if needed (not during a rotation: the header then waits in the queue) and writes the header of a new file. */
  private start(connection: string): void {
    if (this.out === undefined && this.queue === undefined) this.out = this.open();
    // The header names the connection only when every stage writing here belongs to it.
    let only: string | undefined = connection === '' ? undefined : connection;
    for (const user of this.users) if (user.context.id !== connection) only = undefined;
    const header = toJsonLine(recordingHeader(this.path === undefined ? undefined : only));
    this.headerBytes = Buffer.byteLength(header);
    this.emit(header, this.headerBytes);
  }

  private open(): RecordStream {
    const stream = createWriteStream(this.path!, { flags: 'w' });
    stream.on('error', (err: Error) => {
      this.error ??= err;
    });
    return stream;
  }

  private shrink(frame: Frame, meta: RecordMeta, payloads: boolean | number, record: RecordedFrame, room: number): RecordedFrame {
    if (payloads === false) return record;
    let keep = payloads === true ? frame.payload.length : Math.min(frame.payload.length, Number(payloads));
    let current = record;
    // Each pass scales the kept bytes by how far the line is over, then trims a little more; JSON
    // escaping makes the line's length a non-linear function of the bytes kept.
    for (let pass = 0; pass < 16 && keep > 0; pass++) {
      const size = Buffer.byteLength(toJsonLine(current));
      if (size <= room) return current;
      keep = Math.max(0, Math.floor((keep * room) / size) - 8);
      current = recordFrame(frame, meta, keep);
    }
    return recordFrame(frame, meta, 0);
  }

  /** The summary line, if there is anything to report and it fits. */
  private summary(): string | undefined {
    if (this.dropped === 0 && this.skipped === 0) return undefined;
    const line = summaryLine(this.frames, this.dropped, this.skipped);
    return this.bytes + Buffer.byteLength(line) <= this.settings.maxBytes ? line : undefined;
  }

  /**
   * Ends the current file and starts the next one: `path` becomes `path.1`, `path.1` becomes
   * `path.2`, and so on up to `maxFiles - 1`; the oldest is removed. The renames wait for the old
   * file to be closed; lines arriving meanwhile wait in memory (within `maxPendingBytes`, like any
   * pending bytes), one segment per file to come, so that a burst may fill several files while the
   * first rotation is under way.
   */
  private rotate(connection: string): void {
    const last = this.summary();
    if (this.queue === undefined) {
      const old = this.out!;
      if (last !== undefined) old.write(last);
      this.out = undefined;
      this.queue = [[]];
      this.queued = 0;
      void closeStream(old).then(() => this.cycle());
    } else if (last !== undefined) {
      this.queue[this.queue.length - 1]!.push(last);
      this.queued += Buffer.byteLength(last);
    }
    if (this.queue.length > 1 || this.queue[0]!.length > 0) this.queue.push([]);
    this.bytes = 0;
    this.frames = 0;
    this.dropped = 0;
    this.skipped = 0;
    this.start(connection);
  }

  /** Shifts the files and writes each waiting segment to a new file, the last one staying open. */
  private async cycle(): Promise<void> {
    try {
      for (;;) {
        const queue = this.queue!;
        await this.shiftFiles();
        const segment = queue.shift()!;
        const stream = this.open();
        if (segment.length > 0) stream.write(segment.join(''));
        if (queue.length === 0) {
          this.queue = undefined;
          this.queued = 0;
          this.out = stream;
          break;
        }
        this.queued -= segment.reduce((sum, line) => sum + Buffer.byteLength(line), 0);
        await closeStream(stream);
      }
    } catch (err) {
      this.error ??= err instanceof Error ? err : new Error(String(err));
      this.queue = undefined;
      this.queued = 0;
    }
    if (this.closing) this.finish();
  }

  private async shiftFiles(): Promise<void> {
    const path = this.path!;
    const keep = this.settings.maxFiles - 1;
    if (keep === 0) return;
    await rm(`${path}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) await rename(`${path}.${i}`, `${path}.${i + 1}`).catch(ignoreMissing);
    await rename(path, `${path}.1`).catch(ignoreMissing);
  }

  /** Writes the summary (if any) and closes the file, or ends the stream. */
  private finish(): void {
    const out = this.out;
    if (out !== undefined && this.error === undefined) {
      const last = this.summary();
      if (last !== undefined) out.write(last);
    }
    this.out = undefined;
    if (out !== undefined) out.end();
    this.onClosed();
  }
}

/** Ends a stream and resolves once it has closed (its file descriptor released). */
function closeStream(stream: RecordStream): Promise<void> {
  return new Promise<void>((done) => {
    (stream as unknown as Writable).once('close', () => done());
    stream.end();
  });
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

/**
 * Open file sinks by resolved path. Weak: a proxy that never ran (its upstream handshake failed)
 * neither ends nor destroys its stages, and their sink must not outlive them here.
 */
const files = new Map<string, WeakRef<LineSink>>();
const forget = new FinalizationRegistry<string>((key) => {
  if (files.get(key)?.deref() === undefined) files.delete(key);
});
const streams = new WeakMap<RecordStream, LineSink>();

/**
 * The sink of a file path, shared by every stage that names it while one of them is attached. The
 * first stage's settings are the file's.
 *
 * @param path - the file's path
 * @param settings - bounds and policy
 */
export function fileSink(path: string, settings: LineSinkSettings): LineSink {
  const key = resolve(path);
  let sink = files.get(key)?.deref();
  if (sink === undefined) {
    const made: LineSink = new LineSink(key, undefined, settings, () => {
      if (files.get(key)?.deref() === made) files.delete(key);
    });
    sink = made;
    files.set(key, new WeakRef(made));
    forget.register(made, key);
  }
  return sink;
}

/** Paths with a live file sink (for tests). @internal */
export function openFileSinks(): number {
  return files.size;
}

/**
 * The sink of a stream, shared by every stage given it for the stream's life (so that it gets one
 * header, and one set of bounds).
 *
 * @param stream - the stream
 * @param settings - bounds and policy, from the first stage
 */
export function streamSink(stream: RecordStream, settings: LineSinkSettings): LineSink {
  let sink = streams.get(stream);
  if (sink === undefined) {
    sink = new LineSink(undefined, stream, settings, () => undefined);
    streams.set(stream, sink);
  }
  return sink;
}
