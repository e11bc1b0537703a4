/**
 * permessage-deflate (RFC 7692) for one hop: the `perMessageDeflate` option and its validation, the
 * parameters a hop negotiated, whether two hops can relay compressed frames untouched, and a
 * per-hop {@link MessageInflater} / {@link MessageDeflater} on top of `ws`'s `PerMessageDeflate`
 * (the zlib framing, the 0x00 0x00 0xff 0xff trailer and context takeover are ws's).
 *
 * Memory per hop, from zlib's own figures (zconf.h): a deflate stream costs
 * 2^(windowBits+2) + 2^(memLevel+9) bytes and an inflate stream 2^windowBits + about 7 KiB. A hop
 * holds at most one of each, created on first use. With the defaults (our window 12 bits, memLevel
 * 5, the peer asked for 12 bits) that is 16 + 16 + 4 + 7 = 43 KiB; when the peer's window cannot be
 * bounded (a client that does not offer `client_max_window_bits`, an upstream that ignores
 * `server_max_window_bits`) its inflate window is 32 KiB and the hop costs 71 KiB. zlib also holds
 * an output buffer (16 KiB) while a call runs. See {@link zlibMemory}.
 *
 * @packageDocumentation
 */
import { WebSocketProxyError } from '../errors.js';
import { type WsDeflateError, type WsPerMessageDeflate, wsDeflate } from './ws-deflate.js';
import { type ZlibLimiter, sharedZlibLimiter } from './zlib-limiter.js';

/**
 * The settings of permessage-deflate, in RFC 7692 terms: "server" is the server of a hop (the proxy
 * toward its clients, the upstream toward the proxy), "client" its client. So
 * `serverMaxWindowBits` bounds what travels from the upstream to the clients on both hops, and
 * `clientMaxWindowBits` what travels from the clients to the upstream.
 */
export interface PerMessageDeflateSettings {
  /**
   * Ask that servers compress each message on its own (no LZ77 window kept between messages):
   * required of the upstream in the offer, and announced to clients. Costs compression ratio,
   * saves nothing on memory (zlib streams are reset, not freed). A client that asks for it gets it
   * whatever this says.
   * @defaultValue false
   */
  serverNoContextTakeover?: boolean;
  /**
   * Ask that clients compress each message on its own: required of clients in the answer, and
   * announced to the upstream for the proxy's own compression. An upstream that asks for it gets it
   * whatever this says.
   * @defaultValue false
   */
  clientNoContextTakeover?: boolean;
  /**
   * Largest LZ77 window of a server's compressor, as a base-2 logarithm, 8 to 15: the window the
   * proxy compresses with toward clients (announced as `server_max_window_bits`), and the one it asks
   * of the upstream. A client asking for less gets less.
   * @defaultValue 12 (4 KiB window: 16 KiB of deflate state, 4 KiB of inflate window)
   */
  serverMaxWindowBits?: number;
  /**
   * Largest LZ77 window of a client's compressor, 8 to 15: asked of clients that offer
   * `client_max_window_bits` (one that does not may use 15, and the proxy then inflates with a
   * 32 KiB window), and used by the proxy when it compresses toward the upstream.
   * @defaultValue 12
   */
  clientMaxWindowBits?: number;
  /**
   * zlib memLevel of the proxy's compressors, 1 to 9: its hash table costs 2^(memLevel+9) bytes.
   * @defaultValue 5 (16 KiB)
   */
  memLevel?: number;
  /**
   * Messages whose first fragment is shorter than this many bytes are sent uncompressed when the
   * proxy compresses (see {@link MessageDeflater.threshold}).
   * @defaultValue 1024
   */
  threshold?: number;
  /**
   * Most zlib calls (inflate or deflate) running at once in the whole process, for every
   * connection using the same value; the others wait in FIFO order. `ws`'s own process-wide limit
   * (10 unless the first `ws` user said otherwise) applies underneath.
   * @defaultValue 10
   */
  concurrencyLimit?: number;
}

/**
 * The `perMessageDeflate` option: `false` offers and accepts nothing, `true` uses the default
 * {@link PerMessageDeflateSettings}, an object overrides some of them.
 */
export type PerMessageDeflateOption = boolean | PerMessageDeflateSettings;

