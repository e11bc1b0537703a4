/**
 * The `ws-frame-proxy` command: parses the command line, then runs one proxying process, or the
 * primary of `--workers` (whose workers run this same command).
 *
 * @packageDocumentation
 */
import cluster from 'node:cluster';
// Only what --help, --version and a bad command line need is loaded up front: they answer at once.
import { type CliOptions, UsageError, parseCli, requestedLogFormat } from './args.js';
import { USAGE, printUsageError } from './usage.js';
import { packageVersion } from '../version.js';

/**
 * Runs the command. It returns once the proxy runs (the process then lives on its servers) or
 * after `--help` / `--version`; a start-up failure exits the process: 2 for a bad option, config or
 * TLS file, 1 for anything else (a port already taken).
 *
 * @param argv - the arguments after the script
 */
export async function main(argv: readonly string[]): Promise<void> {
  const isTTY = process.stdout.isTTY === true;
  let cli: CliOptions;
  try {
    cli = parseCli(argv, isTTY);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    printUsageError(requestedLogFormat(argv, isTTY), err.message);
    return process.exit(2);
  }
  if (cli.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (cli.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }

  const role = cli.workers === 1 ? 'single' : cluster.isPrimary ? 'primary' : 'worker';
  const { createLogger } = await import('./logging.js');
  const logger = createLogger({
    format: cli.log,
    level: cli.logLevel,
    color: isTTY && process.env.NO_COLOR === undefined,
    base: role === 'primary' ? { role } : role === 'worker' ? { worker: cluster.worker?.id } : {},
  });
  if (cli.log === 'json') {
    // Node prints process warnings (deprecations...) on stderr through a default 'warning' listener:
    // as records instead, so that every line stays JSON.
    process.removeAllListeners('warning');
    process.on('warning', (warning) => logger.warn({ err: warning }, 'node warning'));
  }
  // Hooks and stages of a config run in this process: a failure they leave uncaught ends it, logged.
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason instanceof Error ? reason : new Error(String(reason)) }, 'unhandled rejection');
    process.exit(1);
  });

  try {
    if (role === 'primary') await (await import('./cluster.js')).runPrimary(cli, logger, argv);
    else await (await import('./serve.js')).serve(cli, logger, role === 'worker');
  } catch (err) {
    if (err instanceof UsageError) {
      printUsageError(cli.log, err.message);
      return process.exit(2);
    }
    logger.fatal({ err }, 'cannot start');
    return process.exit(1);
  }
}

