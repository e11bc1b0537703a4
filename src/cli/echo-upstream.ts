/**
 * The built-in echo upstream of the zero-configuration demo (`npm start`): a `ws` server on an
 * ephemeral loopback port that sends every message back as it came. Only the CLI without an
 * upstream loads this module (by dynamic import), so `ws`'s server is never loaded otherwise.
 *
 * @packageDocumentation
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/** A running echo upstream. */
export interface EchoUpstream {
  /** Its `ws://127.0.0.1:<port>/` URL. */
  readonly url: string;
  /** Cuts the connections it still holds and stops listening. */
  close(): Promise<void>;
}

/**
 * Starts the echo upstream on 127.0.0.1, on a port the system picks. It accepts any path and
 * query, and no compression (the proxy relays frames as they are).
 *
 * @returns the running server
 */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  const server = createServer();
  // Exclusive: in a cluster worker a plain listen() would share one port among all the workers'
  // echo servers, through the primary; each worker keeps its own.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, resolve);
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    // A proxy that goes away mid-message must not crash the demo.
    ws.on('error', ignore);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.close(() => resolve());
      }),
  };
}

function ignore(): void {}
