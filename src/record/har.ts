/**
 * `toHar()`: recordings as a HAR 1.2 log, one entry per connection, its frames in Chrome's
 * `_webSocketMessages` (the extension Chrome DevTools writes and reads since Chrome 76), so that
 * DevTools' Network panel ("Import HAR file") and HAR viewers show them.
 *
 * @packageDocumentation
 */
import { packageVersion } from '../version.js';
import { opcodeOf } from '../frame.js';
import { checkOptionsObject } from '../transforms/stage.js';
import type { ParsedRecording, RecordedFrame } from './format.js';
import { RecordingRing } from './ring.js';

/**
 * One message of Chrome's `_webSocketMessages`. `type`: `'send'` for what the client sent,
 * `'receive'` for what it received from the upstream (the browser's point of view); `time`: epoch
 * seconds; `opcode`: 1 text, 2 binary, 8 close, 9 ping, 10 pong; `data`: the text as a string, or
 * for opcode 2 the bytes in base64 (Chrome's rule: base64 only for opcode 2).
 */
export interface HarWebSocketMessage {
  type: 'send' | 'receive';
  time: number;
  opcode: number;
  data: string;
}

/** A HAR name/value pair. */
export interface HarNameValue {
  name: string;
  value: string;
}

/** One HAR entry: the connection's upgrade request and 101 response, then its messages. */
export interface HarEntry {
  startedDateTime: string;
  /** Milliseconds from the first to the last frame. */
  time: number;
  request: {
    method: 'GET';
    url: string;
    httpVersion: string;
    cookies: HarNameValue[];
    headers: HarNameValue[];
    queryString: HarNameValue[];
    headersSize: number;
    bodySize: number;
  };
  response: {
    status: number;
    statusText: string;
    httpVersion: string;
    cookies: HarNameValue[];
    headers: HarNameValue[];
    content: { size: number; mimeType: string };
    redirectURL: string;
    headersSize: number;
    bodySize: number;
  };
  cache: Record<string, never>;
  timings: { blocked: number; dns: number; connect: number; send: number; wait: number; receive: number; ssl: number };
  /** The connection's id (HAR's optional `connection` field). */
  connection: string;
  _resourceType: 'websocket';
  _webSocketMessages: HarWebSocketMessage[];
}

/** A HAR 1.2 document. */
export interface Har {
  log: {
    version: '1.2';
    creator: { name: string; version: string };
    pages: never[];
    entries: HarEntry[];
  };
}

/** What {@link toHar} reads. */
export type HarSource = ParsedRecording | readonly ParsedRecording[] | RecordingRing | readonly RecordedFrame[];

/** Options of {@link toHar}. */
export interface HarOptions {
  /**
   * The URL shown for a connection (a recording does not hold it).
   * @defaultValue `ws://ws-frame-proxy.invalid/<connection id>` (`.invalid` is a reserved name)
   */
  url?: string | ((connection: string) => string);
  /**
   * Whether control frames (close, ping, pong) appear among the messages (DevTools shows them with
   * their opcode).
   * @defaultValue true
   */
  control?: boolean;
  /**
   * Whether fragmented messages are joined into one message each (as browsers report them); false
   * lists every frame, continuations with opcode 0.
   * @defaultValue true
   */
  joinFragments?: boolean;
}

/** A data message being assembled from its fragments. */
interface OpenMessage {
  opcode: number;
  parts: Buffer[];
  /** Time of the latest fragment. */
  time: number;
}

function bytesOf(record: RecordedFrame): Buffer {
  if (record.data === undefined) return Buffer.alloc(0);
  return Buffer.from(record.data, record.encoding === 'base64' ? 'base64' : 'utf8');
}

function message(from: RecordedFrame['from'], time: number, opcode: number, bytes: Buffer): HarWebSocketMessage {
  return {
    type: from === 'client' ? 'send' : 'receive',
    time: time / 1000,
    opcode,
    data: opcode === 2 ? bytes.toString('base64') : bytes.toString('utf8'),
  };
}

function framesOf(source: HarSource): readonly RecordedFrame[] {
  if (source instanceof RecordingRing) return source.toArray();
  if (Array.isArray(source)) {
    if (source.length > 0 && 'frames' in (source[0] as object)) return (source as readonly ParsedRecording[]).flatMap((r) => r.frames);
    return source as readonly RecordedFrame[];
  }
  if (typeof source === 'object' && source !== null && Array.isArray((source as ParsedRecording).frames)) return (source as ParsedRecording).frames;
  throw new TypeError('recording must be a parsed recording, an array of them, a RecordingRing or an array of frame records');
}

