/**
 * Loopback fixtures for the handshake tests: listening on port 0, raw HTTP exchanges, the TLS
 * fixture certificate and a helper that expects a promise to reject.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

/** The fixture certificate and key (test/fixtures/tls), for localhost, 127.0.0.1 and ::1. */
export const tls = {
  cert: readFileSync(new URL('../../../test/fixtures/tls/cert.pem', import.meta.url)),
  key: readFileSync(new URL('../../../test/fixtures/tls/key.pem', import.meta.url)),
};

/** Listens on `host`, port 0, and returns the port. */
export async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Tracks every connection a server accepts, so that `closeServer` can destroy them. */
export function trackSockets(server: net.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  server.on('connection', track);
  server.on('secureConnection', track);
  return sockets;
}

/** Destroys the connections of a server and closes it. */
export async function closeServer(server: net.Server, sockets?: Set<Duplex>): Promise<void> {
  for (const socket of sockets ?? []) socket.destroy();
  if ('closeAllConnections' in server) (server as HttpServer).closeAllConnections();
  if (!server.listening) return;
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port on 127.0.0.1 that nothing listens on (listened on, then closed). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await closeServer(server);
  return port;
}

/** Awaits `promise`, which must reject, and returns the rejection reason. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** What a raw HTTP exchange received. */
export interface RawExchange {
  /** Everything received, decoded as latin1. */
  text: string;
  /** Whether the server ended the connection (FIN received). */
  ended: boolean;
}

/**
 * Sends `request` over a new TCP connection to 127.0.0.1:`port` and collects the answer until the
 * connection closes.
 */
export async function rawExchange(port: number, request: string): Promise<RawExchange> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let ended = false;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('end', () => {
    ended = true;
  });
  socket.on('error', () => {});
  socket.write(request);
  await once(socket, 'close');
  return { text: Buffer.concat(chunks).toString('latin1'), ended };
}

/** Splits a raw HTTP response into its status line, headers (lower-case names, in order) and body. */
export function parseResponse(text: string): { statusLine: string; headers: Array<[string, string]>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const headerPart = end === -1 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = headerPart.split('\r\n');
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  });
  return { statusLine, headers, body: end === -1 ? '' : text.slice(end + 4) };
}

/** The values of one header in a {@link parseResponse} result. */
export function headerValues(headers: Array<[string, string]>, name: string): string[] {
  return headers.filter(([key]) => key === name).map(([, value]) => value);
}