/** {@link PerMessageDeflateSettings} after validation, every field set. */
export interface ResolvedDeflateSettings {
  /** See {@link PerMessageDeflateSettings.serverNoContextTakeover}. */
  readonly serverNoContextTakeover: boolean;
  /** See {@link PerMessageDeflateSettings.clientNoContextTakeover}. */
  readonly clientNoContextTakeover: boolean;
  /** See {@link PerMessageDeflateSettings.serverMaxWindowBits}. */
  readonly serverMaxWindowBits: number;
  /** See {@link PerMessageDeflateSettings.clientMaxWindowBits}. */
  readonly clientMaxWindowBits: number;
  /** See {@link PerMessageDeflateSettings.memLevel}. */
  readonly memLevel: number;
  /** See {@link PerMessageDeflateSettings.threshold}. */
  readonly threshold: number;
  /** See {@link PerMessageDeflateSettings.concurrencyLimit}. */
  readonly concurrencyLimit: number;
  /** The process-wide limiter for `concurrencyLimit`. */
  readonly limiter: ZlibLimiter;
}

/** The defaults of {@link PerMessageDeflateSettings}. */
export const DEFLATE_DEFAULTS = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 12,
  clientMaxWindowBits: 12,
  memLevel: 5,
  threshold: 1024,
  concurrencyLimit: 10,
} as const;

const SETTING_NAMES: ReadonlySet<string> = new Set(Object.keys(DEFLATE_DEFAULTS));

