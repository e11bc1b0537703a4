/**
 * Options of `WebSocketProxy`: their types, defaults and validation.
 *
 * @packageDocumentation
 */
import type { Frame, FrameType } from '../frame.js';
import { type PerMessageDeflateSettings, type ResolvedDeflateSettings, resolvePerMessageDeflate } from '../protocol/deflate.js';
import { type Stage, type StageContext, toError } from '../transforms/stage.js';

/** Which side of a proxied connection: the downstream `'client'` or the `'upstream'` server. */
export type ProxyRole = 'client' | 'upstream';

/** What `onFrame` may return: see {@link ProxyOptions.onFrame}. */
export type OnFrameResult = string | Buffer | null | undefined | void | { payload?: string | Buffer; code?: number };

/**
 * The per-frame callback: see {@link ProxyOptions.onFrame}.
 *
 * @typeParam P - the proxy type (the first argument is the proxy itself)
 */
export type OnFrame<P> = (
  proxy: P,
  role: ProxyRole,
  type: FrameType,
  payload: Buffer,
  fin: boolean,
  code: number | undefined,
) => OnFrameResult | Promise<OnFrameResult>;

/**
 * What a {@link FrameObserver} answers for a frame: nothing (the common case: it goes on as it is,
 * at once), or a promise of the frame to go on with (null: none, the frame is dropped).
 * @internal
 */
export type ObserveResult = PromiseLike<Frame | null> | undefined;

/**
 * Sees each frame of one direction of one connection at its end (its `Forwarder`, or its `Link` on
 * the direct path), after the direction's stages and before `onFrame`, one frame at a time: the
 * inspector's hook (not public API; see
 * {@link kObserver}). A direction with an observer counts as one with user code: its frames are
 * whole and plain (no cut-through, no compressed pass-through), and its payloads are never handed
 * over to the writer (`ownsPayloads`), so that no payload an observer reads or keeps is masked in
 * place. A throw (or a rejection) detaches the observer from the direction: the frame, and those
 * after it, go on unobserved.
 * @internal
 */
export interface FrameObserver {
  /**
   * Sees a frame.
   *
   * @param frame - the frame
   * @param from - the side that sent it (one object may observe both directions of a connection)
   */
  observe(frame: Frame, from: ProxyRole): ObserveResult;
}

/** What holds an observer for a direction (its `Forwarder` or its `Link`). @internal */
export interface ObserverHolder {
  /** The observer failed (what it threw or rejected with, as an Error): it is detached from the direction, which goes on without it. */
  detachObserver(err: Error): void;
}

/**
 * Shows a frame to a direction's observer: undefined when the frame goes on at once (also when the
 * observer threw: it is then detached), or a promise of what goes on (null: dropped). A rejection
 * detaches it too, and the frame goes on as it was.
 *
 * @param holder - the direction's end, told when the observer fails
 * @param observer - the observer
 * @param frame - the frame
 * @param from - the side that sent it
 * @internal
 */
export function observeFrame(holder: ObserverHolder, observer: FrameObserver, frame: Frame, from: ProxyRole): PromiseLike<Frame | null> | undefined {
  let held: ObserveResult;
  try {
    held = observer.observe(frame, from);
  } catch (err) {
    holder.detachObserver(toError(err));
    return undefined;
  }
  if (held === undefined) return undefined;
  return held.then(undefined, (err: unknown) => {
    holder.detachObserver(toError(err));
    return frame;
  });
}

/** Makes the observer of one direction of a new connection, or none. @internal */
export type ObserverFactory = (context: StageContext) => FrameObserver | undefined;

/**
 * The key of the internal option that gives a proxy its {@link ObserverFactory} (`ProxyServer` sets
 * it on the options it builds, see `addObserver()`): a symbol, so that it is not one of the options
 * a user sees or types.
 * @internal
 */
export const kObserver: unique symbol = Symbol('observer');

/** Something with pino's logging methods; each takes a message string. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * The stages of one direction: an array of stages, or a function called once per proxy (with the
 * direction's context) that returns them. A stage instance carries one connection's frames: an array
 * hoisted out of the upgrade handler can serve one proxy only, a function serves any number.
 */
export type StageList = readonly Stage[] | ((context: StageContext) => readonly Stage[]);

