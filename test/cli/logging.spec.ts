import { expect } from 'chai';
import { createLogger, prettyLine, proxyLogger } from '../../src/cli/logging.js';
import { connect, killLeftovers, namedUpstream, refusedStatus, spawnCli, startCli } from './helpers.js';

/** A sink collecting lines. */
function sink(): { lines: string[]; write(line: string): void } {
  const lines: string[] = [];
  return { lines, write: (line) => void lines.push(line) };
}

describe('cli/logging', () => {
  afterEach(killLeftovers);

  describe('createLogger', () => {
    it('writes one JSON object a line: level by name, ISO time, pid, base fields', () => {
      const out = sink();
      const logger = createLogger({ format: 'json', level: 'info', base: { worker: 3 } }, out);
      logger.info({ url: 'ws://x' }, 'listening');
      logger.debug('not at info');
      expect(out.lines).to.have.length(1);
      const record = JSON.parse(out.lines[0]!) as Record<string, unknown>;
      expect(record).to.include({ level: 'info', pid: process.pid, worker: 3, url: 'ws://x', msg: 'listening' });
      expect(new Date(String(record.time)).toISOString()).to.equal(record.time);
      expect(record).to.not.have.property('hostname');
    });

    it('writes pretty lines from the same records', () => {
      const out = sink();
      const logger = createLogger({ format: 'pretty', level: 'debug' }, out);
      logger.info({ url: 'ws://127.0.0.1:9000', routes: ['/ -> ws://u/'] }, 'listening');
      logger.debug({ id: '1', client: { frames: 2, closeReceived: 1000 } }, 'close');
      expect(out.lines[0]).to.match(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO  listening on ws:\/\/127\.0\.0\.1:9000 routes="\/ -> ws:\/\/u\/"\n$/);
      expect(out.lines[1]).to.match(/^\[[\d:.]+\] DEBUG close id=1 client\.frames=2 client\.closeReceived=1000\n$/);
    });
  });

  describe('prettyLine', () => {
    const time = '2026-01-02T03:04:05.678Z';
    it('shows the process, quotes what needs quoting, and an error\'s stack', () => {
      const err = new Error('it broke');
      const line = prettyLine({ level: 'error', time, pid: 1, worker: 2, msg: 'error', path: '/a b', reason: '', n: null, err: { message: err.message, stack: err.stack } }, false);
      const [first, ...stack] = line.trimEnd().split('\n');
      expect(first).to.match(/^\[[\d:.]+\] ERROR \[worker 2\] error path="\/a b" reason="" n=null err="it broke"$/);
      expect(stack.length).to.be.greaterThan(0);
      expect(stack.every((frame) => frame.startsWith('    at '))).to.equal(true);
      expect(prettyLine({ level: 'info', time, pid: 1, role: 'primary', msg: 'stopped', text: 'a\nb' }, false)).to.match(/\] INFO  \[primary\] stopped text="a\\nb"\n$/);
      expect(prettyLine({ level: 'info', time, msg: 'try it', command: 'node -e "x"' }, false)).to.match(/\] INFO  try it: node -e "x"\n$/);
    });

    it('colors the level only when asked', () => {
      expect(prettyLine({ level: 'warn', time, msg: 'careful' }, true)).to.include('\x1b[33mWARN \x1b[0m careful');
      expect(prettyLine({ level: 'warn', time, msg: 'careful' }, false)).to.not.include('\x1b');
    });
  });

  it('proxyLogger sends the proxy\'s info lines to debug, keeps its warnings and errors', () => {
    const out = sink();
    const logger = proxyLogger(createLogger({ format: 'json', level: 'debug' }, out));
    logger.info('forwarding close');
    logger.warn('careful');
    logger.error('broken');
    expect(out.lines.map((line) => JSON.parse(line) as Record<string, unknown>).map((r) => `${String(r.level)}:${String(r.component)}:${String(r.msg)}`)).to.deep.equal([
      'debug:proxy:forwarding close', 'warn:proxy:careful', 'error:proxy:broken',
    ]);
  });

  describe('the running CLI', () => {
    it('with --log json, prints nothing but JSON lines, on stdout and stderr, and no frame, query or credential', async () => {
      const upstream = await namedUpstream('up');
      const target = upstream.url.replace('ws://', 'ws://user:hunter2@') + '/base?key=s3cret';
      try {
        const cli = await startCli(['--upstream', target, '--allowed-origin', 'https://ok.example']);
        const client = await connect(`${cli.url}/x?token=t0ken`, { origin: 'https://ok.example' });
        expect(await client.ask('hello')).to.equal('up /base/x?key=s3cret&token=t0ken: hello');
        expect(await refusedStatus(`${cli.url}/y?token=t0ken`, { origin: 'https://evil.example' })).to.equal(403);
        client.ws.close();
        await client.closed;
        await cli.waitFor((record) => record.msg === 'close');
        await cli.waitFor((record) => record.msg === 'refuse');
        expect(await cli.stop('SIGTERM')).to.equal(0);
        const lines = `${cli.stdout()}${cli.stderr()}`.split('\n').filter((line) => line !== '');
        const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
        expect(records.map((record) => record.msg)).to.include.ordered.members(['listening', 'connection', 'refuse', 'close', 'draining', 'drained']);
        expect(records.every((record) => typeof record.level === 'string' && typeof record.time === 'string' && record.pid === cli.child.pid)).to.equal(true);
        expect(records.map((record) => record.msg)).to.not.include('frame');
        for (const secret of ['hunter2', 's3cret', 't0ken', 'hello']) expect(cli.stdout()).to.not.include(secret);
        expect(cli.listening.routes).to.deep.equal([`/ -> ${upstream.url}/base`]);
      } finally {
        await upstream.close();
      }
    });

    it('logs frames with --log-frames, and their payloads, cut to 256 bytes, only with --log-payloads', async () => {
      const big = 'é'.repeat(200);
      const [frames, payloads] = await Promise.all([startCli(['--log-frames']), startCli(['--log-payloads'])]);
      for (const cli of [frames, payloads]) {
        const client = await connect(cli.url);
        expect(await client.ask('hello')).to.equal('hello');
        expect(await client.ask(big)).to.equal(big);
        client.ws.close(1000);
        await client.closed;
        await cli.waitFor((record) => record.msg === 'close');
      }
      const data = (cli: typeof frames) => cli.records().filter((record) => record.msg === 'frame' && record.type === 'text');
      expect(data(frames).map((record) => `${String(record.from)}:${String(record.size)}`)).to.deep.equal(['client:5', 'upstream:5', 'client:400', 'upstream:400']);
      expect(data(frames).every((record) => record.level === 'info' && !('payload' in record))).to.equal(true);
      const withPayloads = data(payloads);
      expect(withPayloads.map((record) => record.payload)).to.deep.equal(['hello', 'hello', 'é'.repeat(128), 'é'.repeat(128)]);
      expect(withPayloads.map((record) => record.truncated)).to.deep.equal([undefined, undefined, true, true]);
      const close = frames.records().find((record) => record.msg === 'frame' && record.type === 'close');
      expect(close).to.include({ from: 'client', code: 1000 });
      await Promise.all([frames.stop(), payloads.stop()]);
    });

    it('prints pretty lines with --log pretty, the listening line first', async () => {
      const cli = spawnCli(['--listen', '127.0.0.1:0', '--log', 'pretty']);
      const [, url] = await cli.waitForText(/listening on (ws:\/\/127\.0\.0\.1:\d+) /);
      expect(cli.stdout()).to.match(/^\[[\d:.]+\] INFO  listening on ws:\/\/127\.0\.0\.1:\d+ routes="\/ -> ws:\/\/127\.0\.0\.1:\d+\/ \(built-in echo\)"\n/);
      const client = await connect(url!);
      client.ws.close();
      await cli.waitForText(/INFO {2}close id=\S+ route=echo remote=127\.0\.0\.1:\d+ duration=\d+ closedBy=client/);
      expect(await cli.stop('SIGINT')).to.equal(0);
      expect(cli.stdout()).to.match(/INFO {2}draining signal=SIGINT timeout=10000 connections=0\n/);
    });
  });
});