function integerIn(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function flag(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`);
  return value;
}

/**
 * Validates a `perMessageDeflate` option.
 *
 * @param value - the option as given; `undefined` means `true`
 * @param name - how the option is named in error messages
 * @returns `false`, or the settings with every default filled in
 * @throws TypeError naming the offending option, e.g. `options.perMessageDeflate.memLevel must be
 *   an integer from 1 to 9`
 */
export function resolvePerMessageDeflate(value: unknown, name = 'options.perMessageDeflate'): ResolvedDeflateSettings | false {
  if (value === false) return false;
  if (value !== undefined && value !== true && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new TypeError(`${name} must be a boolean or an object`);
  }
  const given = (typeof value === 'object' ? value : {}) as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!SETTING_NAMES.has(key)) throw new TypeError(`${name}.${key} is not a permessage-deflate setting`);
  }
  const concurrencyLimit = integerIn(`${name}.concurrencyLimit`, given['concurrencyLimit'], 1, 1024, DEFLATE_DEFAULTS.concurrencyLimit);
  return {
    serverNoContextTakeover: flag(`${name}.serverNoContextTakeover`, given['serverNoContextTakeover']),
    clientNoContextTakeover: flag(`${name}.clientNoContextTakeover`, given['clientNoContextTakeover']),
    // RFC 7692 section 7.1.2.1: "The value ... MUST be an integer in the range of 8 to 15 inclusive."
    serverMaxWindowBits: integerIn(`${name}.serverMaxWindowBits`, given['serverMaxWindowBits'], 8, 15, DEFLATE_DEFAULTS.serverMaxWindowBits),
    clientMaxWindowBits: integerIn(`${name}.clientMaxWindowBits`, given['clientMaxWindowBits'], 8, 15, DEFLATE_DEFAULTS.clientMaxWindowBits),
    memLevel: integerIn(`${name}.memLevel`, given['memLevel'], 1, 9, DEFLATE_DEFAULTS.memLevel),
    threshold: integerIn(`${name}.threshold`, given['threshold'], 0, Number.MAX_SAFE_INTEGER, DEFLATE_DEFAULTS.threshold),
    concurrencyLimit,
    limiter: sharedZlibLimiter(concurrencyLimit),
  };
}

/**
 * Bytes of zlib state for one hop, from zlib's formulas: a compressor with `deflateWindowBits` and
 * `memLevel`, and a decompressor with `inflateWindowBits` (the peer's window).
 *
 * @returns 2^(deflateWindowBits+2) + 2^(memLevel+9) + 2^inflateWindowBits + 7 KiB
 */
export function zlibMemory(deflateWindowBits: number, memLevel: number, inflateWindowBits: number): number {
  return 2 ** (deflateWindowBits + 2) + 2 ** (memLevel + 9) + 2 ** inflateWindowBits + 7 * 1024;
}

/**
 * What one hop negotiated, normalized: a window that was not negotiated is 15 (RFC 7692 sections
 * 7.1.2.1 and 7.1.2.2: without the parameter, up to 32 KiB may be used).
 */
export interface DeflateParameters {
  /** The server of the hop resets its compressor after each message. */
  readonly serverNoContextTakeover: boolean;
  /** The client of the hop resets its compressor after each message. */
  readonly clientNoContextTakeover: boolean;
  /** Largest window the server of the hop compresses with, 8 to 15. */
  readonly serverMaxWindowBits: number;
  /** Largest window the client of the hop compresses with, 8 to 15. */
  readonly clientMaxWindowBits: number;
}

/**
 * Converts parameters as `ws` normalizes them (`server_max_window_bits: 12`, ...) to
 * {@link DeflateParameters}.
 *
 * @internal
 */
export function parametersFromWs(params: Readonly<Record<string, number | true>>): DeflateParameters {
  const window = (value: number | true | undefined): number => (typeof value === 'number' ? value : 15);
  return {
    serverNoContextTakeover: params['server_no_context_takeover'] === true,
    clientNoContextTakeover: params['client_no_context_takeover'] === true,
    serverMaxWindowBits: window(params['server_max_window_bits']),
    clientMaxWindowBits: window(params['client_max_window_bits']),
  };
}

/**
 * Converts {@link DeflateParameters} to the response parameters of a `Sec-WebSocket-Extensions`
 * answer (a window of 15 is left out: it is the default).
 *
 * @internal
 */
export function parametersToWs(params: DeflateParameters): Record<string, number | true> {
  const out: Record<string, number | true> = {};
  if (params.serverNoContextTakeover) out['server_no_context_takeover'] = true;
  if (params.clientNoContextTakeover) out['client_no_context_takeover'] = true;
  if (params.serverMaxWindowBits !== 15) out['server_max_window_bits'] = params.serverMaxWindowBits;
  if (params.clientMaxWindowBits !== 15) out['client_max_window_bits'] = params.clientMaxWindowBits;
  return out;
}

/** Whether two hops negotiated exactly the same parameters. */
export function identicalParameters(a: DeflateParameters, b: DeflateParameters): boolean {
  return a.serverNoContextTakeover === b.serverNoContextTakeover
    && a.clientNoContextTakeover === b.clientNoContextTakeover
    && a.serverMaxWindowBits === b.serverMaxWindowBits
    && a.clientMaxWindowBits === b.clientMaxWindowBits;
}

/**
 * Tells, per direction, whether compressed messages can be relayed byte for byte (RSV1 kept, no
 * zlib work): the receiving peer must be able to inflate what the sending peer produces. That
 * holds when the sender's window is no larger than the one the receiver accepts, and the sender
 * resets its context whenever the receiver does. Identical parameters always qualify.
 *
 * It says nothing of stages: a stage that reads or changes payloads, drops or injects a compressed
 * message, needs the inflate/deflate path whatever this returns.
 *
 * @param clientHop - what the proxy negotiated with its client (the proxy as server)
 * @param upstreamHop - what it negotiated with the upstream (the proxy as client)
 */
export function passThroughDirections(
  clientHop: DeflateParameters,
  upstreamHop: DeflateParameters,
): { clientToUpstream: boolean; upstreamToClient: boolean } {
  return {
    clientToUpstream: clientHop.clientMaxWindowBits <= upstreamHop.clientMaxWindowBits
      && (clientHop.clientNoContextTakeover || !upstreamHop.clientNoContextTakeover),
    upstreamToClient: upstreamHop.serverMaxWindowBits <= clientHop.serverMaxWindowBits
      && (upstreamHop.serverNoContextTakeover || !clientHop.serverNoContextTakeover),
  };
}

/** Options of {@link MessageDeflater} and {@link MessageInflater}. */
export interface DeflateCodecOptions {
  /** What the hop negotiated. */
  parameters: DeflateParameters;
  /**
   * The proxy's role on the hop: `'server'` toward its clients, `'client'` toward the upstream.
   * The deflater compresses with that role's window and context rule, the inflater with the peer's.
   */
  role: 'server' | 'client';
  /**
   * The validated settings (memLevel, our window limit, threshold, limiter).
   * @defaultValue the defaults of {@link PerMessageDeflateSettings}
   */
  settings?: ResolvedDeflateSettings;
}

/** Options of {@link MessageInflater}. */
export interface MessageInflaterOptions extends DeflateCodecOptions {
  /**
   * Most bytes one message may inflate to, counted while zlib produces them: past it the message
   * fails with `WSP_ERR_MESSAGE_TOO_LARGE` (1009) before the rest is inflated.
   * @defaultValue Infinity (no limit)
   */
  maxMessageSize?: number;
}

/** `ws`'s limit on inflated chunks means "no limit" below 1; the smallest real limit is 1 byte. */
const WS_NO_LIMIT = 0;

function closedError(what: string): WebSocketProxyError {
  return new WebSocketProxyError('WSP_ERR_SOCKET_CLOSED', `the ${what} was closed`);
}

/**
 * What the inflater and deflater share: one `ws` `PerMessageDeflate` set to the hop's parameters,
 * calls run one at a time in order (one zlib stream carries the context), through the limiter.
 */
abstract class DeflateCodec {
  protected readonly pmd: WsPerMessageDeflate;
  protected readonly limiter: ZlibLimiter;
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private closed = false;

  constructor(options: DeflateCodecOptions, private readonly what: string) {
    const settings = options.settings ?? defaultSettings();
    const { PerMessageDeflate } = wsDeflate();
    this.limiter = settings.limiter;
    this.pmd = new PerMessageDeflate({
      isServer: options.role === 'server',
      threshold: settings.threshold,
      zlibDeflateOptions: { memLevel: settings.memLevel },
    });
    const params = parametersToWs(options.parameters);
    // Our compressor never uses a larger window than configured, even where the peer would accept
    // 15 (an upstream that answered without client_max_window_bits): a smaller window is always
    // valid (RFC 7692 section 7.1.2.2) and is what bounds our memory.
    const own = options.role === 'server' ? 'server_max_window_bits' : 'client_max_window_bits';
    const limit = options.role === 'server' ? settings.serverMaxWindowBits : settings.clientMaxWindowBits;
    params[own] = Math.min(limit, options.role === 'server'
      ? options.parameters.serverMaxWindowBits
      : options.parameters.clientMaxWindowBits);
    this.pmd.params = params;
  }

  /**
   * Frees the zlib streams; calls made afterwards reject with `WSP_ERR_SOCKET_CLOSED`. Calls made
   * before complete first (ws cannot close a stream in the middle of a call).
   */
  close(): void {
    this.closed = true;
    if (this.pending === 0) this.pmd.cleanup();
  }

  /** Runs `job` after the calls before it, through the limiter. */
  protected serial<T>(job: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(closedError(this.what));
    this.pending += 1;
    const run = this.tail.then(() => this.limiter.run(job));
    const settle = (): void => {
      this.pending -= 1;
      if (this.closed && this.pending === 0) this.pmd.cleanup();
    };
    this.tail = run.then(settle, settle);
    return run;
  }
}

let defaults: ResolvedDeflateSettings | undefined;

function defaultSettings(): ResolvedDeflateSettings {
  defaults ??= resolvePerMessageDeflate(true) as ResolvedDeflateSettings;
  return defaults;
}

/**
 * Inflates the payloads of compressed messages received on one hop (RSV1 set on their first
 * frame), keeping the LZ77 context between messages unless the peer's `*_no_context_takeover` was
 * negotiated.
 */
export class MessageInflater extends DeflateCodec {
  /** See {@link MessageInflaterOptions.maxMessageSize}. */
  readonly maxMessageSize: number;
  private messageLength = 0;
  private failure: WebSocketProxyError | undefined;

  /**
   * @param options - see {@link MessageInflaterOptions}
   * @throws TypeError for an invalid `maxMessageSize`
   */
  constructor(options: MessageInflaterOptions) {
    super(options, 'inflater');
    const max = options.maxMessageSize ?? Infinity;
    if (typeof max !== 'number' || Number.isNaN(max) || max < 0 || (max !== Infinity && !Number.isInteger(max))) {
      throw new TypeError('options.maxMessageSize must be an integer >= 0 or Infinity');
    }
    this.maxMessageSize = max;
  }

  /**
   * Inflates the next compressed bytes of the current message: one frame's payload, or several
   * chunks of it, in order. The inflated size of the whole message is counted while zlib produces
   * it; the message's context ends (and its count restarts) with `fin`. After a failure the
   * inflater is unusable: every later call rejects with the same error.
   *
   * @param chunks - compressed payload bytes, never modified
   * @param fin - true with the last bytes of the message (its FIN frame): the 0x00 0x00 0xff 0xff
   *   tail RFC 7692 section 7.2.2 strips is appended by ws
   * @returns the inflated bytes
   * @throws (rejects) `WSP_ERR_MESSAGE_TOO_LARGE` (1009) past `maxMessageSize`, holding at most
   *   `maxMessageSize` inflated bytes plus one zlib chunk (16 KiB) at that point;
   *   `WSP_ERR_INFLATE_FAILED` (1007) for bytes that are not a valid DEFLATE stream;
   *   `WSP_ERR_SOCKET_CLOSED` after {@link MessageInflater.close}
   */
  inflate(chunks: Buffer | readonly Buffer[], fin: boolean): Promise<Buffer> {
    const list = Buffer.isBuffer(chunks) ? [chunks] : [...chunks];
    return this.serial(() => this.inflateAll(list, fin));
  }

  private async inflateAll(list: Buffer[], fin: boolean): Promise<Buffer> {
    if (this.failure !== undefined) throw this.failure;
    const out: Buffer[] = [];
    let length = 0;
    try {
      if (list.length === 0) list.push(Buffer.alloc(0));
      for (let i = 0; i < list.length; i++) {
        const piece = await this.decompress(list[i]!, fin && i === list.length - 1);
        out.push(piece);
        length += piece.length;
      }
    } catch (err) {
      this.failure = err as WebSocketProxyError;
      throw err;
    }
    if (fin) this.messageLength = 0;
    return out.length === 1 ? out[0]! : Buffer.concat(out, length);
  }

  private decompress(data: Buffer, fin: boolean): Promise<Buffer> {
    const room = this.maxMessageSize - this.messageLength;
    // ws counts each call's inflated chunks against _maxPayload as zlib emits them and stops the
    // stream past it, so the bomb is never held whole. Below 1 it means no limit: an exhausted
    // budget becomes 1 byte, and the check after the call refuses even that one.
    this.pmd._maxPayload = room === Infinity ? WS_NO_LIMIT : Math.max(1, room);
    return new Promise<Buffer>((resolve, reject) => {
      this.pmd.decompress(data, fin, (err: WsDeflateError | null, result?: Buffer) => {
        if (err !== null || result === undefined) {
          reject(err?.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
            ? this.tooLarge()
            : new WebSocketProxyError('WSP_ERR_INFLATE_FAILED', err?.message, { cause: err }));
          return;
        }
        this.messageLength += result.length;
        if (this.messageLength > this.maxMessageSize) {
          reject(this.tooLarge());
          return;
        }
        resolve(result);
      });
    });
  }

  private tooLarge(): WebSocketProxyError {
    return new WebSocketProxyError('WSP_ERR_MESSAGE_TOO_LARGE', `inflated message exceeds ${this.maxMessageSize} bytes`);
  }
}

/**
 * Compresses the payloads of messages sent on one hop, keeping the LZ77 context between messages
 * unless the proxy's own `*_no_context_takeover` was negotiated on that hop.
 */
export class MessageDeflater extends DeflateCodec {
  /**
   * Messages whose first fragment is shorter than this are better sent uncompressed (RSV1 clear);
   * deciding is the caller's, per message, at its first fragment, as the RSV1 bit is.
   */
  readonly threshold: number;

  /** @param options - see {@link DeflateCodecOptions} */
  constructor(options: DeflateCodecOptions) {
    super(options, 'deflater');
    this.threshold = (options.settings ?? defaultSettings()).threshold;
  }

  /**
   * Compresses the next payload of the current message.
   *
   * @param payload - uncompressed bytes, never modified (they must not change until the promise
   *   settles)
   * @param fin - true for the last fragment of the message: the output then lacks the
   *   0x00 0x00 0xff 0xff tail (RFC 7692 section 7.2.1) and the context is reset if negotiated
   * @returns the compressed bytes for one frame (the first one with RSV1 set)
   * @throws (rejects) `WSP_ERR_SOCKET_CLOSED` after {@link MessageDeflater.close}
   */
  deflate(payload: Buffer, fin: boolean): Promise<Buffer> {
    return this.serial(() => new Promise<Buffer>((resolve, reject) => {
      this.pmd.compress(payload, fin, (err: Error | null, result?: Buffer) => {
        if (err !== null || result === undefined) reject(closedError('deflater'));
        else resolve(result);
      });
    }));
  }
}
