/**
 * The command line of `ws-frame-proxy`: parsed with `util.parseArgs` and checked whole before
 * anything starts, so that a bad flag is one clear line and exit code 2, never a failure later.
 *
 * @packageDocumentation
 */
import { parseArgs } from 'node:util';
import { isLoopback } from '../inspector/options.js';
import type { ProxyServerOptions } from '../server/options.js';

/** A bad command line (or config file, TLS file, server option): printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** How log records are printed: one JSON object a line, or one human-readable line. */
export type LogFormat = 'json' | 'pretty';

/** pino's levels, and `silent`. */
export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

const LOG_LEVELS: readonly LogLevelName[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** An address to listen on; `host` without the brackets of an IPv6 literal. */
export interface HostPort {
  host: string;
  port: number;
}

/** A `--route PATH=URL`, as given. */
export interface CliRoute {
  path: string;
  target: string;
}

/** The server options a flag sets: they override the config file's. */
export type FlagOverrides = Pick<
  ProxyServerOptions,
  | 'aggregateFragments'
  | 'clientMaxFrameSize'
  | 'upstreamMaxFrameSize'
  | 'maxConnections'
  | 'maxConnectionsPerIp'
  | 'handshakeTimeout'
  | 'connectTimeout'
  | 'idleTimeout'
  | 'pingInterval'
  | 'pongTimeout'
  | 'allowedOrigins'
>;

/** The command line, checked. */
export interface CliOptions {
  /** `--help`: print the usage and exit 0. */
  help: boolean;
  /** `--version`: print the version and exit 0. */
  version: boolean;
  /** `--listen`. @defaultValue 127.0.0.1:9000 */
  listen: HostPort;
  /** `--upstream`: one upstream for every path. @defaultValue none */
  upstream: string | undefined;
  /** `--route`, in order (empty when none). */
  routes: CliRoute[];
  /** `--config`: the file, as given. @defaultValue none */
  config: string | undefined;
  /** `--tls-cert` and `--tls-key` (both or neither). @defaultValue none (plain ws:) */
  tls: { cert: string; key: string } | undefined;
  /** Server and proxy options set by flags (a key is present only when its flag was given). */
  overrides: FlagOverrides;
  /** `--drain-timeout`, ms. @defaultValue 10000 */
  drainTimeout: number;
  /** `--metrics`: where to serve /metrics and /healthz. @defaultValue none (no metrics) */
  metrics: HostPort | undefined;
  /** `--log`. @defaultValue pretty on a terminal, json otherwise */
  log: LogFormat;
  /** `--log-level`. @defaultValue 'info' */
  logLevel: LogLevelName;
  /** `--log-frames` (also set by `--log-payloads`). @defaultValue false */
  logFrames: boolean;
  /** `--log-payloads`: payloads in frame records, cut to {@link PAYLOAD_LOG_BYTES}. @defaultValue false */
  logPayloads: boolean;
  /** `--workers`. @defaultValue 1 (no cluster) */
  workers: number;
  /** `--record`: the directory of the per-connection recordings. @defaultValue none (no recording) */
  record: string | undefined;
  /** `--record-max-bytes`: most bytes of one recording file. @defaultValue no bound */
  recordMaxBytes: number | undefined;
  /** `--inspect`: where to serve the inspector page. @defaultValue none (no inspector) */
  inspect: HostPort | undefined;
  /**
   * `--inspect-token` (or the `WSP_INSPECT_TOKEN` environment variable, which `ps` does not show):
   * the token the inspector asks for; required on an address that is not loopback.
   * @defaultValue none
   */
  inspectToken: string | undefined;
}

/** Default `--listen`. */
export const DEFAULT_LISTEN: Readonly<HostPort> = Object.freeze({ host: '127.0.0.1', port: 9000 });

/** Default `--drain-timeout`, ms. */
export const DEFAULT_DRAIN_TIMEOUT = 10_000;

/** Most payload bytes of a frame record with `--log-payloads`. */
export const PAYLOAD_LOG_BYTES = 256;

/** Smallest `--record-max-bytes`: room for a header and a frame line (the `record()` stage's minimum). */
export const MIN_RECORD_MAX_BYTES = 1024;

/** Most `--workers`: more processes than this on one port is a typo, not a plan. */
export const MAX_WORKERS = 1024;

/** Node's timers take at most 2^31 - 1 ms; longer ones fire after 1 ms. */
const MAX_DURATION = 2 ** 31 - 1;

const FLAGS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  listen: { type: 'string' },
  upstream: { type: 'string' },
  route: { type: 'string', multiple: true },
  config: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  aggregate: { type: 'boolean' },
  'max-frame-size': { type: 'string' },
  'upstream-max-frame-size': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-connections-per-ip': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'ping-interval': { type: 'string' },
  'pong-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'allowed-origin': { type: 'string', multiple: true },
  metrics: { type: 'string' },
  log: { type: 'string' },
  'log-level': { type: 'string' },
  'log-frames': { type: 'boolean' },
  'log-payloads': { type: 'boolean' },
  workers: { type: 'string' },
  record: { type: 'string' },
  'record-max-bytes': { type: 'string' },
  inspect: { type: 'string' },
  'inspect-token': { type: 'string' },
} as const;