/** Chrome's messages of one connection's frames, in time order. */
function messagesOf(frames: readonly RecordedFrame[], control: boolean, join: boolean): HarWebSocketMessage[] {
  const out: HarWebSocketMessage[] = [];
  const open: Partial<Record<RecordedFrame['from'], OpenMessage>> = {};
  for (const record of frames) {
    const opcode = opcodeOf(record.type)!;
    if (record.type === 'close' || record.type === 'ping' || record.type === 'pong') {
      if (control) out.push(message(record.from, record.time, opcode, bytesOf(record)));
      continue;
    }
    if (!join) {
      out.push(message(record.from, record.time, opcode, bytesOf(record)));
      continue;
    }
    const current = record.type === 'continuation' ? open[record.from] : { opcode, parts: [], time: record.time };
    if (current === undefined) continue; // a continuation whose start was not recorded
    current.parts.push(bytesOf(record));
    current.time = record.time;
    if (record.fin) {
      delete open[record.from];
      out.push(message(record.from, record.time, current.opcode, Buffer.concat(current.parts)));
    } else {
      open[record.from] = current;
    }
  }
  // Messages cut short by the end of the recording are shown with what was recorded.
  for (const from of ['client', 'upstream'] as const) {
    const rest = open[from];
    if (rest !== undefined) out.push(message(from, rest.time, rest.opcode, Buffer.concat(rest.parts)));
  }
  // Both directions are recorded by separate stages: order by time, stable for equal times.
  return out.sort((a, b) => a.time - b.time);
}

function entryOf(connection: string, frames: readonly RecordedFrame[], url: string, control: boolean, join: boolean): HarEntry {
  let first = Infinity;
  let last = -Infinity;
  for (const { time } of frames) {
    if (time < first) first = time;
    if (time > last) last = time;
  }
  return {
    startedDateTime: new Date(first).toISOString(),
    time: Math.max(0, last - first),
    request: { method: 'GET', url, httpVersion: 'HTTP/1.1', cookies: [], headers: [], queryString: [], headersSize: -1, bodySize: 0 },
    response: {
      status: 101, statusText: 'Switching Protocols', httpVersion: 'HTTP/1.1', cookies: [], headers: [],
      content: { size: 0, mimeType: 'x-unknown' }, redirectURL: '', headersSize: -1, bodySize: 0,
    },
    cache: {},
    timings: { blocked: -1, dns: -1, connect: -1, send: 0, wait: 0, receive: 0, ssl: -1 },
    connection,
    _resourceType: 'websocket',
    _webSocketMessages: messagesOf(frames, control, join),
  };
}

function version(): string {
  try {
    return packageVersion();
  } catch {
    return '0.0.0';
  }
}

/**
 * A HAR 1.2 log of recorded connections: one entry per connection (in order of first frame), each
 * with Chrome's `_resourceType: 'websocket'` and `_webSocketMessages`. Frames from the client are
 * `send`, frames from the upstream `receive`. Payloads left out of the recording show as empty
 * data, truncated ones as what was kept.
 *
 * ```ts
 * writeFileSync('session.har', JSON.stringify(toHar(parseRecording(readFileSync('rec.jsonl', 'utf8')))));
 * ```
 *
 * @param recording - a parsed recording, several, a {@link RecordingRing} or frame records
 * @param options - see {@link HarOptions}
 * @returns a plain object ready for `JSON.stringify`
 * @throws TypeError for another input or an invalid option
 */
export function toHar(recording: HarSource, options: HarOptions = {}): Har {
  checkOptionsObject(options);
  const url = options.url ?? ((id: string) => `ws://ws-frame-proxy.invalid/${encodeURIComponent(id)}`);
  if (typeof url !== 'string' && typeof url !== 'function') throw new TypeError('options.url must be a string or a function');
  for (const name of ['control', 'joinFragments'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'boolean') throw new TypeError(`options.${name} must be a boolean`);
  }
  const byConnection = new Map<string, RecordedFrame[]>();
  for (const record of framesOf(recording)) {
    let list = byConnection.get(record.connection);
    if (list === undefined) byConnection.set(record.connection, (list = []));
    list.push(record);
  }
  const entries: HarEntry[] = [];
  for (const [connection, frames] of byConnection) {
    const entryUrl = typeof url === 'string' ? url : url(connection);
    entries.push(entryOf(connection, frames, entryUrl, options.control ?? true, options.joinFragments ?? true));
  }
  entries.sort((a, b) => Date.parse(a.startedDateTime) - Date.parse(b.startedDateTime));
  return { log: { version: '1.2', creator: { name: 'ws-frame-proxy', version: version() }, pages: [], entries } };
}
