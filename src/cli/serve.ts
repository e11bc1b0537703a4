/**
 * One proxying process: the CLI without `--workers`, or one cluster worker. It loads the config,
 * starts the echo upstream when there is no other, creates and starts the server, logs its events,
 * and drains it on SIGTERM / SIGINT (or, in a worker, when the primary asks).
 *
 * @packageDocumentation
 */
import type { Logger } from 'pino';
import type { Inspector } from '../inspector/index.js';
import type { ProxyServer } from '../server/proxy-server.js';
import { type CliOptions, formatHostPort } from './args.js';
import { type PrimaryMessage, type WorkerMessage, isMessage } from './cluster.js';
import { loadConfig } from './config.js';
import type { EchoUpstream } from './echo-upstream.js';
import { logServerEvents } from './events.js';
import { type MetricsEndpoint, answerHealth, loadPromClient, processRegistry, serveMetrics } from './metrics.js';
import { createServerFromCli, describeRoutes, needsEcho, readTls, serverOptions } from './server-options.js';
import { prepareRecordDir } from './record.js';
import { onStopSignals } from './signals.js';

/**
 * Runs the proxy until it is stopped: resolves once it listens (the process then lives on its
 * servers, and exits from the drain).
 *
 * @param cli - the command line
 * @param logger - the process's logger
 * @param worker - whether this is a cluster worker (no `/metrics` of its own; reports to the primary)
 * @throws UsageError for a bad config, TLS file or server option; Error when it cannot listen
 */
export async function serve(cli: CliOptions, logger: Logger, worker: boolean): Promise<void> {
  // Until the server runs there is nothing to drain: a stop then just exits.
  let stop = (_signal: string): void => process.exit(0);
  onStopSignals(logger, (signal) => {
    if (worker) send({ type: 'wsp:draining' });
    stop(signal);
  });
  if (worker) {
    process.on('message', (message: unknown) => {
      if (isMessage<PrimaryMessage>(message, 'wsp:drain')) stop(message.signal);
    });
  }

  const file = cli.config === undefined ? {} : await loadConfig(cli.config);
  const tls = cli.tls === undefined ? undefined : await readTls(cli.tls);
  const prom = cli.metrics === undefined ? undefined : await loadPromClient();
  if (cli.record !== undefined) await prepareRecordDir(cli.record);
  const echo = needsEcho(cli, file) ? await startEcho() : undefined;
  const registry = prom === undefined ? undefined : processRegistry(prom, worker);
  const options = serverOptions(cli, file, { logger, echoUrl: echo?.url, tls, registry });
  const server = createServerFromCli(options, cli);
  logServerEvents(server, logger);

  let endpoint: MetricsEndpoint | undefined;
  if (cli.metrics !== undefined && registry !== undefined && !worker) {
    endpoint = await serveMetrics(cli.metrics, {
      metrics: () => registry.metrics(),
      contentType: registry.contentType,
      health: (req, res) => {
        if (!server.handleRequest(req, res)) answerHealth(res, server.accepting, 'draining');
      },
    });
  }
  const address = await server.listen(cli.listen.port, cli.listen.host).catch((err: Error) => {
    throw new Error(`cannot listen on ${formatHostPort(cli.listen)}: ${err.message}`);
  });
  const url = `${options.tls === undefined ? 'ws' : 'wss'}://${formatHostPort({ host: address.address, port: address.port })}`;
  const page = cli.inspect === undefined ? undefined : await startInspector(server, cli);
  const routes = describeRoutes(options);
  if (worker) {
    logger.info({ url, routes }, 'worker ready');
    send({ type: 'wsp:ready', url, routes });
  } else {
    logger.info({ url, routes, metrics: endpoint?.url, inspector: page?.shown }, 'listening');
    if (echo !== undefined) logger.info({ command: tryItCommand(url) }, 'try it');
  }

  stop = (signal) => {
    stop = () => undefined;
    drain(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.fatal({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };

  async function drain(signal: string): Promise<void> {
    logger.info({ signal, timeout: cli.drainTimeout, connections: server.connections.length }, 'draining');
    const result = await server.close({ timeout: cli.drainTimeout, code: 1001 });
    await Promise.all([echo?.close(), endpoint?.close(), page?.inspector.close()]);
    logger.info({ ...result }, 'drained');
  }
}

/**
 * Starts the inspector page on the server; its modules are loaded only now. The URL logged leaves
 * the token out: logs travel further than a terminal.
 */
async function startInspector(server: ProxyServer, cli: CliOptions): Promise<{ inspector: Inspector; shown: string }> {
  const { inspector } = await import('../inspector/index.js');
  const { host, port } = cli.inspect!;
  const running = await inspector({ server, host, port, ...(cli.inspectToken === undefined ? {} : { token: cli.inspectToken }) }).catch((err: Error) => {
    throw new Error(`cannot serve the inspector on ${formatHostPort(cli.inspect!)}: ${err.message}`);
  });
  // The page's URL, with the token's value left out.
  const shown = cli.inspectToken === undefined ? running.url : running.url.replace(/\?token=.*$/, '?token=...');
  return { inspector: running, shown };
}

/** Starts the echo upstream; its module (and `ws`'s server) is loaded only now. */
async function startEcho(): Promise<EchoUpstream> {
  const { startEchoUpstream } = await import('./echo-upstream.js');
  return startEchoUpstream();
}

/** A one-liner that sends a message through the demo and prints the echo. */
function tryItCommand(url: string): string {
  return `node -e "const ws = new (require('ws'))('${url}/'); ws.on('open', () => ws.send('hello')); ws.on('message', (m) => { console.log(String(m)); ws.close(); })"`;
}

function send(message: WorkerMessage): void {
  process.send?.(message);
}
