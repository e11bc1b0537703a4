/**
 * `--workers N`: the primary process of a `node:cluster`. It checks every option once (so a bad one
 * is exit code 2 before any worker starts), forks N workers that each run the proxy on the same
 * port, serves `/metrics` summed over them, restarts a worker that dies (a bounded number of times),
 * and on SIGTERM / SIGINT has every worker drain, then exits.
 *
 * @packageDocumentation
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { ProxyServerOptions } from '../server/options.js';
import type { CliOptions } from './args.js';
import { loadConfig } from './config.js';
import { type MetricsEndpoint, answerHealth, loadPromClient, serveMetrics } from './metrics.js';
import { createServerFromCli, needsEcho, readTls, serverOptions } from './server-options.js';
import { onStopSignals } from './signals.js';

/** What a worker tells the primary. */
export type WorkerMessage =
  | { type: 'wsp:ready'; url: string; routes: string[] }
  | { type: 'wsp:draining' };

/** What the primary tells a worker. */
export type PrimaryMessage = { type: 'wsp:drain'; signal: string };

/**
 * Tells an IPC message of ours of a given type (prom-client's share the channel).
 *
 * @param message - what came
 * @param type - the type wanted
 */
export function isMessage<M extends { type: string }>(message: unknown, type: M['type']): message is M {
  return message !== null && typeof message === 'object' && (message as { type?: unknown }).type === type;
}

/** Restarts allowed within {@link RESTART_WINDOW}; one more and the primary gives up. */
export const MAX_RESTARTS = 5;

/** The window, in ms, over which restarts are counted. */
export const RESTART_WINDOW = 60_000;

/** The longest wait before a restart, ms; the first restart is immediate, then 200, 400... */
const MAX_RESTART_DELAY = 5_000;

/** Time, past `--drain-timeout`, that workers have to exit before they are killed. */
const EXIT_GRACE = 5_000;

/** A placeholder upstream, to check the options in the primary without starting the echo upstream. */
const PLACEHOLDER_UPSTREAM = 'ws://127.0.0.1:9/';

/** What the primary knows of a worker. */
interface WorkerState {
  /** It reported listening. */
  ready: boolean;
  /** It is leaving on its own (a signal sent to it alone): not restarted. */
  leaving: boolean;
}

/**
 * Runs the primary: resolves once the workers are forked; the process then exits from a drain, or
 * when the workers cannot be kept running.
 *
 * @param cli - the command line (the workers parse the same one)
 * @param logger - the primary's logger
 * @param argv - the arguments, handed to the workers as they are
 * @throws UsageError for a bad config, TLS file or server option
 */
