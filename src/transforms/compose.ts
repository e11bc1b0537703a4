/**
 * `compose()`: several stages as one, usable wherever a stage is.
 *
 * @packageDocumentation
 */
import type { Duplex as NodeDuplex } from 'node:stream';
import { Duplex, PassThrough, finished, pipeline } from 'readable-stream';
import type { Frame } from '../frame.js';
import { type ContextualStage, STANDALONE_CONTEXT, type Stage, type StageContext, kStageContext, setStageContext } from './stage.js';

/** Whether `value` can be a stage: a stream with both a readable and a writable side. */
function isStream(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return ['pipe', 'write', 'end', 'on', 'pause', 'resume', 'destroy'].every((name) => typeof candidate[name] === 'function');
}

/**
 * The stage behind {@link compose}; use the factory.
 *
 * Frames written to it go to the first inner stage; what the last one emits is read from it. Its
 * own queues add at most one frame on each side to the inner stages' (see `_write` and `_read`).
 */
export class ComposedStage extends Duplex implements ContextualStage {
  /** The inner stages, in order (a single `PassThrough` for `compose()`). */
  readonly stages: readonly Stage[];
  private readonly head: NodeDuplex;
  private readonly tail: NodeDuplex;
  private stageContext: StageContext = STANDALONE_CONTEXT;

  /** @param stages - see {@link compose} */
  constructor(stages: readonly Stage[]) {
    stages.forEach((stage, i) => {
      if (!isStream(stage)) throw new TypeError(`stages[${i}] must be a Duplex stream of Frames`);
      const { readableObjectMode, writableObjectMode } = stage as { readableObjectMode?: unknown; writableObjectMode?: unknown };
      if (readableObjectMode === false || writableObjectMode === false) {
        throw new TypeError(`stages[${i}] must be an object-mode stream`);
      }
      const first = stages.indexOf(stage);
      if (first !== i) throw new TypeError(`stages[${i}] is stages[${first}] again: a stage instance serves one place`);
    });
    // Writable side: 2, because write() returns `length < highWaterMark` counting the frame being
    // handed to the head, so with 1 every write would return false; one frame waits at most.
    // Readable side: 1, as the tail is paused as soon as one frame waits for a reader.
    super({ objectMode: true, writableHighWaterMark: 2, readableHighWaterMark: 1 });
    const inner: Stage[] = stages.length === 0 ? [new PassThrough({ objectMode: true, highWaterMark: 1 })] : [...stages];
    this.stages = Object.freeze(inner);
    this.head = inner[0] as NodeDuplex;
    this.tail = inner[inner.length - 1] as NodeDuplex;

    // Any inner failure fails the composite, which destroys every inner stage (see _destroy).
    const fail = (error: Error | null | undefined): void => {
      if (error) this.destroy(error);
    };
    for (const stage of inner) (stage as NodeDuplex).on('error', fail);
    // pipeline() links the inner stages with backpressure and tells when one of them ends early
    // (a premature close is an error too); finished() does the same for the tail's readable side.
    if (inner.length > 1) pipeline(inner as unknown as NodeJS.ReadWriteStream[], fail);
    finished(this.tail as unknown as NodeJS.ReadableStream, fail);

    this.tail.on('data', (frame: Frame) => {
      if (!this.push(frame)) this.tail.pause();
    });
    this.tail.once('end', () => this.push(null));
  }

  /** The context handed to the inner stages (see {@link kStageContext}). */
  get context(): StageContext {
    return this.stageContext;
  }

  /** Hands the context to every inner stage, nested composites included. */
  [kStageContext](context: StageContext): void {
    this.stageContext = context;
    for (const stage of this.stages) setStageContext(stage, context);
  }

  /** @internal */
  override _write(frame: Frame, _encoding: string, callback: (error?: Error | null) => void): void {
    // The frame is accepted by the head either way; when the head is full, the next frame waits
    // here (and write() returns false) until it drains.
    if (this.head.write(frame)) callback();
    else this.head.once('drain', () => callback());
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    this.head.end();
    callback();
  }

  /** @internal */
  override _read(): void {
    this.tail.resume();
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    for (const stage of this.stages) {
      if (!stage.destroyed) stage.destroy(error ?? undefined);
    }
    callback(error);
  }
}

/**
 * One stage made of several, in order: frames written to it go through each inner stage and come
 * out of the last. Use it wherever a stage goes (a proxy's `transforms`, `pipeline()`, another
 * `compose()`), to ship a reusable chain as a single stage.
 *
 * - Inner stages are object-mode `Duplex` streams of `readable-stream` or `node:stream`, e.g.
 *   ready stages, `Transform`s, or `Duplex.from(async function* (frames) { ... })`.
 * - The context a proxy hands the composite (see {@link kStageContext}) is handed to each inner stage.
 * - Backpressure holds through it: when the inner chain is full, `write()` returns false.
 * - An error of any inner stage (or one ending early) destroys the others and fails the composite
 *   with that error; destroying the composite destroys the inner stages; ending it ends the first
 *   inner stage, and the composite ends once the last one does.
 * - `compose()` with no stage is a pass-through. A stage instance may appear only once.
 *
 * ```ts
 * const sanitize = compose(
 *   filter((frame) => frame.type !== 'binary'),
 *   mapText((text) => text.replaceAll(/\d{16}/g, '****')),
 * );
 * new WebSocketProxy({ transforms: { client: [sanitize] } });
 * ```
 *
 * @param stages - the inner stages, in order; each serves this composite only
 * @returns an object-mode `Duplex` of `Frame`
 * @throws TypeError when an argument is not an object-mode stream, or is given twice
 */
export function compose(...stages: Stage[]): ComposedStage {
  return new ComposedStage(stages);
}
