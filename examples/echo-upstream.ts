/**
 * A stand-in upstream for the examples: a `ws` server on 127.0.0.1 (ephemeral port) that sends every
 * message back as it came, so that an example runs with nothing else started.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/** A running echo server. */
export interface EchoUpstream {
  /** Its `ws://127.0.0.1:<port>/` URL. */
  url: string;
  /** Ends every connection it holds and stops listening. */
  close(): Promise<void>;
}

/** Starts an echo server on 127.0.0.1, on a port the system picks. */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  wss.on('connection', (ws) => {
    // A peer that vanishes mid-message is not worth crashing the example for.
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}
