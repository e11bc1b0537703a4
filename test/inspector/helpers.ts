/**
 * Fixtures of the inspector specs: a ProxyServer in front of an echoing `ws` upstream with an
 * inspector on it, the inspector's API over plain HTTP, and its event stream read with `http.get`.
 * Everything on 127.0.0.1, port 0, released after each test by `releaseAll()`.
 */
import http from 'node:http';
import { type Inspector, type InspectorOptions, type ProxyServer, type ProxyServerOptions, inspector } from '../../src/index.js';
import { type RecordingClient, wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { onCleanup } from '../proxy/rig.js';
import { echoUpstream, listening } from '../server/helpers.js';

/** A started inspector, closed after the test. */
export async function started(options: InspectorOptions = {}): Promise<Inspector> {
  const insp = await inspector(options);
  onCleanup(() => insp.close());
  return insp;
}

/** A proxy server, its echoing upstream and an inspector on it. */
export interface InspectRig {
  server: ProxyServer;
  insp: Inspector;
  /** The inspector's port. */
  port: number;
  /** The proxy's ws URL. */
  url: string;
  /** A client through the proxy, closed after the test. */
  client(path?: string): Promise<RecordingClient>;
}

/** Starts an echo upstream, a ProxyServer in front of it and an inspector on the server. */
export async function inspectRig(options: InspectorOptions = {}, serverOptions: Partial<ProxyServerOptions> = {}): Promise<InspectRig> {
  const upstream = await echoUpstream();
  const { server, url } = await listening({ target: upstream.url, ...serverOptions });
  const insp = await started({ server, ...options });
  return {
    server,
    insp,
    port: insp.address()!.port,
    url,
    async client(path = '/') {
      const client = await wsClient(url + path);
      onCleanup(() => client.ws.terminate());
      return client;
    },
  };
}

/** An HTTP answer: status, headers, raw body, and the body parsed as JSON when it is. */
export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

/**
 * One HTTP request to the inspector.
 *
 * @param port - its port
 * @param method - the method
 * @param path - path and query
 * @param body - a JSON body (sent as application/json)
 * @param headers - more headers
 */
export function call(port: number, method: string, path: string, body?: unknown, headers: http.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({
      host: '127.0.0.1', port, method, path, agent: false,
      headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** One event read from the event stream. */
export interface SseEvent {
  event: string;
  data: any;
}

/** An open event stream. */
export interface SseReader {
  /**
   * The events, each row of a `messages` event as a `message` event of its own, and each connection's
   * counts of a `stats` event as a `stats` event of its own.
   */
  events: SseEvent[];
  /** The events as sent (`messages` whole). */
  raw: SseEvent[];
  res: http.IncomingMessage;
  /** Whether the server ended or cut the response. */
  ended: () => boolean;
  /** Resolves with the first event (from the start) with that name matching `test`. */
  next(event: string, test?: (data: any) => boolean): Promise<any>;
  close(): void;
}

/** Opens `GET /api/events` (`query`: e.g. `?connection=<id>`) and parses what arrives. */
export function sse(port: number, query = ''): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/api/events${query}`, agent: false }, (res) => {
      const events: SseEvent[] = [];
      const raw: SseEvent[] = [];
      let buffered = '';
      let done = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          let event = 'message';
          let data: string | undefined;
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (data === undefined) continue;
          const parsed = JSON.parse(data);
          raw.push({ event, data: parsed });
          if (event === 'messages') for (const row of parsed) events.push({ event: 'message', data: row });
          else if (event === 'stats') for (const stats of parsed) events.push({ event, data: stats });
          else events.push({ event, data: parsed });
        }
      });
      const finish = (): void => {
        done = true;
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
      const reader: SseReader = {
        events,
        raw,
        res,
        ended: () => done,
        async next(event, test = () => true) {
          await waitFor(() => events.some((e) => e.event === event && test(e.data)));
          return events.find((e) => e.event === event && test(e.data))!.data;
        },
        close: () => req.destroy(),
      };
      onCleanup(() => req.destroy());
      resolve(reader);
    });
    req.on('error', reject);
  });
}
