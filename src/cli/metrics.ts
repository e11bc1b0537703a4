/**
 * `--metrics HOST:PORT`: Prometheus `/metrics` and `/healthz` on their own port. prom-client, an
 * optional peer dependency, is loaded only with the flag. With `--workers`, each worker keeps its
 * registry and the primary serves them summed (prom-client's `AggregatorRegistry`).
 *
 * @packageDocumentation
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { type HostPort, UsageError, formatHostPort } from './args.js';

/** The prom-client module. */
export type PromClient = typeof import('prom-client');

/** What the endpoint serves. */
export interface MetricsSource {
  /** The exposition text. */
  metrics(): Promise<string>;
  /** Its content type. */
  readonly contentType: string;
  /** Answers `/healthz`: 200 while serving, 503 while draining. */
  health(req: IncomingMessage, res: ServerResponse): void;
}

/** A listening metrics endpoint. */
export interface MetricsEndpoint {
  /** `http://host:port`. */
  readonly url: string;
  /** Stops it, cutting open requests. */
  close(): Promise<void>;
}

/**
 * Loads prom-client.
 *
 * @throws UsageError telling how to install it when it is missing
 */
export async function loadPromClient(): Promise<PromClient> {
  try {
    return await import('prom-client');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new UsageError('--metrics needs prom-client, an optional peer dependency: npm install prom-client');
    }
    throw err;
  }
}

/**
 * The registry of a process that proxies: the server's metrics go there, beside Node's default
 * metrics (`process_*`, `nodejs_*`). In a worker it is also what the primary's aggregation asks for.
 *
 * @param prom - prom-client
 * @param worker - whether this is a cluster worker
 */
export function processRegistry(prom: PromClient, worker: boolean): Registry {
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry });
  if (worker) {
    prom.AggregatorRegistry.setRegistries([registry]);
    // Constructing one is what makes prom-client answer the primary's requests in a worker.
    new prom.AggregatorRegistry();
  }
  return registry;
}

/**
 * Serves `GET /metrics` and `/healthz`; any other path is 404.
 *
 * @param address - where to listen
 * @param source - the metrics and the health check
 * @returns the endpoint, once listening
 * @throws Error when it cannot listen (the address is taken)
 */
export async function serveMetrics(address: HostPort, source: MetricsSource): Promise<MetricsEndpoint> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/healthz') return source.health(req, res);
    if (path !== '/metrics') return answer(res, 404, 'not found: try /metrics or /healthz\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'GET only\n');
    source.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': source.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => answer(res, 500, `cannot collect the metrics: ${(err as Error)?.message ?? String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    throw new Error(`--metrics: cannot listen on ${formatHostPort(address)}: ${err.message}`);
  });
  const bound = server.address() as AddressInfo;
  return {
    url: `http://${formatHostPort({ host: bound.address, port: bound.port })}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The health answer of the cluster primary, which has no server of its own.
 *
 * @param res - the response
 * @param ok - whether it serves (not draining, a worker listening)
 * @param why - the body when not ok
 */
export function answerHealth(res: ServerResponse, ok: boolean, why: string): void {
  answer(res, ok ? 200 : 503, ok ? 'ok\n' : `${why}\n`);
}

function answer(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}
