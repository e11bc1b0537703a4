/**
 * `log()`: one structured record per frame on a pino-compatible logger, frames passed on unchanged.
 *
 * @packageDocumentation
 */
import type { Frame, FrameType } from '../frame.js';
import type { ProxyRole } from '../proxy/options.js';
import { FrameStage, type StageOptions } from './stage.js';

/** The levels {@link log} may write at: pino's level methods. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** The record {@link log} writes for one frame (the logger's first argument). */
export interface FrameLogRecord {
  /** The connection's id (`StageContext.id`; empty outside a proxy unless given). */
  id: string;
  /** The side the frame came from (`StageContext.role`). */
  from: ProxyRole;
  /** The frame's type. */
  type: FrameType;
  /** The frame's FIN bit. */
  fin: boolean;
  /** Payload bytes (for a close frame, the reason's bytes, without the 2-byte code). */
  size: number;
  /** The status code, on close frames that have one. */
  code?: number;
  /** The reason as text, on close frames only. */
  reason?: string;
  /**
   * The payload, only with `options.payload`: text frames (and continuations of a text message) as a
   * string, any other frame as base64. Absent on close frames (see `reason`).
   */
  payload?: string;
  /** Present (true) when `payload` holds only the first `options.payload` bytes. */
  truncated?: true;
}

/** One pino-style level method: `logger.debug(object, message)`. */
export type FrameLogMethod = (record: FrameLogRecord, message: string) => void;

/**
 * What {@link log} needs of a logger: the method of its level (a pino `Logger` fits, and so does
 * any object with that method). `isLevelEnabled`, when present (pino has it), is asked before each
 * record is built, so a disabled level costs no allocation.
 */
export interface FrameLogger {
  trace?: FrameLogMethod;
  debug?: FrameLogMethod;
  info?: FrameLogMethod;
  warn?: FrameLogMethod;
  error?: FrameLogMethod;
  fatal?: FrameLogMethod;
  isLevelEnabled?(level: string): boolean;
}

/** Options of {@link log}. */
export interface LogOptions extends StageOptions {
  /** The logger; it must have the method of `level`. */
  logger: FrameLogger;
  /**
   * Whether to log payloads: `false` never logs them (they may carry credentials or personal data),
   * `true` logs them whole, a number logs at most that many bytes of each (text cut back to a
   * character boundary, so it may be a few bytes shorter) and sets `truncated: true` when it cut.
   * @defaultValue false
   */
  payload?: boolean | number;
  /**
   * The level of the records. `'debug'`, because a record per frame is trace-volume traffic: at
   * `'info'` it would flood a production log kept at pino's default level; at `'debug'` the stage
   * can stay in a pipeline and be switched on by the logger's level alone (it then costs one
   * `isLevelEnabled` call per frame).
   * @defaultValue 'debug'
   */
  level?: LogLevel;
  /**
   * The message of each record (pino's `msg`).
   * @defaultValue 'frame'
   */
  message?: string;
}

/**
 * Cuts `buffer` to at most `max` bytes without splitting a UTF-8 sequence: steps back over
 * continuation bytes (10xxxxxx) so that the cut falls before a lead byte.
 */
function utf8Prefix(buffer: Buffer, max: number): Buffer {
  let end = max;
  // A sequence has at most 3 continuation bytes; past that the bytes are not UTF-8 anyway.
  for (let steps = 0; steps < 3 && end > 0 && (buffer[end]! & 0xc0) === 0x80; steps++) end--;
  if ((buffer[end]! & 0xc0) === 0x80) end = max;
  return buffer.subarray(0, end);
}

/**
 * The stage behind {@link log}; use the factory.
 */
export class LogStage extends FrameStage {
  private readonly logger: FrameLogger;
  private readonly level: LogLevel;
  private readonly message: string;
  /** Most payload bytes logged; 0 when payloads are not logged. */
  private readonly maxPayload: number;
  /** The type of the open fragmented message, which its continuations share. */
  private messageType: FrameType | undefined;

  /** @param options - see {@link LogOptions} */
  constructor(options: LogOptions) {
    super(options);
    // The base checked that options is an object, or undefined: the logger is required.
    if (options === undefined) throw new TypeError('options.logger must be an object with a debug() method');
    const level = options.level ?? 'debug';
    if (!LEVELS.includes(level)) throw new TypeError(`options.level must be one of ${LEVELS.map((l) => `'${l}'`).join(', ')}`);
    const logger = options.logger as unknown;
    if (typeof logger !== 'object' || logger === null || typeof (logger as Record<string, unknown>)[level] !== 'function') {
      throw new TypeError(`options.logger must be an object with a ${level}() method`);
    }
    const payload = options.payload === undefined ? false : options.payload;
    if (typeof payload === 'boolean') {
      this.maxPayload = payload ? Infinity : 0;
    } else if (typeof payload === 'number' && payload >= 1 && (Number.isInteger(payload) || payload === Infinity)) {
      this.maxPayload = payload;
    } else {
      throw new TypeError('options.payload must be a boolean or an integer >= 1');
    }
    const message = options.message ?? 'frame';
    if (typeof message !== 'string') throw new TypeError('options.message must be a string');
    this.logger = options.logger;
    this.level = level;
    this.message = message;
  }

  /** @internal */
  protected handle(frame: Frame): Frame {
    const type = frame.type;
    // Continuations take the type of their message: tracked even while the level is off.
    const dataType = type === 'continuation' ? this.messageType : type;
    if (type === 'text' || type === 'binary') this.messageType = frame.fin ? undefined : type;
    else if (type === 'continuation' && frame.fin) this.messageType = undefined;

    const logger = this.logger;
    if (logger.isLevelEnabled !== undefined && !logger.isLevelEnabled(this.level)) return frame;
    const context = this.context;
    const payload = frame.payload;
    const record: FrameLogRecord = { id: context.id, from: context.role, type, fin: frame.fin, size: payload.length };
    if (type === 'close') {
      if (frame.code !== undefined) record.code = frame.code;
      record.reason = payload.toString('utf8');
    } else if (this.maxPayload > 0) {
      const cut = payload.length > this.maxPayload;
      if (dataType === 'text') {
        record.payload = (cut ? utf8Prefix(payload, this.maxPayload) : payload).toString('utf8');
      } else {
        record.payload = (cut ? payload.subarray(0, this.maxPayload) : payload).toString('base64');
      }
      if (cut) record.truncated = true;
    }
    logger[this.level]!(record, this.message);
    return frame;
  }
}

/**
 * A stage that writes one record per frame on a pino-compatible logger,
 * `logger[level]({ id, from, type, fin, size, code?, reason?, payload?, truncated? }, message)`,
 * and passes the frame on unchanged (the same object). Payloads are logged only when asked
 * (`payload: true`, or a byte limit); close frames always carry their `code` and `reason`.
 *
 * A logger that throws fails the stage (a proxy then closes both sides with 1011).
 *
 * ```ts
 * const logger = pino({ level: 'debug' }); // a pino logger
 * new WebSocketProxy({ transforms: { client: [log({ logger, payload: 256 })], upstream: [log({ logger })] } });
 * // {"level":20,...,"id":"...","from":"client","type":"text","fin":true,"size":5,"payload":"hello","msg":"frame"}
 * ```
 *
 * @param options - the logger and what to log, see {@link LogOptions}
 * @returns an object-mode `Transform` of `Frame`
 * @throws TypeError for a missing logger, a logger without the level's method, or an option out of range
 */
export function log(options: LogOptions): LogStage {
  return new LogStage(options);
}
