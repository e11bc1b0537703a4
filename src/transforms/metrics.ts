/**
 * `metrics()`: Prometheus counters of frames, bytes, message sizes and closes on a prom-client
 * registry, frames passed on unchanged.
 *
 * prom-client is an optional peer dependency: it is loaded when the first stage is made, not when
 * this module is imported, and none of its types appear in ours.
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import type { Frame, FrameType } from '../frame.js';
import { FrameStage, type StageOptions } from './stage.js';

/**
 * What {@link metrics} needs of a registry; a prom-client `Registry` (or its default `register`)
 * fits. The metrics are created with `registers: [registry]`, which calls `registerMetric`.
 */
export interface MetricsRegistry {
  /** The metric registered under `name`, or undefined. */
  getSingleMetric(name: string): unknown;
  /** Registers a metric; throws if another one has its name. */
  registerMetric(metric: object): void;
}

/** Options of {@link metrics}. */
export interface MetricsOptions extends StageOptions {
  /**
   * The registry the metrics are registered on and counted in. Any number of stages and
   * connections share one registry: the metrics are created once per registry and prefix.
   * @defaultValue prom-client's default registry, `register`
   */
  registry?: MetricsRegistry;
  /**
   * Prepended to every metric name.
   * @defaultValue 'ws_proxy_'
   */
  prefix?: string;
}

/** Default {@link MetricsOptions.prefix}. */
export const DEFAULT_METRICS_PREFIX = 'ws_proxy_';

/** Upper bounds of the message size histogram, in bytes: 64 B to 16 MiB by powers of 4. */
export const MESSAGE_SIZE_BUCKETS: readonly number[] = Object.freeze([
  64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
]);

/** Label values of one series. */
type Labels = Record<string, string>;

/** The parts of a prom-client metric used here (typed locally: prom-client is optional). */
interface PromMetric {
  type?: unknown;
  labelNames?: unknown;
  /** Called by prom-client with `this` = the metric before each read (`get()`), sync or async. */
  collect?: (this: unknown) => unknown;
}

interface PromCounter extends PromMetric {
  inc(labels: Labels, value: number): void;
}

interface PromHistogram extends PromMetric {
  labels(...values: string[]): { observe(value: number): void };
}

/** What a prom-client metric is made with. @internal */
export interface MetricConfig {
  name: string;
  help: string;
  labelNames: string[];
  registers: MetricsRegistry[];
  buckets?: number[];
}

/** The parts of the prom-client module used here. @internal */
export interface PromClientModule {
  Counter: new (config: MetricConfig) => PromCounter;
  Histogram: new (config: MetricConfig) => PromHistogram;
  register: MetricsRegistry;
}

const requireHere = createRequire(import.meta.url);
let promClient: PromClientModule | undefined;

/**
 * Loads prom-client synchronously (the factory is synchronous), once.
 *
 * @param load - the loader; a test hands a failing one
 * @throws TypeError telling to install prom-client when it cannot be found
 * @internal
 */
export function requirePromClient(load: (id: string) => unknown = requireHere): PromClientModule {
  if (promClient !== undefined && load === requireHere) return promClient;
  let loaded: PromClientModule;
  try {
    loaded = load('prom-client') as PromClientModule;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'MODULE_NOT_FOUND') {
      throw new TypeError('metrics() needs prom-client, an optional peer dependency: npm install prom-client', { cause: err });
    }
    throw err;
  }
  if (load === requireHere) promClient = loaded;
  return loaded;
}

/** The four metrics' names and labels. */
function specs(prefix: string) {
  return {
    frames: { name: `${prefix}frames_total`, type: 'counter', labelNames: ['from', 'type'] },
    bytes: { name: `${prefix}bytes_total`, type: 'counter', labelNames: ['from', 'type'] },
    sizes: { name: `${prefix}message_size_bytes`, type: 'histogram', labelNames: ['from'] },
    closes: { name: `${prefix}closes_total`, type: 'counter', labelNames: ['from', 'code'] },
  } as const;
}

type Spec = ReturnType<typeof specs>[keyof ReturnType<typeof specs>];