function parseFlags(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: FLAGS, strict: true, allowPositionals: false, tokens: true });
}

type Values = ReturnType<typeof parseFlags>['values'];

/** Numeric flags and the option each sets, with how the value is read. */
const NUMERIC_FLAGS = [
  ['max-frame-size', 'clientMaxFrameSize', 'size'],
  ['upstream-max-frame-size', 'upstreamMaxFrameSize', 'size'],
  ['max-connections', 'maxConnections', 'count'],
  ['max-connections-per-ip', 'maxConnectionsPerIp', 'count'],
  ['handshake-timeout', 'handshakeTimeout', 'duration'],
  ['connect-timeout', 'connectTimeout', 'duration'],
  ['idle-timeout', 'idleTimeout', 'duration'],
  ['ping-interval', 'pingInterval', 'duration'],
  ['pong-timeout', 'pongTimeout', 'duration'],
] as const satisfies ReadonlyArray<readonly [keyof typeof FLAGS, keyof FlagOverrides, 'size' | 'count' | 'duration']>;

/**
 * The flag that sets each server option, to name the flag in an error the server reports about
 * the option.
 */
export const FLAG_OF_OPTION: Readonly<Record<string, string>> = Object.freeze({
  ...Object.fromEntries(NUMERIC_FLAGS.map(([flag, option]) => [option, `--${flag}`])),
  aggregateFragments: '--aggregate',
  allowedOrigins: '--allowed-origin',
  tls: '--tls-cert/--tls-key',
});

/**
 * Parses and checks the command line.
 *
 * @param argv - the arguments after the script
 * @param isTTY - whether stdout is a terminal (the default log format)
 * @param env - the environment (`WSP_INSPECT_TOKEN`)
 * @returns the options
 * @throws UsageError naming the flag and what is wrong, e.g. `--listen: expected host:port, got "x"`
 */
