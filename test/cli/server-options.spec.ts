import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { type CliOptions, UsageError, parseCli } from '../../src/cli/args.js';
import { ECHO_ROUTE, createServerFromCli, describeRoutes, needsEcho, readTls, serverOptions } from '../../src/cli/server-options.js';
import type { ProxyServerOptions } from '../../src/server/options.js';
import { LogStage } from '../../src/transforms/log.js';
import type { StageContext } from '../../src/transforms/stage.js';
import { TLS_CERT, TLS_KEY, tempDir } from './helpers.js';

const logger = pino({ level: 'silent' });

/** The UsageError message of createServerFromCli for these options. */
function failure(options: ProxyServerOptions, cli: CliOptions): string {
  try {
    createServerFromCli(options, cli);
  } catch (err) {
    expect(err).to.be.an.instanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('no error');
}

describe('cli/server-options', () => {
  describe('serverOptions', () => {
    it('lays the flags over the config file', () => {
      const file: ProxyServerOptions = { target: 'ws://127.0.0.1:1', maxConnections: 5, idleTimeout: 1000, xForwarded: false };
      const options = serverOptions(parseCli(['--max-connections', '9', '--aggregate']), file, { logger });
      expect(options).to.include({ target: 'ws://127.0.0.1:1', maxConnections: 9, idleTimeout: 1000, xForwarded: false, aggregateFragments: true });
      expect(file.maxConnections, 'the file\'s object is left alone').to.equal(5);
    });

    it('replaces the config\'s target and routes with --upstream or --route', () => {
      const file: ProxyServerOptions = { routes: [{ path: '/a', target: 'ws://127.0.0.1:1' }] };
      const upstream = serverOptions(parseCli(['--upstream', 'ws://127.0.0.1:2']), file, { logger });
      expect(upstream.target).to.equal('ws://127.0.0.1:2');
      expect(upstream).to.not.have.property('routes');
      const routes = serverOptions(parseCli(['--route', '/b=ws://127.0.0.1:3', '--route', '/=ws://127.0.0.1:4']), { target: 'ws://127.0.0.1:1' }, { logger });
      expect(routes.routes).to.deep.equal([{ path: '/b', target: 'ws://127.0.0.1:3' }, { path: '/', target: 'ws://127.0.0.1:4' }]);
      expect(routes).to.not.have.property('target');
    });

    it('routes everything to the echo upstream when nothing else is given', () => {
      const cli = parseCli([]);
      expect(needsEcho(cli, {})).to.equal(true);
      expect(needsEcho(cli, { target: 'ws://x' })).to.equal(false);
      expect(needsEcho(cli, { routes: [] })).to.equal(false);
      expect(needsEcho(parseCli(['--upstream', 'ws://x']), {})).to.equal(false);
      expect(needsEcho(parseCli(['--route', '/=ws://x']), {})).to.equal(false);
      const options = serverOptions(cli, {}, { logger, echoUrl: 'ws://127.0.0.1:5/' });
      expect(options.routes).to.deep.equal([{ path: '/', target: 'ws://127.0.0.1:5/', name: ECHO_ROUTE }]);
    });

    it('adds the logger unless the config has one, the registry, and TLS over the config\'s TLS settings', () => {
      const own = { debug() {}, info() {}, warn() {}, error() {} };
      const registry = new Registry();
      const tls = { cert: Buffer.from('c'), key: Buffer.from('k') };
      const options = serverOptions(parseCli([]), { target: 'ws://x', tls: { cert: 'old', key: 'old', minVersion: 'TLSv1.3' } }, { logger, tls, registry });
      expect(options.logger).to.have.all.keys('debug', 'info', 'warn', 'error');
      expect(options.registry).to.equal(registry);
      expect(options.tls).to.deep.equal({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.3' });
      expect(serverOptions(parseCli([]), { target: 'ws://x', logger: own }, { logger }).logger).to.equal(own);
    });

    it('puts a log() stage first in each direction with --log-frames, before the config\'s stages', () => {
      const context: StageContext = { role: 'client', id: '1', proxy: undefined };
      const theirs = new LogStage({ logger });
      const options = serverOptions(parseCli(['--log-frames']), { target: 'ws://x', transforms: { client: () => [theirs] } }, { logger });
      const client = options.transforms!.client!(context);
      expect(client).to.have.length(2);
      expect(client[0]).to.be.an.instanceOf(LogStage);
      expect(client[1]).to.equal(theirs);
      expect(options.transforms!.upstream!({ ...context, role: 'upstream' })).to.have.length(1);
      expect(serverOptions(parseCli([]), { target: 'ws://x' }, { logger }).transforms).to.equal(undefined);
    });
  });

  describe('createServerFromCli', () => {
    it('creates the server from valid options', () => {
      const server = createServerFromCli({ target: 'ws://127.0.0.1:1' }, parseCli([]));
      expect(server.accepting).to.equal(true);
    });

    it('names the flag or the config file a bad option came from', () => {
      const upstream = parseCli(['--upstream', 'nope']);
      expect(failure(serverOptions(upstream, {}, { logger }), upstream)).to.match(/^--upstream: options\.target.* is not a valid URL: "nope"$/);
      const routes = parseCli(['--route', '/a=ws://127.0.0.1:1', '--route', '/b=mailto:x']);
      expect(failure(serverOptions(routes, {}, { logger }), routes)).to.equal(
        '--route "/b=mailto:x": options.routes[1].target must be a ws:, wss:, http: or https: URL, not mailto:',
      );
      const config = parseCli(['--config', 'proxy.mjs']);
      expect(failure({ target: 'ws://x', authorize: 'yes' as unknown as () => boolean }, config)).to.equal(
        '--config "proxy.mjs": options.authorize must be a function',
      );
      expect(failure({ target: 'ws://x', maxConnections: 0 }, parseCli([]))).to.equal('options.maxConnections must be an integer >= 1 or Infinity');
    });
  });

  describe('readTls', () => {
    it('reads a certificate and its key', async () => {
      const pair = await readTls({ cert: TLS_CERT, key: TLS_KEY });
      expect(pair.cert.equals(readFileSync(TLS_CERT))).to.equal(true);
      expect(pair.key.equals(readFileSync(TLS_KEY))).to.equal(true);
    });

    it('names the flag of a file that cannot be read, and refuses a pair that does not work', async () => {
      const temp = tempDir();
      try {
        const junk = temp.write('junk.pem', 'not a key');
        const cases: [{ cert: string; key: string }, RegExp][] = [
          [{ cert: '/nonexistent.pem', key: TLS_KEY }, /^--tls-cert "\/nonexistent\.pem": cannot read it: no such file$/],
          [{ cert: TLS_CERT, key: temp.dir }, /^--tls-key ".*": cannot read it: EISDIR/],
          [{ cert: TLS_CERT, key: junk }, /^--tls-cert\/--tls-key: not a usable certificate and key: /],
        ];
        for (const [files, message] of cases) {
          const error = await readTls(files).then(() => undefined, (err: unknown) => err);
          expect(error).to.be.an.instanceOf(UsageError);
          expect((error as Error).message).to.match(message);
        }
      } finally {
        temp.remove();
      }
    });
  });

  it('describeRoutes shows each route\'s upstream without credentials nor query', () => {
    expect(describeRoutes({
      routes: [
        { path: '/a', target: 'ws://user:secret@127.0.0.1:8080/x?token=secret' },
        { path: '/b', host: '*.example.com', target: () => 'ws://x' },
        { path: '/', target: 'ws://127.0.0.1:5/', name: ECHO_ROUTE },
      ],
    })).to.deep.equal(['/a -> ws://127.0.0.1:8080/x', '*.example.com/b -> (function)', '/ -> ws://127.0.0.1:5/ (built-in echo)']);
    expect(describeRoutes({ target: new URL('wss://h/p?q') })).to.deep.equal(['/ -> wss://h/p']);
  });
});