/**
 * Frames and bytes of one (from, type) series: totals counted by the stages, and the part of them
 * already handed to prom-client.
 */
interface Cell {
  readonly labels: Labels;
  frames: number;
  bytes: number;
  sentFrames: number;
  /** -1 until the series was first handed over (so that 0 bytes of pongs still shows). */
  sentBytes: number;
}

const FRAME_TYPES: readonly FrameType[] = ['continuation', 'text', 'binary', 'close', 'ping', 'pong'];

/** The cells of one side, by frame type. */
type Row = Record<string, Cell | undefined>;

/**
 * Wraps a metric's `collect` so that `flush` runs first. prom-client calls `collect` at every read
 * of the metric (`registry.metrics()`, `getMetricsAsJSON()`, cluster aggregation), so deferred
 * counts are always in what is read. A `collect` the metric already had still runs, after.
 */
function flushBeforeCollect(metric: PromMetric, flush: () => void): void {
  const previous = metric.collect;
  metric.collect = function collect(this: unknown): unknown {
    flush();
    return previous?.call(this);
  };
}

/**
 * The metrics of one (registry, prefix), shared by every stage counting in them.
 *
 * Why frames and bytes are deferred: prom-client hashes and validates the labels at every `inc()`,
 * even through a `labels()` child, about 250 ns a call; two calls per frame would be most of this
 * stage's cost. So a frame adds to plain numbers in a {@link Cell} (one per side and frame type,
 * made once, with its labels object), and what is new of them is handed to prom-client when it reads the
 * counters. The histogram has no "add n observations" call, so sizes are observed at once, through
 * a `labels()` child per side; closes are rare and counted at once.
 */
class SharedMetrics {
  private readonly rows = new Map<string, Row>();
  private readonly sizeObservers = new Map<string, { observe(value: number): void }>();

  constructor(
    private readonly names: readonly string[],
    private readonly frames: PromCounter,
    private readonly bytes: PromCounter,
    private readonly sizes: PromHistogram,
    private readonly closes: PromCounter,
  ) {
    flushBeforeCollect(frames, () => this.flushFrames());
    flushBeforeCollect(bytes, () => this.flushBytes());
  }

  /** Whether these metric objects are still the ones registered (a registry may be cleared). */
  isRegisteredOn(registry: MetricsRegistry): boolean {
    const metrics = [this.frames, this.bytes, this.sizes, this.closes];
    return this.names.every((name, i) => registry.getSingleMetric(name) === metrics[i]);
  }

  /** The cells of a side, made on first use. */
  row(from: string): Row {
    let row = this.rows.get(from);
    if (row === undefined) {
      row = {};
      for (const type of FRAME_TYPES) row[type] = { labels: { from, type }, frames: 0, bytes: 0, sentFrames: 0, sentBytes: -1 };
      this.rows.set(from, row);
    }
    return row;
  }

  /** The cell of a frame type that is not one of the six (a stage fed something else). */
  extraCell(row: Row, from: string, type: string): Cell {
    const cell: Cell = { labels: { from, type }, frames: 0, bytes: 0, sentFrames: 0, sentBytes: -1 };
    row[type] = cell;
    return cell;
  }

  /** The histogram child of a side. */
  sizeObserver(from: string): { observe(value: number): void } {
    let observer = this.sizeObservers.get(from);
    if (observer === undefined) {
      observer = this.sizes.labels(from);
      this.sizeObservers.set(from, observer);
    }
    return observer;
  }

  /** Counts a close frame. */
  countClose(from: string, code: number | undefined): void {
    this.closes.inc({ from, code: code === undefined ? 'none' : String(code) }, 1);
  }

  private flushFrames(): void {
    for (const row of this.rows.values()) {
      for (const type in row) {
        const cell = row[type]!;
        if (cell.frames > cell.sentFrames) {
          const value = cell.frames - cell.sentFrames;
          cell.sentFrames = cell.frames;
          this.frames.inc(cell.labels, value);
        }
      }
    }
  }