export function parseCli(argv: readonly string[], isTTY = false, env: Readonly<Record<string, string | undefined>> = process.env): CliOptions {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv);
  } catch (err) {
    throw new UsageError(parseErrorMessage(err as Error & { code?: string }));
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    const flag = FLAGS[token.name as keyof typeof FLAGS];
    if (seen.has(token.name) && !('multiple' in flag)) throw new UsageError(`--${token.name}: given more than once`);
    seen.add(token.name);
  }
  const values = parsed.values;
  const options: CliOptions = {
    help: values.help === true,
    version: values.version === true,
    listen: values.listen === undefined ? { ...DEFAULT_LISTEN } : hostPort('--listen', values.listen),
    upstream: nonEmpty('--upstream', values.upstream),
    routes: (values.route ?? []).map(route),
    config: nonEmpty('--config', values.config),
    tls: tlsFiles(values),
    overrides: overrides(values),
    drainTimeout: values['drain-timeout'] === undefined ? DEFAULT_DRAIN_TIMEOUT : duration('--drain-timeout', values['drain-timeout'], 0),
    metrics: values.metrics === undefined ? undefined : hostPort('--metrics', values.metrics),
    log: logFormat(values.log, isTTY),
    logLevel: logLevel(values['log-level']),
    logFrames: values['log-frames'] === true || values['log-payloads'] === true,
    logPayloads: values['log-payloads'] === true,
    workers: values.workers === undefined ? 1 : count('--workers', values.workers, MAX_WORKERS),
    record: nonEmpty('--record', values.record),
    recordMaxBytes: values['record-max-bytes'] === undefined ? undefined : recordMaxBytes(values['record-max-bytes']),
    inspect: values.inspect === undefined ? undefined : hostPort('--inspect', values.inspect),
    inspectToken: nonEmpty('--inspect-token', values['inspect-token']) ?? nonEmpty('WSP_INSPECT_TOKEN', env.WSP_INSPECT_TOKEN),
  };
  if (values['inspect-token'] !== undefined && options.inspect === undefined) throw new UsageError('--inspect-token needs --inspect HOST:PORT');
  checkInspect(options);
  if (options.recordMaxBytes !== undefined && options.record === undefined) {
    throw new UsageError('--record-max-bytes needs --record DIR');
  }
  if (options.upstream !== undefined && options.routes.length > 0) {
    throw new UsageError('--upstream and --route are exclusive: give one upstream, or routes');
  }
  const { listen, metrics } = options;
  if (metrics !== undefined && metrics.port !== 0 && metrics.port === listen.port && metrics.host === listen.host) {
    throw new UsageError(`--metrics: must differ from --listen, both are ${formatHostPort(listen)}`);
  }
  return options;
}

/**
 * The log format the command line asks for, read leniently (also from a command line that fails
 * to parse), so that a usage error can be printed in that format.
 *
 * @param argv - the arguments after the script
 * @param isTTY - whether stdout is a terminal
 */
export function requestedLogFormat(argv: readonly string[], isTTY = false): LogFormat {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (arg === '--log') value = argv[i + 1];
    else if (arg.startsWith('--log=')) value = arg.slice('--log='.length);
  }
  return value === 'json' || value === 'pretty' ? value : isTTY ? 'pretty' : 'json';
}

/**
 * Formats an address as `host:port`, IPv6 literals in brackets.
 *
 * @param address - the address
 */
export function formatHostPort(address: HostPort): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

/** parseArgs's message, shortened to the flag and what is wrong. */
function parseErrorMessage(err: Error & { code?: string }): string {
  const name = /'(-[^' ]*)/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${JSON.stringify(name ?? err.message)}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(/'([^']*)'/.exec(err.message)?.[1] ?? err.message)}: every option is a --flag`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (name !== undefined && /does not take an argument/.test(err.message)) return `${name}: takes no value`;
      if (name !== undefined) return `${name}: expected a value (a value starting with "-" goes as ${name}=VALUE)`;
      return err.message;
    default:
      return err.message;
  }
}

function nonEmpty(flag: string, value: string | undefined): string | undefined {
  if (value === '') throw new UsageError(`${flag}: expected a value, got ""`);
  return value;
}

/** `host:port` or `[v6]:port`; the port 0 to 65535. */
function hostPort(flag: string, value: string): HostPort {
  const bad = (why = ''): UsageError => new UsageError(`${flag}: expected host:port, got ${JSON.stringify(value)}${why}`);
  const colon = value.lastIndexOf(':');
  if (colon <= 0) throw bad();
  let host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || host.length < 3) throw bad();
    host = host.slice(1, -1);
    if (!/^[0-9a-fA-F:.]+$/.test(host) || !host.includes(':')) throw bad(' (not an IPv6 address in brackets)');
  } else if (host.includes(':')) {
    throw bad(' (an IPv6 address goes in brackets: [::1]:9000)');
  } else if (!/^[A-Za-z0-9.-]+$/.test(host)) {
    throw bad();
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(' (the port is 0 to 65535)');
  return { host, port: Number(portText) };
}

