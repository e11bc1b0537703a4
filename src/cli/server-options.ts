/**
 * From the command line and the config file to a `ProxyServer`: flags override the file, the TLS
 * files are read and checked, frame logging and the CLI's logger are added, and the server's own
 * validation has the last word, its `TypeError` turned into a usage error that names the flag or
 * the file the bad value came from.
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { loggableUrl } from '../proxy/handshake.js';
import type { ProxyServerOptions } from '../server/options.js';
import { type ProxyServer, createProxyServer } from '../server/proxy-server.js';
import type { MetricsRegistry } from '../transforms/metrics.js';
import { type CliOptions, FLAG_OF_OPTION, UsageError } from './args.js';
import { withFrameLog } from './events.js';
import { proxyLogger } from './logging.js';
import { withRecording } from './record.js';

/** A certificate and key, read. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** What the CLI adds to the options besides the flags. */
export interface Additions {
  /** The CLI's logger: the proxy's `logger` (unless the config has one) and frame records. */
  logger: Logger;
  /**
   * The echo upstream's URL, when it serves as the upstream.
   * @defaultValue none (the routes come from the flags or the config)
   */
  echoUrl?: string;
  /**
   * `--tls-cert` / `--tls-key`, read.
   * @defaultValue none (the config's `tls`, if any)
   */
  tls?: TlsPair;
  /**
   * The registry `--metrics` serves.
   * @defaultValue none (no metrics)
   */
  registry?: MetricsRegistry;
}

/** The route name of the built-in echo upstream (in logs and metrics). */
export const ECHO_ROUTE = 'echo';

/**
 * Whether the built-in echo upstream is the upstream: no `--upstream`, no `--route`, and neither
 * `routes` nor `target` in the config.
 *
 * @param cli - the command line
 * @param file - the config's options
 */
export function needsEcho(cli: CliOptions, file: ProxyServerOptions): boolean {
  return cli.upstream === undefined && cli.routes.length === 0 && file.routes === undefined && file.target === undefined;
}

/**
 * Reads `--tls-cert` and `--tls-key` and checks that they make a TLS context (PEM, a key that
 * matches the certificate).
 *
 * @param files - the paths
 * @throws UsageError naming the flag: a file that cannot be read, or a pair that does not work
 */
export async function readTls(files: { cert: string; key: string }): Promise<TlsPair> {
  const read = (flag: string, path: string): Promise<Buffer> =>
    readFile(path).catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`${flag} ${JSON.stringify(path)}: cannot read it: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
  const [cert, key] = await Promise.all([read('--tls-cert', files.cert), read('--tls-key', files.key)]);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new UsageError(`--tls-cert/--tls-key: not a usable certificate and key: ${(err as Error).message}`);
  }
  return { cert, key };
}

/**
 * The server's options: the config's, then the flags over them. `--upstream` and `--route` replace
 * the config's `target` and `routes`; without either, the echo upstream is the one route.
 *
 * @param cli - the command line
 * @param file - the config's options (`{}` without `--config`)
 * @param additions - logger, echo URL, TLS, registry
 */
export function serverOptions(cli: CliOptions, file: ProxyServerOptions, additions: Additions): ProxyServerOptions {
  const options: ProxyServerOptions = { ...file, ...cli.overrides };
  if (cli.upstream !== undefined) {
    delete options.routes;
    options.target = cli.upstream;
  } else if (cli.routes.length > 0) {
    delete options.target;
    options.routes = cli.routes.map(({ path, target }) => ({ path, target }));
  } else if (additions.echoUrl !== undefined) {
    options.routes = [{ path: '/', target: additions.echoUrl, name: ECHO_ROUTE }];
  }
  if (additions.tls !== undefined) {
    const fromFile = file.tls !== null && typeof file.tls === 'object' ? file.tls : {};
    options.tls = { ...fromFile, ...additions.tls };
  }
  if (cli.logFrames) options.transforms = withFrameLog(file.transforms, additions.logger, cli.logPayloads);
  if (cli.record !== undefined) options.transforms = withRecording(options.transforms, cli.record, cli.recordMaxBytes);
  if (file.logger === undefined) options.logger = proxyLogger(additions.logger);
  if (additions.registry !== undefined) options.registry = additions.registry;
  return options;
}

/**
 * Creates the server. A `TypeError` of its validation becomes a {@link UsageError} saying where the
 * value came from: `--upstream: options.target is not a valid URL: "x"`,
 * `--config "proxy.mjs": options.authorize must be a function`.
 *
 * @param options - from {@link serverOptions}
 * @param cli - the command line
 * @throws UsageError for an invalid option
 */
export function createServerFromCli(options: ProxyServerOptions, cli: CliOptions): ProxyServer {
  try {
    return createProxyServer(options);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const source = sourceOf(err.message, cli);
    throw new UsageError(source === undefined ? err.message : `${source}: ${err.message}`);
  }
}

/**
 * The routes as the `listening` record shows them: `path -> upstream`, without the upstream URL's
 * credentials and query.
 *
 * @param options - the server's options
 */
export function describeRoutes(options: ProxyServerOptions): string[] {
  const routes = options.routes ?? (options.target === undefined ? [] : [{ path: '/', target: options.target }]);
  return routes.map((route) => {
    const where = route.host === undefined ? route.path : `${route.host}${route.path}`;
    const target = typeof route.target === 'function' ? '(function)' : loggableUrl(route.target);
    return `${where} -> ${target}${route.name === ECHO_ROUTE ? ' (built-in echo)' : ''}`;
  });
}

/** The flag or file that set the option an error message names. */
function sourceOf(message: string, cli: CliOptions): string | undefined {
  const match = /options\.([A-Za-z]+)(?:\[(\d+)\])?/.exec(message);
  const key = match?.[1];
  if (key === 'target' && cli.upstream !== undefined) return '--upstream';
  if (key === 'routes' && cli.routes.length > 0) {
    const route = cli.routes[Number(match?.[2] ?? 0)];
    return route === undefined ? '--route' : `--route ${JSON.stringify(`${route.path}=${route.target}`)}`;
  }
  if (key === 'tls' && cli.tls !== undefined) return FLAG_OF_OPTION.tls;
  if (key !== undefined && key in cli.overrides) return FLAG_OF_OPTION[key];
  return cli.config === undefined ? undefined : `--config ${JSON.stringify(cli.config)}`;
}
