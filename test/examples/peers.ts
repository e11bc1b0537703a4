/**
 * Peers of the example specs: an upstream (a `ws` echo server on 127.0.0.1, ephemeral port) that
 * records each connection (what it received, how it was closed) and the path of each upgrade
 * request, a client whose upgrade is expected to be refused, and the per-test fixture of the specs
 * of the framework examples.
 */
import { WebSocket } from 'ws';
import { echo, startUpstream } from '../helpers/proxy-harness.js';
import { type RecordingClient, recordClient, wsClient } from '../helpers/proxy-peers.js';

/** A running recording upstream. */
export interface RecordingUpstream {
  /** Its `ws://127.0.0.1:<port>/` URL. */
  url: string;
  /** One recorder per connection, in the order the proxy opened them. */
  peers: RecordingClient[];
  /** The path and query of each upgrade request, in the same order. */
  paths: string[];
  /** Ends its connections and stops listening. */
  close(): Promise<void>;
}

/** Starts a {@link RecordingUpstream}. */
export async function recordingUpstream(): Promise<RecordingUpstream> {
  const peers: RecordingClient[] = [];
  const paths: string[] = [];
  const upstream = await startUpstream((ws: WebSocket, req) => {
    peers.push(recordClient(ws));
    paths.push(req.url ?? '');
    echo(ws);
  });
  return { url: `${upstream.url}/`, peers, paths, close: () => upstream.close() };
}

/**
 * Opens a `ws` client that is expected to be refused: resolves with the HTTP status of the answer,
 * rejects if the connection opens.
 */
export function refusedStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve(res.statusCode ?? 0);
    });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error(`${url} opened`));
    });
    ws.on('error', () => undefined);
  });
}

/** A started example: whatever its shape, it can be closed. */
export interface Closable {
  close(): Promise<unknown>;
}

/** The per-test fixture of an example spec, made by {@link exampleRig}. */
export interface ExampleRig<R extends Closable> {
  /** The recording upstream of the running test, fresh for each. */
  readonly upstream: RecordingUpstream;
  /** What the example logged in the running test (through {@link ExampleRig.log}). */
  readonly lines: string[];
  /** Collects a log line: pass it as the example's `log` option. */
  log(line: string): void;
  /** Keeps the started example to close it after the test (after its clients); returns it. */
  own(running: R): R;
  /** Registers a cleanup for the end of the test; cleanups run newest first. */
  onCleanup(fn: () => unknown): void;
  /** Opens a recording `ws` client, terminated at the end of the test. */
  client(url: string): Promise<RecordingClient>;
}

/**
 * Registers, in the calling `describe`, the hooks of an example spec: before each test a fresh
 * {@link RecordingUpstream} and an empty log; after it the cleanups (newest first), then the
 * example, then the upstream.
 */
export function exampleRig<R extends Closable>(): ExampleRig<R> {
  let upstream: RecordingUpstream | undefined;
  let running: R | undefined;
  let lines: string[] = [];
  const cleanups: (() => unknown)[] = [];

  beforeEach(async () => {
    lines = [];
    upstream = await recordingUpstream();
  });

  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
    await running?.close();
    running = undefined;
    await upstream?.close();
  });

  return {
    get upstream() {
      if (upstream === undefined) throw new Error('the upstream starts before each test');
      return upstream;
    },
    get lines() {
      return lines;
    },
    log(line) {
      lines.push(line);
    },
    own(started) {
      running = started;
      return started;
    },
    onCleanup(fn) {
      cleanups.push(fn);
    },
    async client(url) {
      const c = await wsClient(url);
      cleanups.push(() => c.ws.terminate());
      return c;
    },
  };
}