/** Stream stages a user adds to a direction, after aggregation and before `onFrame`. */
export interface ProxyTransforms {
  /** Stages for frames from the client, toward the upstream. */
  client?: StageList;
  /** Stages for frames from the upstream, toward the client. */
  upstream?: StageList;
}

/** Options of `WebSocketProxy` (camelCase port of lua-resty-websocket-proxy's `new(opts)`). */
export interface ProxyOptions<P = unknown> {
  /**
   * Assemble fragmented messages before `onFrame` and the transforms see them: each message is
   * forwarded as one frame of its first fragment's type with FIN set, and control frames interleaved
   * in it are forwarded at once. The size limits then apply to whole messages.
   * @defaultValue false
   */
  aggregateFragments?: boolean;
  /**
   * Called for every frame about to be forwarded (whole messages when aggregating), in order per
   * direction, sync or async: `onFrame(proxy, role, type, payload, fin, code)`. `role` is the side the
   * frame came from; for close frames `payload` is the reason and `code` the status (undefined for an
   * empty close). Return a string or Buffer to forward that payload (type and FIN kept), `null` or
   * `undefined` to drop the frame, or `{ payload?, code? }` to replace the payload and, for a close
   * frame, the code. A close frame cannot be dropped (it is forwarded unchanged, with a warning). A
   * throw or a rejected promise closes both sides with 1011 and makes `execute()` reject with it.
   * @defaultValue undefined (every frame is forwarded unchanged)
   */
  onFrame?: OnFrame<P>;
  /**
   * Extra stream stages per direction (object-mode `Transform`s or `Duplex`es of `Frame`, from
   * readable-stream or `node:stream`), run after aggregation and before `onFrame`, in order: per
   * direction an array, or a function `(ctx) => stages` called once per proxy. A stage instance
   * already used by another proxy is refused (`TypeError`). Each stage is handed its context
   * (`role`, `id`, `proxy`) before the first frame (see `kStageContext`). A stage that fails with a
   * `WebSocketProxyError` whose `closeCode` is 1007, 1008 or 1009 closes the side the frame came from
   * with that code and its peer with 1001; any other failure (a throw, also a synchronous one in
   * `transform()`, a rejection, an early end) closes both sides with 1011.
   * @defaultValue none
   */
  transforms?: ProxyTransforms;
  /**
   * Most bytes of frames injected with `send()` that may wait for one side (held behind a forwarded
   * fragmented message, or not yet handed to its socket); past it `send()` throws
   * `WSP_ERR_SEND_QUEUE_FULL`. `send()` returns false well before, as soon as that side is full.
   * @defaultValue 16 MiB (16777216)
   */
  maxSendQueueSize?: number;
  /**
   * Largest payload of one client frame, or of one whole client message when aggregating, checked
   * before it is buffered; over it the client is sent 1009 "Payload Too Large" and the upstream 1001.
   * @defaultValue 1 MiB (1048576)
   */
  clientMaxFrameSize?: number;
  /**
   * Same as `clientMaxFrameSize`, for frames from the upstream.
   * @defaultValue 16 MiB (16777216)
   */
  upstreamMaxFrameSize?: number;
  /**
   * Most fragments in one client message (with or without aggregation); one more is answered as for
   * `clientMaxFrameSize`.
   * @defaultValue 16384
   */
  clientMaxFragments?: number;
  /**
   * Same as `clientMaxFragments`, for messages from the upstream.
   * @defaultValue 16384
   */
  upstreamMaxFragments?: number;
  /**
   * Milliseconds without a frame from a side after which a line is logged
   * (`timeout receiving frame from <role>, reopening`); never closes anything, as in the seed library.
   * @defaultValue undefined (off)
   */
  recvTimeout?: number;
  /**
   * Milliseconds without a frame in either direction after which both sides are closed with 1001.
   * @defaultValue undefined (off)
   */
  idleTimeout?: number;
  /**
   * Milliseconds a side may accept no bytes while frames wait for it before it is treated as gone
   * (its peer is sent 1001, `WSP_ERR_SEND_TIMEOUT`).
   * @defaultValue undefined (off)
   */
  sendTimeout?: number;
  /**
   * Keepalive: milliseconds a side may send the proxy nothing (no frame of any kind) before the proxy
   * sends it a ping of its own, while the connection is open (after `execute()`, before any close
   * frame). A number applies to both sides; `{ client, upstream }` sets each side (a side left out is
   * not pinged). The ping goes through the side's send queue, in order with other frames (a control
   * frame, it may go inside a fragmented message). Its pong is consumed by the proxy as soon as it is
   * read: no stage, `onFrame`, peer, summary count or `idleTimeout` sees it. Any other pong is
   * forwarded as before. A side that then sends nothing at all for `pongTimeout` is treated as gone:
   * see {@link ProxyOptions.pongTimeout}.
   * @defaultValue undefined (no keepalive pings)
   */
  pingInterval?: number | { client?: number; upstream?: number };
  /**
   * Keepalive: milliseconds a side pinged by the proxy (see {@link ProxyOptions.pingInterval}) may
   * send nothing at all before it is treated as gone: its socket is destroyed, its peer is sent 1001,
   * and the summary says `error` `WSP_ERR_KEEPALIVE_TIMEOUT`, `closedBy` that side, its `aborted`
   * true. Any byte from the side (its pong, any frame, part of a frame) proves it alive. The time
   * counts from when the ping was handed to the side's socket (a ping held behind frames the side does
   * not take is `sendTimeout`'s business), and only while the proxy reads that side: while its frames
   * wait for a slow peer (backpressure) its pong cannot be read, and the wait starts over once reading
   * resumes. A number applies to both sides, `{ client, upstream }` to each; no effect on a side that
   * is not pinged.
   * @defaultValue the side's `pingInterval`
   */
  pongTimeout?: number | { client?: number; upstream?: number };
  /**
   * Milliseconds the upstream connection (TCP, TLS and handshake) may take.
   * @defaultValue 60000
   */
  connectTimeout?: number;
  /**
   * Most milliseconds to keep relaying after a close frame was sent to a side, waiting for its close
   * reply; then both connections are ended.
   * @defaultValue 30000
   */
  lingeringTime?: number;
  /**
   * Most milliseconds to wait for each next frame from a side that was sent a close frame (and for a
   * server's TCP close after the close handshake), and for the close reply of the peer of a side
   * that broke the protocol, a limit or a stage's policy before that side is sent its close (its
   * peer's frames until then still reach it); must be less than `lingeringTime`.
   * @defaultValue 5000
   */
  lingeringTimeout?: number;
  /**
   * Validate text messages as UTF-8 (1007 on failure) on both sides.
   * @defaultValue true
   */
  validateUtf8?: boolean;
  /**
   * permessage-deflate (RFC 7692) on both hops. With `true` or settings, `connect()` offers it to the
   * upstream when the client offered it, then answers the client with the upstream's parameters
   * where the client's offer allows; `connectUpstream()` offers it and `connectClient()` answers
   * offers on their own. A direction whose two hops both compress, with compatible parameters and
   * no `onFrame` or stage on it, relays compressed frames untouched (no zlib work; `aggregateFragments`
   * does not prevent it, and the size limits then count compressed bytes). Otherwise the proxy
   * inflates what a compressing side sends (stages and `onFrame` always see plain payloads; the
   * inflated message is held to the side's `*MaxFrameSize`, 1009 past it) and compresses what goes
   * to a compressing side (messages from `threshold` bytes). Frames the proxy makes itself (`send()`,
   * pings, closes) go uncompressed. `false` offers and answers nothing, and an upstream that
   * answers permessage-deflate anyway is refused.
   * @defaultValue true
   */
  perMessageDeflate?: boolean | PerMessageDeflateSettings;
  /**
   * Log one debug line per frame (direction, type, size, fin, code, the first payload bytes) and the
   * handshake and close events.
   * @defaultValue false
   */
  debug?: boolean;
  /**
   * Where log lines go: any object with pino's `debug`/`info`/`warn`/`error` methods.
   * @defaultValue `util.debuglog('ws-frame-proxy')` for every level (`NODE_DEBUG=ws-frame-proxy` shows them)
   */
  logger?: Logger;
}

