/**
 * The recording format: JSON Lines, a {@link RecordingHeader} line then one {@link RecordedFrame}
 * line per frame (and, when the recorder stopped or dropped records, a {@link RecordingSummary} line
 * last). Shared by the `record()` stage, `replay()`, `toHar()` and the inspector.
 *
 * Payloads are kept byte for byte: text as UTF-8 when the bytes are valid UTF-8 on their own, any
 * other payload (binary, or a text fragment that cuts a character in two) as base64.
 *
 * @packageDocumentation
 */
import { WebSocketProxyError } from '../errors.js';
import type { Frame, FrameType } from '../frame.js';
import { opcodeOf } from '../frame.js';
import { isValidUtf8 } from '../protocol/utf8.js';

/** The `format` field of a recording's header line. */
export const RECORDING_FORMAT = 'ws-frame-proxy-recording';

/** The version of the format this package writes (and the highest it reads). */
export const RECORDING_VERSION = 1;

/** First line of a JSONL recording. */
export interface RecordingHeader {
  /** Always {@link RECORDING_FORMAT}. */
  format: typeof RECORDING_FORMAT;
  /** The format version, {@link RECORDING_VERSION}. */
  version: number;
  /** When the recording (or this file of a rotated recording) started, ISO 8601. */
  created: string;
  /** The connection recorded, when the recording holds a single one. */
  connection?: string;
}

/** The side a recorded frame came from: the role of the stage that saw it. */
export type RecordedSide = 'client' | 'upstream';

/** One line per frame. */
export interface RecordedFrame {
  /** When the stage saw the frame, epoch milliseconds (fractional allowed). */
  time: number;
  /** The connection's id (the proxy's `id`). */
  connection: string;
  /** The side that sent the frame. */
  from: RecordedSide;
  /** The frame type. */
  type: FrameType;
  /** The FIN bit. */
  fin: boolean;
  /** Present (true) only when RSV1 was set. */
  rsv1?: true;
  /** Payload bytes of the frame; for a close frame, the reason's bytes. */
  size: number;
  /** Close status code, close frames with a body only. */
  code?: number;
  /** The payload (or its first bytes, see `truncated`); absent when payloads are left out. */
  data?: string;
  /** How `data` is encoded; present whenever `data` is. */
  encoding?: 'utf8' | 'base64';
  /** Present (true) when `data` holds only the first bytes of the payload. */
  truncated?: true;
}

/**
 * Last line of a recording whose recorder stopped at a bound or dropped records (written when the
 * sink is ended, if it still takes writes). Readers that only want frames skip it.
 */
export interface RecordingSummary {
  /** Always true: tells this line from a frame line. */
  summary: true;
  /** Frame lines written to this recording (this file, for a rotated one). */
  frames: number;
  /** Records dropped because the sink was slower than the traffic. */
  dropped: number;
  /** Frames not recorded because a bound (`maxBytes`/`maxFrames`) was reached with `onLimit: 'stop'`. */
  skipped: number;
}

/** Extra facts {@link recordFrame} needs about the frame. */
export interface RecordMeta {
  /** Epoch milliseconds. */
  time: number;
  /** The connection's id. */
  connection: string;
  /** The side that sent the frame. */
  from: RecordedSide;
  /**
   * For a continuation frame: true when the message it continues is binary, so that its data is
   * base64 like the message's first frame (a recorder that does not know leaves it out).
   * @defaultValue false
   */
  binary?: boolean;
}

/**
 * A payload as a string: UTF-8 text for text that is valid UTF-8 on its own (a fragment may split a
 * character: then base64, so that it reads back byte for byte), base64 for binary.
 *
 * @param bytes - the payload
 * @param binary - whether it belongs to a binary message
 */
export function encodeData(bytes: Buffer, binary: boolean): { data: string; encoding: 'utf8' | 'base64' } {
  if (!binary && isValidUtf8(bytes)) return { data: bytes.toString('utf8'), encoding: 'utf8' };
  return { data: bytes.toString('base64'), encoding: 'base64' };
}

/**
 * The record of one frame.
 *
 * @param frame - a whole frame (a piece of a cut-through frame is recorded as its own bytes)
 * @param meta - time, connection and side, see {@link RecordMeta}
 * @param payloads - true: the whole payload; false: none; n: its first n bytes (`truncated` when
 *   cut)
 * @defaultValue payloads: true
 * @returns a plain object ready for {@link toJsonLine}; it holds no reference to the payload buffer
 */
export function recordFrame(frame: Frame, meta: RecordMeta, payloads: boolean | number = true): RecordedFrame {
  const record: RecordedFrame = { time: meta.time, connection: meta.connection, from: meta.from, type: frame.type, fin: frame.fin, size: frame.payload.length };
  if (frame.rsv1) record.rsv1 = true;
  if (frame.code !== undefined) record.code = frame.code;
  if (payloads === false) return record;
  const limit = payloads === true ? Infinity : payloads;
  const kept = frame.payload.length > limit ? frame.payload.subarray(0, limit) : frame.payload;
  const binary = frame.type === 'binary' || (frame.type === 'continuation' && meta.binary === true);
  const { data, encoding } = encodeData(kept, binary);
  record.data = data;
  record.encoding = encoding;
  if (kept.length < frame.payload.length) record.truncated = true;
  return record;
}

/**
 * The frame a record describes, byte for byte.
 *
 * @param record - a frame record with its whole payload
 * @returns a new frame (its payload a new buffer)
 * @throws TypeError when the record has no data for a non-empty payload, or truncated data
 */
