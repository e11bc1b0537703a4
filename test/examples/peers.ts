/**
 * Peers of the example specs: an upstream (a `ws` echo server on 127.0.0.1, ephemeral port) that
 * records each connection (what it received, how it was closed) and the path of each upgrade
 * request, and a client whose upgrade is expected to be refused.
 */
import { WebSocket } from 'ws';
import { echo, startUpstream } from '../helpers/proxy-harness.js';
import { type RecordingClient, recordClient } from '../helpers/proxy-peers.js';

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
