import { expect } from 'chai';
import { pino } from 'pino';
import { logServerEvents, withFrameLog } from '../../src/cli/events.js';
import { type ProxyServer, createProxyServer } from '../../src/server/proxy-server.js';
import type { ProxyServerOptions } from '../../src/server/options.js';
import { filter } from '../../src/transforms/filter.js';
import { LogStage } from '../../src/transforms/log.js';
import { type LogRecord, connect, namedUpstream, refusedStatus } from './helpers.js';

/** A server whose events are logged as JSON into an array. */
async function loggedServer(options: ProxyServerOptions): Promise<{ server: ProxyServer; url: string; records: LogRecord[]; until(msg: string): Promise<LogRecord> }> {
  const records: LogRecord[] = [];
  const waiting: (() => void)[] = [];
  const logger = pino({ level: 'info', base: {} }, {
    write(line: string) {
      records.push(JSON.parse(line) as LogRecord);
      for (const wake of waiting.splice(0)) wake();
    },
  });
  const server = createProxyServer({ ...options, transforms: withFrameLog(options.transforms, logger, false) });
  logServerEvents(server, logger);
  const { port } = await server.listen(0, '127.0.0.1');
  return {
    server,
    url: `ws://127.0.0.1:${port}`,
    records,
    async until(msg) {
      for (;;) {
        const found = records.find((record) => record.msg === msg);
        if (found !== undefined) return found;
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
    },
  };
}

describe('cli/events', () => {
  it('logs a connection when it opens and when it closes, without the query', async () => {
    const upstream = await namedUpstream('up');
    const { server, url, until, records } = await loggedServer({ routes: [{ path: '/chat', target: upstream.url, name: 'chat' }] });
    try {
      const client = await connect(`${url}/chat/room?token=secret`);
      expect(await client.ask('hi')).to.equal('up /room?token=secret: hi');
      client.ws.close(1000, 'bye');
      await client.closed;
      const opened = await until('connection');
      const closed = await until('close');
      expect(opened).to.include({ level: 30, route: 'chat', path: '/chat/room' });
      expect(opened.id).to.be.a('string');
      expect(opened.remote).to.match(/^127\.0\.0\.1:\d+$/);
      expect(closed).to.include({ id: opened.id, route: 'chat', remote: opened.remote, closedBy: 'client' });
      expect(closed).to.not.have.property('error');
      expect(closed.duration).to.be.a('number');
      expect(closed.client).to.deep.equal({ frames: 2, bytes: 2 + 3, closeReceived: 1000, closeSent: 1000 });
      expect(closed.upstream).to.deep.equal({ frames: 2, bytes: 'up /room?token=secret: hi'.length + 3, closeReceived: 1000, closeSent: 1000 });
      const frames = records.filter((record) => record.msg === 'frame');
      expect(frames.map((record) => `${String(record.from)}:${String(record.type)}`)).to.include.members(['client:text', 'upstream:text', 'client:close']);
      expect(frames.every((record) => record.payload === undefined && record.id === opened.id)).to.equal(true);
      expect(JSON.stringify(records)).to.not.include('secret');
    } finally {
      await server.close({ timeout: 100 });
      await upstream.close();
    }
  });

  it('logs refusals with their outcome, and errors of hooks', async () => {
    const { server, url, until, records } = await loggedServer({
      routes: [{ path: '/in', target: 'ws://127.0.0.1:9' }],
      authorize: () => {
        throw new Error('the hook broke');
      },
    });
    try {
      expect(await refusedStatus(`${url}/out?x=1`)).to.equal(404);
      expect(await refusedStatus(`${url}/in`)).to.equal(500);
      await until('error');
      const refusals = records.filter((record) => record.msg === 'refuse');
      expect(refusals[0]).to.include({ outcome: 404, reason: 'No route for this path', path: '/out' });
      expect(refusals[0]).to.not.have.property('route');
      expect(refusals[1]).to.include({ outcome: 500, route: '/in', path: '/in' });
      const error = records.find((record) => record.msg === 'error')!;
      expect(error).to.include({ level: 50, path: '/in' });
      expect((error.err as { message: string }).message).to.equal('the hook broke');
    } finally {
      await server.close({ timeout: 100 });
    }
  });

  it('withFrameLog keeps transforms the server will reject as they are', () => {
    const logger = pino({ level: 'silent' });
    const notAFactory = { client: [filter(() => true)] } as unknown as ProxyServerOptions['transforms'];
    expect(withFrameLog(notAFactory, logger, false)!.client).to.equal(notAFactory!.client);
    const stages = withFrameLog(undefined, logger, true)!.upstream!({ role: 'upstream', id: '1', proxy: undefined });
    expect(stages).to.have.length(1);
    expect(stages[0]).to.be.an.instanceOf(LogStage);
  });
});
