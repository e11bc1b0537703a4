import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { CLI, TLS_CERT, connect, killLeftovers, runCli, startCli } from './cli/helpers.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('cli (the ws-frame-proxy bin)', () => {
  afterEach(killLeftovers);

  it('is the bin entry of package.json', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { bin: Record<string, string> };
    expect(CLI.endsWith(manifest.bin['ws-frame-proxy']!.replace(/^dist/, ''))).to.equal(true);
    expect(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).to.equal(true);
  });

  it('--version prints the version of package.json and exits 0', async () => {
    const { code, stdout, stderr } = await runCli(['--version']);
    expect(code).to.equal(0);
    expect(stdout).to.equal(`${version}\n`);
    expect(stderr).to.equal('');
  });

  it('--help (and -h) prints the usage with every option and exits 0', async () => {
    const [long, short] = await Promise.all([runCli(['--help']), runCli(['-h'])]);
    expect(long.code).to.equal(0);
    expect(short.stdout).to.equal(long.stdout);
    expect(long.stdout).to.match(/^Usage: ws-frame-proxy \[options\]/);
    for (const flag of [
      '--listen', '--upstream', '--route', '--config', '--tls-cert', '--tls-key', '--aggregate', '--max-frame-size',
      '--upstream-max-frame-size', '--max-connections', '--max-connections-per-ip', '--handshake-timeout',
      '--connect-timeout', '--idle-timeout', '--ping-interval', '--pong-timeout', '--drain-timeout', '--allowed-origin',
      '--metrics', '--log', '--log-level', '--log-frames', '--log-payloads', '--workers', '--version',
    ]) {
      expect(long.stdout, flag).to.include(`  ${flag}`);
    }
  });

  describe('a bad command line exits 2 at once, with one line naming the flag and a hint on stderr', () => {
    const cases: [string, string[], string][] = [
      ['an upstream that is not a URL (the server\'s own check)', ['--upstream', 'not-a-url'], 'ws-frame-proxy: --upstream: options.target'],
      ['an unknown flag', ['--bogus'], 'ws-frame-proxy: unknown option "--bogus"'],
      ['a bad --listen', ['--listen', 'x'], 'ws-frame-proxy: --listen: expected host:port, got "x"'],
      ['an IPv6 --listen without brackets', ['--listen', '::1:9000'], 'ws-frame-proxy: --listen: expected host:port, got "::1:9000" (an IPv6 address goes in brackets'],
      ['a certificate without a key', ['--tls-cert', TLS_CERT], 'ws-frame-proxy: --tls-cert needs --tls-key: give both or neither'],
      ['an unreadable certificate', ['--tls-cert', '/nonexistent/cert.pem', '--tls-key', TLS_CERT], 'ws-frame-proxy: --tls-cert "/nonexistent/cert.pem": cannot read it: no such file'],
      ['a missing config file', ['--config', 'missing.json'], 'ws-frame-proxy: --config "missing.json": cannot read it: no such file'],
      ['--upstream with --route', ['--upstream', 'ws://127.0.0.1:1', '--route', '/a=ws://127.0.0.1:2'], 'ws-frame-proxy: --upstream and --route are exclusive'],
      ['a bad route target', ['--route', '/a=ftp://x'], 'ws-frame-proxy: --route "/a=ftp://x": options.routes[0].target must be a ws:, wss:, http: or https: URL, not ftp:'],
      ['a size that is not one', ['--max-frame-size', '1X'], 'ws-frame-proxy: --max-frame-size: expected a size in bytes'],
      ['a duration that is not one', ['--idle-timeout', '1.5'], 'ws-frame-proxy: --idle-timeout: expected milliseconds'],
      ['no workers', ['--workers', '0'], 'ws-frame-proxy: --workers: expected an integer from 1 to 1024, got "0"'],
      ['a flag given twice', ['--listen', '127.0.0.1:1', '--listen', '127.0.0.1:2'], 'ws-frame-proxy: --listen: given more than once'],
    ];
    it('for each case', async () => {
      const results = await Promise.all(cases.map(([, args]) => runCli(['--log', 'pretty', ...args])));
      results.forEach(({ code, stdout, stderr }, i) => {
        const [name, , message] = cases[i]!;
        expect(code, name).to.equal(2);
        expect(stdout, name).to.equal('');
        const lines = stderr.split('\n');
        expect(lines[0], name).to.include(message);
        expect(lines.slice(1), name).to.deep.equal(["Try 'ws-frame-proxy --help' for the options.", '']);
      });
    });

    it('as one JSON record on stderr with --log json (the default when stdout is not a terminal)', async () => {
      const { code, stdout, stderr } = await runCli(['--listen', 'x']);
      expect(code).to.equal(2);
      expect(stdout).to.equal('');
      const lines = stderr.trimEnd().split('\n');
      expect(lines).to.have.length(1);
      expect(JSON.parse(lines[0]!)).to.include({ level: 'fatal', msg: '--listen: expected host:port, got "x"', exitCode: 2 });
    });
  });

  it('with no upstream, proxies to the built-in echo upstream (npm start), then drains on SIGTERM and exits 0', async () => {
    const cli = await startCli();
    expect(cli.url).to.match(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(cli.listening.routes).to.have.length(1);
    expect(String((cli.listening.routes as string[])[0])).to.match(/^\/ -> ws:\/\/127\.0\.0\.1:\d+\/ \(built-in echo\)$/);
    const client = await connect(`${cli.url}/anything?x=1`);
    expect(await client.ask('hello through the proxy')).to.equal('hello through the proxy');
    client.ws.close(1000);
    expect(await client.closed).to.equal(1000);
    await cli.waitFor((record) => record.msg === 'close');
    expect(await cli.stop('SIGTERM')).to.equal(0);
    expect(cli.records().map((record) => record.msg)).to.include.members(['connection', 'close', 'draining', 'drained']);
  });
});
