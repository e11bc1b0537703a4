import { expect } from 'chai';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { WebSocket } from 'ws';
import { type RunningProxy, dropHeartbeats, stamp, start } from '../../examples/custom-stage.js';
import { type Frame, closeFrame, continuationFrame, textFrame } from '../../src/frame.js';
import type { Stage } from '../../src/transforms/stage.js';
import { echo, startUpstream } from '../helpers/proxy-harness.js';
import { type RecordingClient, recordClient, wsClient } from '../helpers/proxy-peers.js';

/** Runs frames through a stage on its own and collects what comes out. */
async function run(stage: Stage, frames: Frame[]): Promise<Frame[]> {
  const out: Frame[] = [];
  await pipeline(Readable.from(frames), stage as Duplex, async (source: AsyncIterable<Frame>) => {
    for await (const frame of source) out.push(frame);
  });
  return out;
}

interface Stamped {
  _meta: { conn: string; seq: number; serverTime: string };
  [key: string]: unknown;
}

describe('examples/custom-stage', () => {
  let running: RunningProxy | undefined;
  const cleanups: (() => unknown)[] = [];

  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
    await running?.close();
    running = undefined;
  });

  async function client(url: string): Promise<RecordingClient> {
    const c = await wsClient(url);
    cleanups.push(() => c.ws.terminate());
    return c;
  }

  const quiet = (): void => undefined;

  describe('through the proxy', () => {
    it('stamps each JSON object from the upstream with the connection id and a sequence number from 1', async () => {
      running = await start({ log: quiet });
      const c = await client(running.url);
      for (const n of [10, 20, 30]) c.ws.send(JSON.stringify({ n }));
      await c.waitMessages(3);
      const stamped = c.messages.map((m) => JSON.parse(m as string) as Stamped);
      expect(stamped.map((s) => s['n'])).to.deep.equal([10, 20, 30]);
      expect(stamped.map((s) => s._meta.seq)).to.deep.equal([1, 2, 3]);
      const conn = stamped[0]!._meta.conn;
      expect(conn).to.be.a('string').and.not.equal('');
      expect(stamped.map((s) => s._meta.conn)).to.deep.equal([conn, conn, conn]);
      for (const s of stamped) expect(new Date(s._meta.serverTime).toISOString()).to.equal(s._meta.serverTime);
    });

    it('counts per connection: another connection starts again at 1, under its own id', async () => {
      running = await start({ log: quiet });
      const a = await client(running.url);
      const b = await client(running.url);
      a.ws.send('{"from":"a"}');
      await a.waitMessages(1);
      b.ws.send('{"from":"b"}');
      await b.waitMessages(1);
      a.ws.send('{"from":"a"}');
      await a.waitMessages(2);
      const seen = (c: RecordingClient): Stamped[] => c.messages.map((m) => JSON.parse(m as string) as Stamped);
      expect(seen(a).map((s) => s._meta.seq)).to.deep.equal([1, 2]);
      expect(seen(b).map((s) => s._meta.seq)).to.deep.equal([1]);
      expect(seen(a)[0]!._meta.conn).to.not.equal(seen(b)[0]!._meta.conn);
    });

    it('passes text that is not a JSON object unchanged, without using up a sequence number', async () => {
      running = await start({ log: quiet });
      const c = await client(running.url);
      c.ws.send('hello');
      c.ws.send('"a JSON string"');
      c.ws.send('{"after":true}');
      await c.waitMessages(3);
      expect(c.messages.slice(0, 2)).to.deep.equal(['hello', '"a JSON string"']);
      expect((JSON.parse(c.messages[2] as string) as Stamped)._meta.seq).to.equal(1);
    });

    it('drops the client\'s "ping" heartbeats before the upstream and forwards everything else', async () => {
      const reached: RecordingClient[] = [];
      const upstream = await startUpstream((ws: WebSocket) => {
        reached.push(recordClient(ws));
        echo(ws);
      });
      cleanups.push(() => upstream.close());
      running = await start({ upstream: `${upstream.url}/`, log: quiet });
      const c = await client(running.url);
      c.ws.send('ping');
      c.ws.send('{"n":1}');
      c.ws.send('ping');
      c.ws.send('ping!');
      await c.waitMessages(2);
      expect(reached[0]!.messages).to.deep.equal(['{"n":1}', 'ping!']);
      expect((JSON.parse(c.messages[0] as string) as Stamped)._meta.seq).to.equal(1);
      expect(c.messages[1]).to.equal('ping!');
      c.ws.close(1000, 'bye');
      // The close frame went through the heartbeat stage too: the upstream saw the client's own.
      expect(await reached[0]!.closed).to.deep.equal({ code: 1000, reason: 'bye' });
    });
  });

  it('runs on the server ProxyServer.listen() creates: 426 to plain HTTP, the health check at /healthz', async () => {
    running = await start({ log: quiet });
    const base = running.url.replace(/^ws/, 'http');
    const plain = await fetch(base);
    expect(plain.status).to.equal(426);
    await plain.text();
    const health = await fetch(`${base}healthz`);
    expect([health.status, await health.text()]).to.deep.equal([200, 'ok\n']);
  });

  describe('on their own', () => {
    it('stamp() uses the clock it is given and the context of its stage', async () => {
      const out = await run(stamp(() => new Date(0)), [textFrame('{"a":1}'), textFrame('[1]'), textFrame('{"b":2}')]);
      expect(out.map((f) => JSON.parse(f.payload.toString()) as unknown)).to.deep.equal([
        { a: 1, _meta: { conn: '', seq: 1, serverTime: '1970-01-01T00:00:00.000Z' } },
        [1],
        { b: 2, _meta: { conn: '', seq: 2, serverTime: '1970-01-01T00:00:00.000Z' } },
      ]);
    });

    it('dropHeartbeats() drops only whole one-frame heartbeats, never a fragment nor a control frame', async () => {
      const frames = [textFrame('ping'), textFrame('ping', false), continuationFrame(' me'), textFrame('pong'), closeFrame(1000)];
      const out = await run(dropHeartbeats(), frames);
      expect(out).to.deep.equal(frames.slice(1));
    });

    it('dropHeartbeats() takes another word', async () => {
      const out = await run(dropHeartbeats('hb'), [textFrame('hb'), textFrame('ping')]);
      expect(out.map((f) => f.payload.toString())).to.deep.equal(['ping']);
    });
  });
});