/** One value per side of a connection. */
export interface PerSide<T> {
  client: T;
  upstream: T;
}

/** {@link ProxyOptions} with every default applied. */
export interface ResolvedProxyOptions<P> {
  aggregateFragments: boolean;
  onFrame: OnFrame<P> | undefined;
  transforms: { client: StageList; upstream: StageList };
  maxSendQueueSize: number;
  clientMaxFrameSize: number;
  upstreamMaxFrameSize: number;
  clientMaxFragments: number;
  upstreamMaxFragments: number;
  recvTimeout: number | undefined;
  idleTimeout: number | undefined;
  sendTimeout: number | undefined;
  /** Per side: the keepalive ping interval, or undefined for none. */
  pingInterval: PerSide<number | undefined>;
  /** Per side: the keepalive pong timeout (the side's ping interval by default). */
  pongTimeout: PerSide<number | undefined>;
  connectTimeout: number;
  lingeringTime: number;
  lingeringTimeout: number;
  validateUtf8: boolean;
  /** The permessage-deflate settings, or false for none. */
  perMessageDeflate: ResolvedDeflateSettings | false;
  debug: boolean;
  logger: Logger;
  /** The internal observer factory ({@link kObserver}), if any. */
  observer: ObserverFactory | undefined;
}

/** Defaults of the numeric {@link ProxyOptions}. */
export const PROXY_DEFAULTS = {
  clientMaxFrameSize: 1024 * 1024,
  upstreamMaxFrameSize: 16 * 1024 * 1024,
  clientMaxFragments: 16384,
  upstreamMaxFragments: 16384,
  connectTimeout: 60000,
  lingeringTime: 30000,
  lingeringTimeout: 5000,
  maxSendQueueSize: 16 * 1024 * 1024,
} as const;