  private flushBytes(): void {
    for (const row of this.rows.values()) {
      for (const type in row) {
        const cell = row[type]!;
        // A series is listed once it had a frame, even of no bytes, like its frames_total series.
        if (cell.frames > 0 && cell.bytes > cell.sentBytes) {
          const value = cell.bytes - Math.max(cell.sentBytes, 0);
          cell.sentBytes = cell.bytes;
          this.bytes.inc(cell.labels, value);
        }
      }
    }
  }
}

/** Per registry, per prefix. A WeakMap: a registry that is dropped takes its entry with it. */
const shared = new WeakMap<MetricsRegistry, Map<string, SharedMetrics>>();

function sameLabels(actual: unknown, expected: readonly string[]): boolean {
  if (!Array.isArray(actual) || actual.length !== expected.length) return false;
  const sorted = [...(actual as unknown[])].sort();
  return [...expected].sort().every((name, i) => sorted[i] === name);
}

/** The registered metric of `spec`, checked, or undefined when there is none. */
function existing(registry: MetricsRegistry, spec: Spec): PromMetric | undefined {
  const metric = registry.getSingleMetric(spec.name);
  if (metric === undefined || metric === null) return undefined;
  const { type, labelNames } = metric as PromMetric;
  if (type !== spec.type || !sameLabels(labelNames, spec.labelNames)) {
    throw new TypeError(
      `metrics(): the registry already has a metric named ${spec.name} that is not a ${spec.type} with labels ` +
        `${spec.labelNames.join(', ')} (it is a ${String(type)} with labels ${Array.isArray(labelNames) && labelNames.length > 0 ? labelNames.join(', ') : 'none'})`,
    );
  }
  return metric as PromMetric;
}

/** The shared metrics of (registry, prefix): the cached ones, found ones, or new ones. */
function sharedMetrics(prom: PromClientModule, registry: MetricsRegistry, prefix: string): SharedMetrics {
  let byPrefix = shared.get(registry);
  if (byPrefix === undefined) {
    byPrefix = new Map();
    shared.set(registry, byPrefix);
  }
  const cached = byPrefix.get(prefix);
  if (cached !== undefined && cached.isRegisteredOn(registry)) return cached;
  const s = specs(prefix);
  // All four are checked before any is made, so that a conflict leaves the registry as it was.
  const found = [existing(registry, s.frames), existing(registry, s.bytes), existing(registry, s.sizes), existing(registry, s.closes)];
  const registers = [registry];
  const frames = (found[0] as PromCounter | undefined) ?? new prom.Counter({
    name: s.frames.name, labelNames: [...s.frames.labelNames], registers,
    help: 'WebSocket frames that passed the proxy, by the side they came from and frame type.',
  });
  const bytes = (found[1] as PromCounter | undefined) ?? new prom.Counter({
    name: s.bytes.name, labelNames: [...s.bytes.labelNames], registers,
    help: 'Payload bytes of the WebSocket frames that passed the proxy (of a close frame, its reason), by the side they came from and frame type.',
  });
  const sizes = (found[2] as PromHistogram | undefined) ?? new prom.Histogram({
    name: s.sizes.name, labelNames: [...s.sizes.labelNames], registers, buckets: [...MESSAGE_SIZE_BUCKETS],
    help: 'Payload bytes of whole WebSocket data messages (a fragmented message once, all its fragments), by the side they came from.',
  });
  const closes = (found[3] as PromCounter | undefined) ?? new prom.Counter({
    name: s.closes.name, labelNames: [...s.closes.labelNames], registers,
    help: 'Close frames that passed the proxy, by the side they came from and status code ("none" for an empty close).',
  });
  const metrics = new SharedMetrics([s.frames.name, s.bytes.name, s.sizes.name, s.closes.name], frames, bytes, sizes, closes);
  byPrefix.set(prefix, metrics);
  return metrics;
}

const METRIC_PREFIX = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

/**
 * The stage behind {@link metrics}; use the factory.
 */
