/**
 * The CLI's logs: one pino logger per process, printing either one JSON object a line (`--log
 * json`) or one human-readable line a record (`--log pretty`). Both come from the same records, so
 * what a JSON consumer sees is what a person sees.
 *
 * pino-pretty is not used even when installed: the pretty lines are this module's, the same on
 * every machine, and tests read them.
 *
 * @packageDocumentation
 */
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';
import type { Logger as ProxyLogger } from '../proxy/options.js';
import type { LogFormat, LogLevelName } from './args.js';

/** Where records go: anything with `write(line)`. */
export interface LineSink {
  write(line: string): unknown;
}

/** How to make the logger. */
export interface LoggerSettings {
  format: LogFormat;
  level: LogLevelName;
  /** Fields of every record besides `pid` (e.g. `worker`). @defaultValue {} */
  base?: Record<string, unknown>;
  /** Whether pretty lines are colored. @defaultValue false */
  color?: boolean;
}

/** Record fields shown in a pretty line's prefix, or not at all. */
const PREFIX_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'worker', 'role', 'err']);

const COLORS: Readonly<Record<string, string>> = {
  trace: '\x1b[90m', debug: '\x1b[36m', info: '\x1b[32m', warn: '\x1b[33m', error: '\x1b[31m', fatal: '\x1b[35m',
};
const RESET = '\x1b[0m';

/**
 * Creates the process's logger. Records carry `level` as a name (`"info"`), `time` as an ISO
 * string, `pid`, then the `base` fields. Writes are synchronous, so nothing is lost on
 * `process.exit()`.
 *
 * @param settings - format, level, base fields
 * @param sink - where lines go (a test's buffer)
 * @defaultValue sink: standard output
 */
export function createLogger(settings: LoggerSettings, sink?: LineSink): Logger {
  const options: LoggerOptions = {
    level: settings.level,
    base: { pid: process.pid, ...settings.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  let destination: DestinationStream;
  if (settings.format === 'json') {
    destination = (sink as DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: true });
  } else {
    const out: LineSink = sink ?? process.stdout;
    const color = settings.color === true;
    destination = { write: (line: string) => out.write(prettyLine(JSON.parse(line) as Record<string, unknown>, color)) };
  }
  return pino(options, destination);
}

/**
 * A pino logger as the proxy's `logger` option. The proxy's per-connection lines (close frames
 * forwarded, a side lost, a limit hit) say nothing the CLI's `close` record does not, and carry no
 * connection id, so its `info` lines go to `debug`; its warnings and errors stay what they are.
 *
 * @param logger - the CLI's logger
 */
export function proxyLogger(logger: Logger): ProxyLogger {
  const child = logger.child({ component: 'proxy' });
  return {
    debug: (message) => child.debug(message),
    info: (message) => child.debug(message),
    warn: (message) => child.warn(message),
    error: (message) => child.error(message),
  };
}

/**
 * One record as a human-readable line:
 * `[12:00:00.000] INFO  [worker 2] listening on ws://127.0.0.1:9000 routes=...`. The message comes
 * first, then the other fields as `key=value` (nested objects as `key.sub=value`); an error's stack
 * follows on indented lines.
 *
 * @param record - a parsed JSON record
 * @param color - whether to color the level
 */
export function prettyLine(record: Record<string, unknown>, color: boolean): string {
  const level = String(record.level ?? 'info');
  const label = level.toUpperCase().padEnd(5);
  const time = typeof record.time === 'string' ? clock(record.time) : '';
  const who = record.worker !== undefined ? ` [worker ${String(record.worker)}]` : record.role === 'primary' ? ' [primary]' : '';
  let text = String(record.msg ?? '');
  // The lines a person looks for first read as sentences; their field is not repeated.
  let shown: string | undefined;
  if (text === 'listening' && typeof record.url === 'string') [text, shown] = [`listening on ${record.url}`, 'url'];
  else if (text === 'try it' && typeof record.command === 'string') [text, shown] = [`try it: ${record.command}`, 'command'];
  const fields: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (PREFIX_FIELDS.has(key) || key === shown) continue;
    flatten(key, value, fields);
  }
  const err = record.err as { message?: unknown; stack?: unknown } | undefined;
  if (err !== undefined) fields.push(`err=${quote(String(err.message ?? ''))}`);
  const paint = color ? (COLORS[level] ?? '') : '';
  let line = `[${time}] ${paint}${label}${paint === '' ? '' : RESET}${who} ${text}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}\n`;
  if (err !== undefined && typeof err.stack === 'string' && (level === 'error' || level === 'fatal')) {
    line += err.stack.split('\n').slice(1).map((frame) => `    ${frame.trim()}\n`).join('');
  }
  return line;
}

/** The local time of day of an ISO time, `HH:MM:SS.mmm`. */
function clock(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

function flatten(key: string, value: unknown, out: string[]): void {
  if (value === undefined) return;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [sub, inner] of Object.entries(value)) flatten(`${key}.${sub}`, inner, out);
    return;
  }
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) {
    out.push(`${key}=${quote(value.join(', '))}`);
    return;
  }
  out.push(`${key}=${typeof value === 'string' ? quote(value) : JSON.stringify(value)}`);
}

/** A string as is when it has no blank, quote or control character, else JSON-quoted. */
function quote(value: string): string {
  return value !== '' && !/[\s"'=\\\p{Cc}]/u.test(value) ? value : JSON.stringify(value);
}