/**
 * Tells whether a value is usable as a stage: a stream that can be written to and piped from.
 *
 * @param value - anything
 */
export function isStage(value: unknown): value is Stage {
  return (
    typeof value === 'object' && value !== null &&
    typeof (value as { pipe?: unknown }).pipe === 'function' &&
    typeof (value as { write?: unknown }).write === 'function'
  );
}

function limit(options: Record<string, unknown>, name: string, fallback: number): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 1) {
    throw new TypeError(`options.${name} must be a number >= 1`);
  }
  return value;
}

function duration(options: Record<string, unknown>, name: string): number | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value >= 0) || value === Infinity) {
    throw new TypeError(`options.${name} must be a number >= 0`);
  }
  return value;
}

function positive(value: unknown, name: string): number {
  if (typeof value !== 'number' || !(value > 0) || value === Infinity) {
    throw new TypeError(`options.${name} must be a number > 0`);
  }
  return value;
}

/** A per-side duration: a number for both sides, or `{ client?, upstream? }`. */
function perSide(options: Record<string, unknown>, name: string): PerSide<number | undefined> {
  const value = options[name];
  if (value === undefined) return { client: undefined, upstream: undefined };
  if (typeof value === 'number') {
    const both = positive(value, name);
    return { client: both, upstream: both };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`options.${name} must be a number > 0 or an object { client?, upstream? }`);
  }
  const sides = value as Record<string, unknown>;
  // A misspelt side would silently turn keepalive off for it.
  for (const key of Object.keys(sides)) {
    if (key !== 'client' && key !== 'upstream') {
      throw new TypeError(`options.${name} has an unknown key "${key}" (expected client and/or upstream)`);
    }
  }
  return {
    client: sides.client === undefined ? undefined : positive(sides.client, `${name}.client`),
    upstream: sides.upstream === undefined ? undefined : positive(sides.upstream, `${name}.upstream`),
  };
}

function stages(value: unknown, name: string): StageList {
  if (value === undefined) return [];
  if (typeof value === 'function') return value as StageList;
  checkStageArray(value, `options.transforms.${name}`);
  return value as readonly Stage[];
}

/**
 * Checks an array of stages.
 *
 * @param value - what was given
 * @param name - how to name it in the error
 * @throws TypeError unless it is an array of streams
 */
export function checkStageArray(value: unknown, name: string): asserts value is readonly Stage[] {
  if (!Array.isArray(value) || !value.every(isStage)) {
    throw new TypeError(`${name} must be an array of Transform or Duplex streams (or a function returning one)`);
  }
}

function isLogger(value: unknown): value is Logger {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return ['debug', 'info', 'warn', 'error'].every((level) => typeof candidate[level] === 'function');
}

/**
 * Validates options and applies defaults.
 *
 * @param input - what the user passed
 * @param defaultLogger - the logger used when none is given
 * @returns the options with defaults
 * @throws TypeError with a message naming the option, e.g. "options.onFrame must be a function"
 */