/** `--inspect` needs one process, its own address, and a token off loopback. */
function checkInspect(options: CliOptions): void {
  const { inspect, listen } = options;
  if (inspect === undefined) return;
  if (options.workers > 1) throw new UsageError('--inspect: shows one process\'s connections; it cannot be used with --workers');
  if (inspect.port !== 0 && inspect.port === listen.port && inspect.host === listen.host) {
    throw new UsageError(`--inspect: must differ from --listen, both are ${formatHostPort(listen)}`);
  }
  if (!isLoopback(inspect.host) && options.inspectToken === undefined) {
    throw new UsageError(`--inspect: ${inspect.host} is not a loopback address: give --inspect-token (or WSP_INSPECT_TOKEN)`);
  }
}

/** `PATH=URL`, the path starting with "/"; the URL is checked by the server. */
function route(value: string): CliRoute {
  const equals = value.indexOf('=');
  if (equals === -1 || !value.startsWith('/') || equals === value.length - 1) {
    throw new UsageError(`--route: expected PATH=URL (e.g. /api=ws://127.0.0.1:8080), got ${JSON.stringify(value)}`);
  }
  return { path: value.slice(0, equals), target: value.slice(equals + 1) };
}

function tlsFiles(values: Values): CliOptions['tls'] {
  const cert = nonEmpty('--tls-cert', values['tls-cert']);
  const key = nonEmpty('--tls-key', values['tls-key']);
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined) throw new UsageError('--tls-key needs --tls-cert: give both or neither');
  if (key === undefined) throw new UsageError('--tls-cert needs --tls-key: give both or neither');
  return { cert, key };
}

function overrides(values: Values): FlagOverrides {
  const result: FlagOverrides = {};
  if (values.aggregate === true) result.aggregateFragments = true;
  for (const [flag, option, kind] of NUMERIC_FLAGS) {
    const text = values[flag];
    if (text === undefined) continue;
    const name = `--${flag}`;
    result[option] = kind === 'size' ? size(name, text) : kind === 'count' ? count(name, text) : duration(name, text, 1);
  }
  if (values['allowed-origin'] !== undefined) result.allowedOrigins = values['allowed-origin'].map(origin);
  return result;
}

/** A positive integer. */
function count(flag: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new UsageError(`${flag}: expected an integer from 1${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Milliseconds, an integer within what a Node timer can wait. */
function duration(flag: string, text: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > MAX_DURATION) {
    throw new UsageError(`${flag}: expected milliseconds, an integer from ${min} to ${MAX_DURATION}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };

/** Bytes: an integer >= 1, optionally with a binary suffix (`64K`, `1MiB`). */
function size(flag: string, text: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text);
  const unit = match === null ? undefined : SIZE_UNITS[match[2]!.toLowerCase()];
  const bytes = match === null || unit === undefined ? NaN : Number(match[1]) * unit;
  if (!(bytes >= 1) || bytes > Number.MAX_SAFE_INTEGER) {
    throw new UsageError(`${flag}: expected a size in bytes (an integer >= 1, or with K, M or G: 64K, 1M), got ${JSON.stringify(text)}`);
  }
  return bytes;
}

/** `--record-max-bytes`: a size of at least {@link MIN_RECORD_MAX_BYTES}. */
function recordMaxBytes(text: string): number {
  const bytes = size('--record-max-bytes', text);
  if (bytes < MIN_RECORD_MAX_BYTES) throw new UsageError(`--record-max-bytes: expected at least ${MIN_RECORD_MAX_BYTES} bytes, got ${JSON.stringify(text)}`);
  return bytes;
}

/** An origin as browsers send it (`https://app.example.com[:port]`), or `*`. */
function origin(value: string): string {
  if (value === '*') return value;
  let parsed: URL | undefined;
  try {
    parsed = new URL(value);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || parsed.origin === 'null' || parsed.origin.toLowerCase() !== value.replace(/\/$/, '').toLowerCase()) {
    throw new UsageError(`--allowed-origin: expected an origin like https://app.example.com, or *, got ${JSON.stringify(value)}`);
  }
  return value;
}

function logFormat(value: string | undefined, isTTY: boolean): LogFormat {
  if (value === undefined) return isTTY ? 'pretty' : 'json';
  if (value !== 'json' && value !== 'pretty') throw new UsageError(`--log: expected json or pretty, got ${JSON.stringify(value)}`);
  return value;
}

function logLevel(value: string | undefined): LogLevelName {
  if (value === undefined) return 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as LogLevelName;
}