export class MetricsStage extends FrameStage {
  private readonly metrics: SharedMetrics;
  /** The side the cached row and observer are for (the context may change before the first frame). */
  private from: string | undefined;
  private row: Row = {};
  private sizes: { observe(value: number): void } | undefined;
  /** Bytes so far of the data message in progress. */
  private messageSize = 0;

  /** @param options - see {@link MetricsOptions} */
  constructor(options: MetricsOptions = {}) {
    super(options);
    const prefix = options.prefix ?? DEFAULT_METRICS_PREFIX;
    if (typeof prefix !== 'string' || !METRIC_PREFIX.test(prefix)) {
      throw new TypeError("options.prefix must be a string of letters, digits, '_' and ':' that does not start with a digit");
    }
    const registry = options.registry as Partial<MetricsRegistry> | null | undefined;
    if (registry !== undefined && (typeof registry !== 'object' || registry === null ||
      typeof registry.getSingleMetric !== 'function' || typeof registry.registerMetric !== 'function')) {
      throw new TypeError('options.registry must be a prom-client Registry (an object with getSingleMetric() and registerMetric())');
    }
    const prom = requirePromClient();
    this.metrics = sharedMetrics(prom, options.registry ?? prom.register, prefix);
  }

  /** @internal */
  protected handle(frame: Frame): Frame {
    const from = this.context.role;
    if (from !== this.from) {
      this.from = from;
      this.row = this.metrics.row(from);
      this.sizes = this.metrics.sizeObserver(from);
    }
    const type = frame.type;
    const size = frame.payload.length;
    const cell = this.row[type] ?? this.metrics.extraCell(this.row, from, type);
    cell.frames++;
    cell.bytes += size;
    if (type === 'text' || type === 'binary') {
      this.messageSize = size;
    } else if (type === 'continuation') {
      this.messageSize += size;
    } else {
      if (type === 'close') this.metrics.countClose(from, frame.code);
      return frame;
    }
    // A message is observed once, whole, at its final fragment; control frames between fragments
    // ("MAY be injected in the middle of a fragmented message", RFC 6455 section 5.4) are not part of it.
    if (frame.fin) {
      this.sizes!.observe(this.messageSize);
      this.messageSize = 0;
    }
    return frame;
  }
}

/**
 * A stage that counts the frames passing it in Prometheus metrics on a prom-client registry and
 * passes them on unchanged (the same objects). With the default prefix:
 *
 * - `ws_proxy_frames_total{from, type}` and `ws_proxy_bytes_total{from, type}` (payload bytes; of a
 *   close frame, its reason): counters;
 * - `ws_proxy_message_size_bytes{from}`: histogram of whole data message sizes (a fragmented message
 *   once, its total, at its final fragment), buckets {@link MESSAGE_SIZE_BUCKETS};
 * - `ws_proxy_closes_total{from, code}`: counter of close frames (`code="none"` for an empty close).
 *
 * `from` is the side the frames come from (`StageContext.role`). There is no label per connection:
 * put one stage per direction and per connection (a stage serves one connection), all on one
 * registry; their counts add up. The metrics are created on the registry by the first stage and
 * reused by the next; a metric of the same name but another type or labels is a `TypeError`.
 *
 * Frame and byte counts are handed to prom-client when it reads the registry (see the note on
 * cost in the source), so they are exact at every scrape; `counter.reset()` only drops what was
 * handed over.
 *
 * Needs prom-client (an optional peer dependency), loaded by the first call.
 *
 * ```ts
 * const registry = new Registry(); // prom-client's
 * server.on('upgrade', (req, socket, head) => {
 *   const proxy = new WebSocketProxy({
 *     transforms: { client: [metrics({ registry })], upstream: [metrics({ registry })] },
 *   });
 *   // ... connect and execute
 * });
 * // GET /metrics: res.end(await registry.metrics());
 * ```
 *
 * @param options - the registry and prefix, see {@link MetricsOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError when prom-client is not installed, for an invalid option, or when the registry
 *   has a metric of one of the names that is of another type or has other labels
 */
export function metrics(options?: MetricsOptions): MetricsStage {
  return new MetricsStage(options);
}