export async function runPrimary(cli: CliOptions, logger: Logger, argv: readonly string[]): Promise<void> {
  await checkOptions(cli, logger);
  const workers = new Map<Worker, WorkerState>();
  const restarts: number[] = [];
  let listening = false;
  let draining = false;
  let exitCode = 0;
  let endpoint: MetricsEndpoint | undefined;

  if (cli.metrics !== undefined) {
    const prom = await loadPromClient();
    const aggregator = new prom.AggregatorRegistry();
    endpoint = await serveMetrics(cli.metrics, {
      metrics: () => aggregator.clusterMetrics(),
      contentType: aggregator.contentType,
      health: (_req, res) => {
        const ready = [...workers.values()].some((state) => state.ready && !state.leaving);
        answerHealth(res, !draining && ready, draining ? 'draining' : 'no worker ready');
      },
    });
  }

  // A replacement listens as its peers did (same address and port, 0 included): node:cluster then
  // hands it the primary's shared socket. With port 0, were every worker dead at once, that socket
  // would be closed and the replacements would get a new port.
  const fork = (): void => {
    const worker = cluster.fork();
    workers.set(worker, { ready: false, leaving: false });
  };

  /** Drains every worker, then exits with `code`; `trigger` is the signal, or why. */
  const shutdown = (trigger: string, code: number): void => {
    if (draining) return;
    draining = true;
    exitCode = code;
    const signal = trigger.startsWith('SIG') ? trigger : undefined;
    logger.info({ signal, reason: signal === undefined ? trigger : undefined, timeout: cli.drainTimeout, workers: workers.size }, 'draining');
    for (const [worker, state] of workers) {
      // A worker not yet listening has nothing to drain; it may not even read messages yet.
      if (state.ready && worker.isConnected()) worker.send({ type: 'wsp:drain', signal: signal ?? 'SIGTERM' } satisfies PrimaryMessage);
      else worker.process.kill('SIGTERM');
    }
    setTimeout(() => {
      logger.error({ workers: workers.size }, 'workers did not exit in time: killing them');
      for (const worker of workers.keys()) worker.process.kill('SIGKILL');
    }, cli.drainTimeout + EXIT_GRACE).unref();
    finishIfDone();
  };

  const finishIfDone = (): void => {
    if (workers.size > 0) return;
    void (endpoint?.close() ?? Promise.resolve()).then(() => {
      logger.info({ exitCode }, 'stopped');
      process.exit(exitCode);
    });
  };

  cluster.on('message', (worker, message: unknown) => {
    const state = workers.get(worker);
    if (state === undefined) return;
    if (isMessage<WorkerMessage>(message, 'wsp:draining')) {
      state.leaving = true;
    } else if (isMessage<Extract<WorkerMessage, { type: 'wsp:ready' }>>(message, 'wsp:ready')) {
      state.ready = true;
      if (draining) {
        worker.send({ type: 'wsp:drain', signal: 'SIGTERM' } satisfies PrimaryMessage);
      } else if (!listening && [...workers.values()].every((s) => s.ready)) {
        listening = true;
        logger.info({ url: message.url, routes: message.routes, workers: workers.size, metrics: endpoint?.url }, 'listening');
      }
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    const state = workers.get(worker);
    workers.delete(worker);
    const record = { workerId: worker.id, workerPid: worker.process.pid, code, signal: signal ?? undefined };
    if (draining || state?.leaving === true) {
      logger.info(record, 'worker exited');
      if (code !== 0 && draining) exitCode ||= 1;
      return finishIfDone();
    }
    if (!listening) {
      // A worker failed before they all listened (the port is taken...): others would fail the same way.
      logger.fatal(record, 'worker failed to start');
      return shutdown('worker failed', code === 2 ? 2 : 1);
    }
    logger.error(record, 'worker died');
    const now = Date.now();
    while (restarts.length > 0 && now - restarts[0]! > RESTART_WINDOW) restarts.shift();
    if (restarts.length >= MAX_RESTARTS) {
      logger.fatal({ restarts: restarts.length, window: RESTART_WINDOW }, 'workers keep dying: giving up');
      return shutdown('workers keep dying', 1);
    }
    restarts.push(now);
    const delay = restarts.length === 1 ? 0 : Math.min(100 * 2 ** (restarts.length - 1), MAX_RESTART_DELAY);
    setTimeout(() => {
      // A drain that began meanwhile has nothing to restart.
      if (!draining) fork();
    }, delay);
  });

  onStopSignals(logger, (signal) => shutdown(signal, 0), () => {
    for (const worker of workers.keys()) worker.process.kill('SIGKILL');
  });

  cluster.setupPrimary({ args: [...argv] });
  for (let i = 0; i < cli.workers; i++) fork();
}

/**
 * Checks the config, the TLS files and every server option as a worker will, without starting
 * anything (no echo upstream, no listening).
 */
async function checkOptions(cli: CliOptions, logger: Logger): Promise<void> {
  const file: ProxyServerOptions = cli.config === undefined ? {} : await loadConfig(cli.config);
  const tls = cli.tls === undefined ? undefined : await readTls(cli.tls);
  if (cli.metrics !== undefined) await loadPromClient();
  const echoUrl = needsEcho(cli, file) ? PLACEHOLDER_UPSTREAM : undefined;
  createServerFromCli(serverOptions(cli, file, { logger, echoUrl, tls }), cli);
}