export function resolveOptions<P>(input: ProxyOptions<P> | undefined, defaultLogger: Logger): ResolvedProxyOptions<P> {
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object') throw new TypeError('options must be an object');
  const options = input as Record<string, unknown>;
  if (options.onFrame !== undefined && typeof options.onFrame !== 'function') {
    throw new TypeError('options.onFrame must be a function');
  }
  if (options.logger !== undefined && !isLogger(options.logger)) {
    throw new TypeError('options.logger must have debug, info, warn and error methods');
  }
  const transforms = options.transforms;
  if (transforms !== undefined && (typeof transforms !== 'object' || transforms === null)) {
    throw new TypeError('options.transforms must be an object');
  }
  const recvTimeout = duration(options, 'recvTimeout');
  const idleTimeout = duration(options, 'idleTimeout');
  const sendTimeout = duration(options, 'sendTimeout');
  const connectTimeout = duration(options, 'connectTimeout') ?? PROXY_DEFAULTS.connectTimeout;
  const lingeringTime = duration(options, 'lingeringTime') ?? PROXY_DEFAULTS.lingeringTime;
  const lingeringTimeout = duration(options, 'lingeringTimeout') ?? PROXY_DEFAULTS.lingeringTimeout;
  if (lingeringTime <= lingeringTimeout) {
    throw new TypeError('options.lingeringTime must be > options.lingeringTimeout');
  }
  const observer = (input as { [kObserver]?: unknown })[kObserver];
  if (observer !== undefined && typeof observer !== 'function') throw new TypeError('the internal observer option must be a function');
  const pingInterval = perSide(options, 'pingInterval');
  const pongTimeout = perSide(options, 'pongTimeout');
  const userStages = (transforms ?? {}) as Record<string, unknown>;
  return {
    aggregateFragments: Boolean(options.aggregateFragments),
    onFrame: input.onFrame,
    transforms: { client: stages(userStages.client, 'client'), upstream: stages(userStages.upstream, 'upstream') },
    maxSendQueueSize: limit(options, 'maxSendQueueSize', PROXY_DEFAULTS.maxSendQueueSize),
    clientMaxFrameSize: limit(options, 'clientMaxFrameSize', PROXY_DEFAULTS.clientMaxFrameSize),
    upstreamMaxFrameSize: limit(options, 'upstreamMaxFrameSize', PROXY_DEFAULTS.upstreamMaxFrameSize),
    clientMaxFragments: limit(options, 'clientMaxFragments', PROXY_DEFAULTS.clientMaxFragments),
    upstreamMaxFragments: limit(options, 'upstreamMaxFragments', PROXY_DEFAULTS.upstreamMaxFragments),
    recvTimeout,
    idleTimeout,
    sendTimeout,
    pingInterval,
    pongTimeout: {
      client: pongTimeout.client ?? pingInterval.client,
      upstream: pongTimeout.upstream ?? pingInterval.upstream,
    },
    connectTimeout,
    lingeringTime,
    lingeringTimeout,
    validateUtf8: options.validateUtf8 === undefined ? true : Boolean(options.validateUtf8),
    perMessageDeflate: resolvePerMessageDeflate(options.perMessageDeflate),
    debug: Boolean(options.debug),
    logger: input.logger ?? defaultLogger,
    observer: observer as ObserverFactory | undefined,
  };
}

/** The frame a `Frame` becomes after `onFrame` returned `result`, or null to drop it. */
export function applyOnFrameResult(frame: Frame, result: OnFrameResult): Frame | null {
  if (result === null || result === undefined) return null;
  if (typeof result === 'string' || Buffer.isBuffer(result)) {
    const payload = typeof result === 'string' ? Buffer.from(result) : result;
    return payload === frame.payload ? frame : { ...frame, payload };
  }
  if (typeof result === 'object') {
    const { payload, code } = result;
    if (payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload)) {
      throw new TypeError('options.onFrame return value payload must be a string or a Buffer');
    }
    if (code !== undefined && (typeof code !== 'number' || !Number.isInteger(code))) {
      throw new TypeError('options.onFrame return value code must be an integer');
    }
    const out: Frame = { ...frame };
    if (payload !== undefined) out.payload = typeof payload === 'string' ? Buffer.from(payload) : payload;
    if (code !== undefined && frame.type === 'close') out.code = code;
    return out;
  }
  throw new TypeError('options.onFrame return value must be a string, a Buffer, null, undefined or { payload, code }');
}
