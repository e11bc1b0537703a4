/**
 * The server's Prometheus metrics: live and total connections by route and outcome, and how long
 * handshakes and connections take. They go on the registry given as `ProxyServerOptions.registry`,
 * beside the `metrics()` stage's; prom-client is loaded only when a registry is given.
 *
 * @packageDocumentation
 */
import { type MetricConfig, type MetricsRegistry, requirePromClient } from '../transforms/metrics.js';

/** Upper bounds of `ws_proxy_handshake_duration_seconds`: 1 ms to 30 s. */
export const HANDSHAKE_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

/** Upper bounds of `ws_proxy_connection_duration_seconds`: 1 s to 1 day. */
export const CONNECTION_DURATION_BUCKETS: readonly number[] = Object.freeze([
  1, 5, 15, 60, 300, 900, 3600, 14400, 86400,
]);

type Labels = Record<string, string>;

interface Gauge {
  inc(labels: Labels, value?: number): void;
  dec(labels: Labels, value?: number): void;
}

interface Counter {
  inc(labels: Labels, value?: number): void;
}

interface Histogram {
  observe(labels: Labels, value: number): void;
}

/** The parts of prom-client used here. */
interface PromClient {
  Gauge: new (config: MetricConfig) => Gauge;
  Counter: new (config: MetricConfig) => Counter;
  Histogram: new (config: MetricConfig) => Histogram;
}

/** What the server counts; a no-op without a registry. @internal */
export interface ServerMetrics {
  /** A connection was upgraded (`101`) on a route. */
  opened(route: string, handshakeSeconds: number): void;
  /** An upgraded connection ended. */
  closed(route: string, seconds: number): void;
  /** A handshake ended without a connection: the HTTP status answered, or `aborted`. */
  refused(route: string, outcome: string, handshakeSeconds: number): void;
}

const NO_METRICS: ServerMetrics = {
  opened() {},
  closed() {},
  refused() {},
};

/**
 * The server's metrics on a registry: created once per registry (servers sharing one registry share
 * the series), or no-ops without one.
 *
 * @param registry - a prom-client `Registry`, or undefined
 * @throws TypeError when a registry is given and prom-client is not installed
 * @internal
 */
export function serverMetrics(registry: MetricsRegistry | undefined): ServerMetrics {
  if (registry === undefined) return NO_METRICS;
  const prom = requirePromClient() as unknown as PromClient;
  const active = existing<Gauge>(registry, 'ws_proxy_connections_active') ?? new prom.Gauge({
    name: 'ws_proxy_connections_active',
    help: 'WebSocket connections open through the proxy',
    labelNames: ['route'],
    registers: [registry],
  });
  const total = existing<Counter>(registry, 'ws_proxy_connections_total') ?? new prom.Counter({
    name: 'ws_proxy_connections_total',
    help: 'Upgrade requests handled, by outcome: 101 for a proxied connection, else the HTTP status answered, or aborted',
    labelNames: ['route', 'outcome'],
    registers: [registry],
  });
  const handshake = existing<Histogram>(registry, 'ws_proxy_handshake_duration_seconds') ?? new prom.Histogram({
    name: 'ws_proxy_handshake_duration_seconds',
    help: 'Time from the upgrade request to the 101 or the refusal, including the upstream handshake',
    labelNames: ['route', 'outcome'],
    buckets: [...HANDSHAKE_DURATION_BUCKETS],
    registers: [registry],
  });
  const duration = existing<Histogram>(registry, 'ws_proxy_connection_duration_seconds') ?? new prom.Histogram({
    name: 'ws_proxy_connection_duration_seconds',
    help: 'Life of proxied connections, from the 101 to both sockets closed',
    labelNames: ['route'],
    buckets: [...CONNECTION_DURATION_BUCKETS],
    registers: [registry],
  });
  return {
    opened(route, seconds) {
      active.inc({ route });
      total.inc({ route, outcome: '101' });
      handshake.observe({ route, outcome: '101' }, seconds);
    },
    closed(route, seconds) {
      active.dec({ route });
      duration.observe({ route }, seconds);
    },
    refused(route, outcome, seconds) {
      total.inc({ route, outcome });
      handshake.observe({ route, outcome }, seconds);
    },
  };
}

function existing<T>(registry: MetricsRegistry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}
