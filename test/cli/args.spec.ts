import { expect } from 'chai';
import { DEFAULT_DRAIN_TIMEOUT, FLAG_OF_OPTION, UsageError, formatHostPort, parseCli, requestedLogFormat } from '../../src/cli/args.js';

/** The UsageError message `parseCli` throws for these arguments. */
function failure(...argv: string[]): string {
  try {
    parseCli(argv);
  } catch (err) {
    expect(err).to.be.an.instanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
}

describe('cli/args', () => {
  describe('parseCli', () => {
    it('has the documented defaults', () => {
      expect(parseCli([])).to.deep.equal({
        help: false,
        version: false,
        listen: { host: '127.0.0.1', port: 9000 },
        upstream: undefined,
        routes: [],
        config: undefined,
        tls: undefined,
        overrides: {},
        drainTimeout: DEFAULT_DRAIN_TIMEOUT,
        metrics: undefined,
        log: 'json',
        logLevel: 'info',
        logFrames: false,
        logPayloads: false,
        workers: 1,
        record: undefined,
        recordMaxBytes: undefined,
        inspect: undefined,
        inspectToken: undefined,
      });
      expect(parseCli([], true).log).to.equal('pretty');
    });

    it('reads --record DIR and --record-max-bytes as a size of at least 1K, only with --record', () => {
      expect(parseCli(['--record', 'recs', '--record-max-bytes', '10M'])).to.include({ record: 'recs', recordMaxBytes: 10 * 1024 * 1024 });
      expect(parseCli(['--record', 'recs']).recordMaxBytes).to.equal(undefined);
      expect(() => parseCli(['--record-max-bytes', '1M'])).to.throw(UsageError, '--record-max-bytes needs --record DIR');
      expect(() => parseCli(['--record', 'r', '--record-max-bytes', '100'])).to.throw(UsageError, '--record-max-bytes: expected at least 1024 bytes, got "100"');
      expect(() => parseCli(['--record', 'r', '--record-max-bytes', 'lots'])).to.throw(UsageError, '--record-max-bytes: expected a size in bytes');
      expect(() => parseCli(['--record', ''])).to.throw(UsageError, '--record: expected a value, got ""');
    });

    it('reads --inspect HOST:PORT and its token (flag, or WSP_INSPECT_TOKEN); a token off loopback, one process, its own address', () => {
      expect(parseCli(['--inspect', '127.0.0.1:9229'], false, {})).to.deep.include({ inspect: { host: '127.0.0.1', port: 9229 }, inspectToken: undefined });
      expect(parseCli(['--inspect', '0.0.0.0:9229', '--inspect-token', 's3cret'], false, {}).inspectToken).to.equal('s3cret');
      expect(parseCli(['--inspect', '0.0.0.0:9229'], false, { WSP_INSPECT_TOKEN: 'from-env' }).inspectToken).to.equal('from-env');
      expect(parseCli(['--inspect', '[::1]:0'], false, {}).inspect).to.deep.equal({ host: '::1', port: 0 });
      expect(() => parseCli(['--inspect', '0.0.0.0:9229'], false, {})).to.throw(UsageError, '--inspect: 0.0.0.0 is not a loopback address: give --inspect-token (or WSP_INSPECT_TOKEN)');
      expect(() => parseCli(['--inspect-token', 'x'], false, {})).to.throw(UsageError, '--inspect-token needs --inspect HOST:PORT');
      expect(() => parseCli(['--inspect', '127.0.0.1:9229', '--workers', '2'], false, {})).to.throw(UsageError, 'cannot be used with --workers');
      expect(() => parseCli(['--inspect', '127.0.0.1:9000'], false, {})).to.throw(UsageError, '--inspect: must differ from --listen, both are 127.0.0.1:9000');
      expect(() => parseCli(['--inspect', 'nope'], false, {})).to.throw(UsageError, '--inspect: expected host:port, got "nope"');
    });

    it('reads --listen and --metrics as host:port, IPv6 in brackets, port 0 allowed', () => {
      expect(parseCli(['--listen', '0.0.0.0:0']).listen).to.deep.equal({ host: '0.0.0.0', port: 0 });
      expect(parseCli(['--listen', '[::1]:8080']).listen).to.deep.equal({ host: '::1', port: 8080 });
      expect(parseCli(['--listen=localhost:65535']).listen).to.deep.equal({ host: 'localhost', port: 65535 });
      expect(parseCli(['--metrics', '127.0.0.1:9100']).metrics).to.deep.equal({ host: '127.0.0.1', port: 9100 });
      for (const bad of ['x', '9000', ':9000', 'host:', 'host:65536', 'host:-1', 'host:9x', '[::1:9000', '[]:1', '[zz]:1', 'a b:1']) {
        expect(failure('--listen', bad).startsWith(`--listen: expected host:port, got ${JSON.stringify(bad)}`), bad).to.equal(true);
      }
      expect(failure('--listen', '::1:9000')).to.equal('--listen: expected host:port, got "::1:9000" (an IPv6 address goes in brackets: [::1]:9000)');
      expect(failure('--metrics', '127.0.0.1:9000')).to.equal('--metrics: must differ from --listen, both are 127.0.0.1:9000');
    });

    it('reads --route as PATH=URL, in order, splitting at the first "="', () => {
      expect(parseCli(['--route', '/chat/:room=ws://h:1/rooms/:room?a=b', '--route', '/=ws://h:2']).routes).to.deep.equal([
        { path: '/chat/:room', target: 'ws://h:1/rooms/:room?a=b' },
        { path: '/', target: 'ws://h:2' },
      ]);
      for (const bad of ['chat=ws://h', '/chat', '/chat=']) {
        expect(failure('--route', bad)).to.equal(`--route: expected PATH=URL (e.g. /api=ws://127.0.0.1:8080), got ${JSON.stringify(bad)}`);
      }
      expect(failure('--upstream', 'ws://a', '--route', '/=ws://b')).to.equal('--upstream and --route are exclusive: give one upstream, or routes');
    });

    it('sets an override only for each flag given, mapped to its server option', () => {
      const { overrides } = parseCli([
        '--aggregate', '--max-frame-size', '64K', '--upstream-max-frame-size', '2MiB', '--max-connections', '100',
        '--max-connections-per-ip', '10', '--handshake-timeout', '5000', '--connect-timeout', '3000', '--idle-timeout', '60000',
        '--ping-interval', '30000', '--pong-timeout', '10000', '--allowed-origin', 'https://a.example', '--allowed-origin', 'http://b.example:8080',
      ]);
      expect(overrides).to.deep.equal({
        aggregateFragments: true,
        clientMaxFrameSize: 65536,
        upstreamMaxFrameSize: 2 * 1024 * 1024,
        maxConnections: 100,
        maxConnectionsPerIp: 10,
        handshakeTimeout: 5000,
        connectTimeout: 3000,
        idleTimeout: 60000,
        pingInterval: 30000,
        pongTimeout: 10000,
        allowedOrigins: ['https://a.example', 'http://b.example:8080'],
      });
      expect(parseCli(['--idle-timeout', '1']).overrides).to.deep.equal({ idleTimeout: 1 });
      for (const option of Object.keys(overrides)) expect(FLAG_OF_OPTION[option], option).to.be.a('string');
    });

    it('takes sizes in bytes or with K/M/G, durations as integer ms, counts as integers >= 1', () => {
      expect(parseCli(['--max-frame-size', '1']).overrides.clientMaxFrameSize).to.equal(1);
      expect(parseCli(['--max-frame-size', '1g']).overrides.clientMaxFrameSize).to.equal(1024 ** 3);
      for (const bad of ['0', '-1', '1.5', '1X', 'K', '', '99999999999999999999']) {
        expect(failure(`--max-frame-size=${bad}`), bad).to.match(/^--max-frame-size: expected a size in bytes/);
      }
      for (const bad of ['0', '1.5', '1s', '2147483648', '-5']) {
        expect(failure(`--connect-timeout=${bad}`), bad).to.match(/^--connect-timeout: expected milliseconds, an integer from 1 to 2147483647/);
      }
      expect(parseCli(['--drain-timeout', '0']).drainTimeout).to.equal(0);
      expect(failure('--drain-timeout', 'soon')).to.equal('--drain-timeout: expected milliseconds, an integer from 0 to 2147483647, got "soon"');
      expect(failure('--max-connections', '0')).to.equal('--max-connections: expected an integer from 1, got "0"');
      expect(parseCli(['--workers', '4']).workers).to.equal(4);
      expect(failure('--workers', '1025')).to.equal('--workers: expected an integer from 1 to 1024, got "1025"');
    });

    it('checks --allowed-origin as an origin, or *', () => {
      expect(parseCli(['--allowed-origin', '*']).overrides.allowedOrigins).to.deep.equal(['*']);
      expect(parseCli(['--allowed-origin', 'https://App.example.com/']).overrides.allowedOrigins).to.deep.equal(['https://App.example.com/']);
      for (const bad of ['example.com', 'https://a.example/path', 'https://a.example?x', 'null', 'file:///x']) {
        expect(failure('--allowed-origin', bad), bad).to.match(/^--allowed-origin: expected an origin like https:\/\/app\.example\.com, or \*/);
      }
    });

    it('needs --tls-cert and --tls-key together', () => {
      expect(parseCli(['--tls-cert', 'c.pem', '--tls-key', 'k.pem']).tls).to.deep.equal({ cert: 'c.pem', key: 'k.pem' });
      expect(failure('--tls-cert', 'c.pem')).to.equal('--tls-cert needs --tls-key: give both or neither');
      expect(failure('--tls-key', 'k.pem')).to.equal('--tls-key needs --tls-cert: give both or neither');
    });

    it('reads the log flags; --log-payloads implies --log-frames', () => {
      expect(parseCli(['--log', 'pretty', '--log-level', 'debug'])).to.include({ log: 'pretty', logLevel: 'debug', logFrames: false });
      expect(parseCli(['--log-frames'])).to.include({ logFrames: true, logPayloads: false });
      expect(parseCli(['--log-payloads'])).to.include({ logFrames: true, logPayloads: true });
      expect(failure('--log', 'xml')).to.equal('--log: expected json or pretty, got "xml"');
      expect(failure('--log-level', 'loud')).to.equal('--log-level: expected one of trace, debug, info, warn, error, fatal, silent, got "loud"');
    });

    it('names the flag of every parseArgs error, and refuses a flag given twice', () => {
      expect(failure('--bogus')).to.equal('unknown option "--bogus"');
      expect(failure('-x')).to.equal('unknown option "-x"');
      expect(failure('--listen')).to.match(/^--listen: expected a value/);
      expect(failure('--aggregate=yes')).to.equal('--aggregate: takes no value');
      expect(failure('stray')).to.equal('unexpected argument "stray": every option is a --flag');
      expect(failure('--config', '')).to.equal('--config: expected a value, got ""');
      expect(failure('--upstream', 'ws://a', '--upstream', 'ws://b')).to.equal('--upstream: given more than once');
      expect(parseCli(['--route', '/a=ws://a', '--route', '/b=ws://b']).routes).to.have.length(2);
    });

    it('reads --help and --version', () => {
      expect(parseCli(['--help'])).to.include({ help: true, version: false });
      expect(parseCli(['-h'])).to.include({ help: true });
      expect(parseCli(['--version'])).to.include({ version: true });
    });
  });

  describe('requestedLogFormat', () => {
    it('finds --log even in a command line that does not parse, else the terminal default', () => {
      expect(requestedLogFormat(['--bogus', '--log', 'pretty'])).to.equal('pretty');
      expect(requestedLogFormat(['--log=pretty', '--bogus'])).to.equal('pretty');
      expect(requestedLogFormat(['--bogus'], true)).to.equal('pretty');
      expect(requestedLogFormat(['--bogus'], false)).to.equal('json');
      expect(requestedLogFormat(['--log', 'xml'], false)).to.equal('json');
      expect(requestedLogFormat(['--', '--log', 'pretty'], false)).to.equal('json');
    });
  });

  it('formatHostPort puts IPv6 literals in brackets', () => {
    expect(formatHostPort({ host: '::1', port: 1 })).to.equal('[::1]:1');
    expect(formatHostPort({ host: '127.0.0.1', port: 0 })).to.equal('127.0.0.1:0');
  });
});
