import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { WebSocket } from 'ws';
import { type RunningProxy, start } from '../../examples/redact-metrics-validate.js';
import { echo, startUpstream } from '../helpers/proxy-harness.js';
import { type RecordingClient, recordClient, until, wsClient } from '../helpers/proxy-peers.js';
import { turns } from '../proxy/rig.js';

/** The value of one series in Prometheus text output, or undefined when it is not listed. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('examples/redact-metrics-validate', () => {
  let running: RunningProxy | undefined;
  let lines: string[];
  const cleanups: (() => unknown)[] = [];

  beforeEach(() => {
    lines = [];
  });

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

  /** An echo upstream of the test's own, that records each connection as the proxy reaches it. */
  async function recordingUpstream(): Promise<{ url: string; peers: RecordingClient[] }> {
    const peers: RecordingClient[] = [];
    const upstream = await startUpstream((ws: WebSocket) => {
      peers.push(recordClient(ws));
      echo(ws);
    });
    cleanups.push(() => upstream.close());
    return { url: `${upstream.url}/`, peers };
  }

  it('echoes a valid chat message (built-in echo upstream) with the password, the token and the card number redacted', async () => {
    running = await start({ log: (line) => lines.push(line) });
    const c = await client(running.url);
    c.ws.send(JSON.stringify({ user: 'ann', text: 'my card is 4111111111111111, ok?', password: 'hunter2', token: 'abc.def' }));
    await c.waitMessages(1);
    expect(JSON.parse(c.messages[0] as string)).to.deep.equal({
      user: 'ann', text: 'my card is [REDACTED], ok?', password: '[REDACTED]', token: '[REDACTED]',
    });
  });

  it('forwards a valid message with nothing to redact byte for byte', async () => {
    running = await start({ log: (line) => lines.push(line) });
    const c = await client(running.url);
    const original = '{ "user": "bob",  "text": "order 123456789012345 (15 digits)" }';
    c.ws.send(original);
    await c.waitMessages(1);
    expect(c.messages).to.deep.equal([original]);
  });

  for (const [what, message] of [
    ['text that is not JSON', 'hello'],
    ['a user that is not a string', '{"user":42,"text":"hi"}'],
    ['a missing text', '{"user":"ann"}'],
    ['a property the schema does not list', '{"user":"ann","text":"hi","admin":true}'],
  ] as const) {
    it(`closes the client with 1007 and the upstream with 1001 on ${what}, which never reaches the upstream`, async () => {
      const upstream = await recordingUpstream();
      running = await start({ upstream: upstream.url, log: (line) => lines.push(line) });
      const c = await client(running.url);
      c.ws.send('{"user":"ann","text":"first","password":"pw"}');
      await c.waitMessages(1);
      c.ws.send(message);
      const closed = await c.closed;
      expect(closed.code).to.equal(1007);
      expect(closed.reason).to.match(/^message failed validation/);
      const peer = upstream.peers[0]!;
      expect((await peer.closed).code).to.equal(1001);
      expect(peer.messages).to.deep.equal(['{"user":"ann","text":"first","password":"[REDACTED]"}']);
      await running.close();
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/closed by proxy, WSP_ERR_VALIDATION_FAILED/);
    });
  }

  it('serves GET /metrics: text frames counted per side over all connections, not the refused one', async () => {
    running = await start({ log: (line) => lines.push(line) });
    const a = await client(running.url);
    const b = await client(running.url);
    for (const [c, n] of [[a, 2], [b, 3]] as const) {
      for (let i = 0; i < n; i++) c.ws.send(JSON.stringify({ user: 'u', text: `message ${i}` }));
      await c.waitMessages(n);
    }
    const refused = await client(running.url);
    refused.ws.send('not json');
    expect((await refused.closed).code).to.equal(1007);
    await until(() => lines.length === 1);

    const res = await fetch(running.metricsUrl);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal(new Registry().contentType);
    const text = await res.text();
    expect(sample(text, 'ws_proxy_frames_total{from="client",type="text"}')).to.equal(5);
    expect(sample(text, 'ws_proxy_frames_total{from="upstream",type="text"}')).to.equal(5);
    // The server's own series, on the same registry: three upgrades, two connections still open.
    expect(sample(text, 'ws_proxy_connections_total{route="/",outcome="101"}')).to.equal(3);
    expect(sample(text, 'ws_proxy_connections_active{route="/"}')).to.equal(2);
  });

  it('answers 404 to other HTTP requests', async () => {
    running = await start({ log: (line) => lines.push(line) });
    const res = await fetch(running.metricsUrl.replace('/metrics', '/'));
    expect(res.status).to.equal(404);
    await res.text();
  });

  it('survives a client that resets its connection while the upstream is being connected', async () => {
    // An upstream that accepts TCP connections and never answers the handshake.
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    running = await start({ upstream: `ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}/`, log: (line) => lines.push(line) });
    const raw = net.connect(Number(new URL(running.url).port), '127.0.0.1');
    await once(raw, 'connect');
    raw.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await until(() => held.length === 1);
    raw.resetAndDestroy();
    // The reset reaches the proxy's socket now: unhandled, its 'error' would fail this test.
    await turns(50);
    held[0]!.destroy();
    await until(() => lines.length === 1);
    expect(lines[0]).to.match(/not proxied/);
  });

  it('close() ends the live connections with 1001 and logs how each ended', async () => {
    running = await start({ log: (line) => lines.push(line) });
    const c = await client(running.url);
    c.ws.send('{"user":"ann","text":"hi"}');
    await c.waitMessages(1);
    await running.close();
    expect((await c.closed).code).to.equal(1001);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/closed by proxy, cleanly/);
  });
});
