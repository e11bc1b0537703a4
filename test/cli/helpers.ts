/**
 * Fixtures of the CLI specs: the `ws-frame-proxy` command run as a child process (its JSON log read
 * line by line), `ws` clients and upstreams on 127.0.0.1, temporary config files. Every process a
 * test started is killed after it if still running (`killLeftovers()` in an `afterEach`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type net from 'node:net';
import { startUpstream } from '../helpers/proxy-harness.js';
import { rawUpgradeClient } from '../helpers/sockets.js';

/** The compiled bin. */
export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

/** The fixture certificate (its own CA, for 127.0.0.1) and key. */
export const TLS_CERT = fileURLToPath(new URL('../../../test/fixtures/tls/cert.pem', import.meta.url));
export const TLS_KEY = fileURLToPath(new URL('../../../test/fixtures/tls/key.pem', import.meta.url));

/** A JSON log record. */
export type LogRecord = Record<string, unknown> & { msg?: string; level?: string; pid?: number };

/** A running CLI. */
export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /** stdout's complete lines, each parsed (throws on a line that is not JSON). */
  records(): LogRecord[];
  /** Resolves with the first record (already printed or to come) that matches; rejects if the process exits first. */
  waitFor(match: (record: LogRecord) => boolean): Promise<LogRecord>;
  /** The same for a plain-text stdout: resolves with the first match of `pattern`. */
  waitForText(pattern: RegExp): Promise<RegExpExecArray>;
  /** Resolves with the exit code (or the signal's name) once the process exited. */
  readonly exited: Promise<number | string>;
  /** Sends a signal and resolves with the exit code (or signal). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const running = new Set<ChildProcess>();

/**
 * Starts the CLI with these arguments (nothing added).
 *
 * @param args - the command line
 */
export function spawnCli(args: readonly string[]): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  // Set at 'close', once stdout and stderr were read to their end (unlike 'exit').
  let closed = false;
  const waiters: (() => void)[] = [];
  const wake = (): void => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    wake();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('close', (code, signal) => {
      closed = true;
      running.delete(child);
      wake();
      resolve(code ?? signal ?? -1);
    });
  });
  const records = (): LogRecord[] => out.split('\n').slice(0, -1).map((line) => JSON.parse(line) as LogRecord);
  const waitUntil = async <T>(find: () => T | undefined): Promise<T> => {
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (closed) {
        throw new Error(`the CLI exited (${child.exitCode ?? child.signalCode}) before what was awaited:\n${out}${err}`);
      }
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    records,
    exited,
    waitFor: (match) => waitUntil(() => records().find(match)),
    waitForText: (pattern) => waitUntil(() => pattern.exec(out) ?? undefined),
    stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}

/**
 * Starts the CLI listening on 127.0.0.1, port 0, logging JSON (unless the arguments say otherwise),
 * and resolves once it printed its `listening` record.
 *
 * @param args - more arguments
 */
export async function startCli(args: readonly string[] = []): Promise<CliProcess & { url: string; listening: LogRecord }> {
  const defaults = [
    ...(args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0']),
    ...(args.includes('--log') ? [] : ['--log', 'json']),
  ];
  const cli = spawnCli([...defaults, ...args]);
  const listening = await cli.waitFor((record) => record.msg === 'listening');
  return Object.assign(cli, { url: String(listening.url), listening });
}

/**
 * Runs the CLI to its end.
 *
 * @param args - the command line
 */
export async function runCli(args: readonly string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const cli = spawnCli(args);
  const code = await cli.exited;
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

/** Kills (SIGKILL) what a test started and did not stop. */
export async function killLeftovers(): Promise<void> {
  const left = [...running];
  for (const child of left) child.kill('SIGKILL');
  await Promise.all(left.map((child) => (child.exitCode !== null || child.signalCode !== null ? undefined : once(child, 'close'))));
}

/** A `ws` client, open; messages collected as strings. */
export interface Client {
  ws: WebSocket;
  messages: string[];
  /** Sends a text message and resolves with the next message. */
  ask(text: string): Promise<string>;
  /** Resolves with the close code the client received. */
  closed: Promise<number>;
}

/**
 * Opens a `ws` client.
 *
 * @param url - where
 * @param options - `ws` client options (e.g. `ca` for wss)
 */
export async function connect(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<Client> {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
  const messages: string[] = [];
  const waiting: ((text: string) => void)[] = [];
  ws.on('message', (data) => {
    const text = String(data);
    messages.push(text);
    waiting.shift()?.(text);
  });
  ws.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    closed,
    ask(text) {
      const reply = new Promise<string>((resolve) => waiting.push(resolve));
      ws.send(text);
      return reply;
    },
  };
}

/**
 * Asks for an upgrade that is expected to be refused; resolves with the HTTP status.
 *
 * @param url - where
 * @param headers - request headers
 */
export function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const ws = new WebSocket(url, { perMessageDeflate: false, headers });
  return new Promise<number>((resolve, reject) => {
    ws.once('unexpected-response', (_req: http.ClientRequest, res: http.IncomingMessage) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('unexpectedly upgraded'));
    });
    ws.once('error', () => undefined);
  });
}

/**
 * An upgraded connection at `<url>/stuck` that reads nothing and never answers a close frame: it
 * keeps a drain waiting until it is destroyed.
 *
 * @param url - the proxy's `ws://127.0.0.1:port`
 */
export async function rawConnection(url: string): Promise<net.Socket> {
  const { socket } = await rawUpgradeClient(Number(new URL(url).port), '/stuck');
  socket.on('error', () => undefined);
  return socket;
}

/** A `ws` upstream that answers each message with `<name> <request url>: <message>`. */
export async function namedUpstream(name: string): Promise<{ url: string; close(): Promise<void> }> {
  return startUpstream((ws, req) => {
    ws.on('error', () => undefined);
    ws.on('message', (data) => ws.send(`${name} ${req.url}: ${String(data)}`));
  });
}

/** A temporary directory, removed by the returned function. */
export function tempDir(): { dir: string; write(name: string, text: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'wsp-cli-'));
  return {
    dir,
    write(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A GET: status, content type, body. */
export function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

/**
 * The samples of a Prometheus text exposition: `name{labels}` to value (labels as written).
 *
 * @param text - the exposition
 */
export function samples(text: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    result.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return result;
}