export function frameFromRecord(record: RecordedFrame): Frame {
  if (record.truncated === true) throw new TypeError('record.data is truncated: the frame cannot be rebuilt');
  let payload: Buffer;
  if (record.data === undefined) {
    if (record.size !== 0) throw new TypeError('record.data is missing: the recording left payloads out');
    payload = Buffer.alloc(0);
  } else {
    payload = Buffer.from(record.data, record.encoding === 'base64' ? 'base64' : 'utf8');
  }
  const frame: Frame = { type: record.type, fin: record.fin, payload, rsv1: record.rsv1 === true };
  if (record.code !== undefined) frame.code = record.code;
  return frame;
}

/**
 * The header line of a new recording.
 *
 * @param connection - the connection it records, when a single one
 * @param created - when it starts
 * @defaultValue created: now
 */
export function recordingHeader(connection?: string, created: Date = new Date()): RecordingHeader {
  const header: RecordingHeader = { format: RECORDING_FORMAT, version: RECORDING_VERSION, created: created.toISOString() };
  if (connection !== undefined) header.connection = connection;
  return header;
}

/**
 * One line of a recording.
 *
 * @param value - a header, frame or summary record
 * @returns its JSON and a newline
 */
export function toJsonLine(value: RecordingHeader | RecordedFrame | RecordingSummary): string {
  return `${JSON.stringify(value)}\n`;
}

/** A recording read back: see {@link parseRecording}. */
export interface ParsedRecording {
  /** The header line. */
  header: RecordingHeader;
  /** The frame lines, in order. */
  frames: RecordedFrame[];
  /** The summary line, when there is one. */
  summary?: RecordingSummary;
}

function fail(line: number, why: string): never {
  throw new WebSocketProxyError('WSP_ERR_INVALID_RECORDING', `line ${line}: ${why}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkHeader(value: unknown, line: number): RecordingHeader {
  if (!isObject(value) || value['format'] !== RECORDING_FORMAT) fail(line, `not a ${RECORDING_FORMAT} header`);
  const version = value['version'];
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) fail(line, 'version must be a positive integer');
  if (version > RECORDING_VERSION) fail(line, `version ${version} is newer than this reader (${RECORDING_VERSION})`);
  if (typeof value['created'] !== 'string') fail(line, 'created must be a string');
  if (value['connection'] !== undefined && typeof value['connection'] !== 'string') fail(line, 'connection must be a string');
  return value as unknown as RecordingHeader;
}

function checkSummary(value: Record<string, unknown>, line: number): RecordingSummary {
  for (const key of ['frames', 'dropped', 'skipped'] as const) {
    if (typeof value[key] !== 'number') fail(line, `summary ${key} must be a number`);
  }
  return value as unknown as RecordingSummary;
}

/** Checks the fields of a frame line; the record is returned as parsed (no copy). */
function checkFrame(value: Record<string, unknown>, line: number): RecordedFrame {
  if (typeof value['time'] !== 'number' || !Number.isFinite(value['time'])) fail(line, 'time must be a number');
  if (typeof value['connection'] !== 'string') fail(line, 'connection must be a string');
  if (value['from'] !== 'client' && value['from'] !== 'upstream') fail(line, "from must be 'client' or 'upstream'");
  if (typeof value['type'] !== 'string' || opcodeOf(value['type'] as FrameType) === undefined) fail(line, 'type must be a frame type');
  if (typeof value['fin'] !== 'boolean') fail(line, 'fin must be a boolean');
  if (value['rsv1'] !== undefined && value['rsv1'] !== true) fail(line, 'rsv1 must be true when present');
  const size = value['size'];
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) fail(line, 'size must be an integer >= 0');
  const code = value['code'];
  if (code !== undefined && (typeof code !== 'number' || !Number.isInteger(code))) fail(line, 'code must be an integer');
  if (value['data'] !== undefined) {
    if (typeof value['data'] !== 'string') fail(line, 'data must be a string');
    if (value['encoding'] !== 'utf8' && value['encoding'] !== 'base64') fail(line, "encoding must be 'utf8' or 'base64'");
  }
  if (value['truncated'] !== undefined && value['truncated'] !== true) fail(line, 'truncated must be true when present');
  return value as unknown as RecordedFrame;
}

/**
 * Reads a JSONL recording: a header line, frame lines, and an optional summary line. Blank lines
 * are skipped.
 *
 * @param text - the file's text
 * @returns the header, the frames in order, and the summary if any
 * @throws WebSocketProxyError `WSP_ERR_INVALID_RECORDING` naming the first bad line (1-based)
 */
export function parseRecording(text: string): ParsedRecording {
  let header: RecordingHeader | undefined;
  const frames: RecordedFrame[] = [];
  let summary: RecordingSummary | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const source = lines[i]!.trim();
    if (source === '') continue;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch {
      fail(line, 'not JSON');
    }
    if (header === undefined) {
      header = checkHeader(value, line);
      continue;
    }
    if (!isObject(value)) fail(line, 'not a JSON object');
    if (summary !== undefined) fail(line, 'a line after the summary');
    if (value['summary'] === true) summary = checkSummary(value, line);
    else frames.push(checkFrame(value, line));
  }
  if (header === undefined) fail(1, 'no header line');
  const parsed: ParsedRecording = { header, frames };
  if (summary !== undefined) parsed.summary = summary;
  return parsed;
}
