import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createProxyServer } from '../../src/index.js';
import { serverMetrics } from '../../src/server/metrics.js';
import { wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { releaseAll } from '../proxy/rig.js';
import { echoUpstream, listening, upgradeTo } from './helpers.js';

/** The value of one series in prom-client's text format, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('server/metrics', () => {
  afterEach(releaseAll);

  it('counts connections by route and outcome, live connections and durations, on the given registry', async () => {
    const registry = new Registry();
    const upstream = await echoUpstream();
    const { server, url, port } = await listening({ routes: [{ path: '/chat', target: upstream.url, name: 'chat' }], registry });
    const client = await wsClient(`${url}/chat`);
    await waitFor(() => server.connections.length === 1);
    let text = await registry.metrics();
    expect(sample(text, 'ws_proxy_connections_active{route="chat"}')).to.equal(1);
    expect(sample(text, 'ws_proxy_connections_total{route="chat",outcome="101"}')).to.equal(1);
    expect(sample(text, 'ws_proxy_handshake_duration_seconds_count{route="chat",outcome="101"}')).to.equal(1);
    expect((await upgradeTo(port, '/other')).statusCode).to.equal(404);
    client.ws.close();
    await client.closed;
    await waitFor(() => server.connections.length === 0);
    text = await registry.metrics();
    expect(sample(text, 'ws_proxy_connections_active{route="chat"}')).to.equal(0);
    expect(sample(text, 'ws_proxy_connections_total{route="",outcome="404"}')).to.equal(1);
    expect(sample(text, 'ws_proxy_connection_duration_seconds_count{route="chat"}')).to.equal(1);
  });

  it('shares the series between servers on one registry, and needs none without one', () => {
    const registry = new Registry();
    createProxyServer({ target: 'ws://127.0.0.1:1', registry });
    createProxyServer({ target: 'ws://127.0.0.1:1', registry });
    expect(registry.getMetricsAsArray().map((m) => m.name)).to.have.members([
      'ws_proxy_connections_active',
      'ws_proxy_connections_total',
      'ws_proxy_handshake_duration_seconds',
      'ws_proxy_connection_duration_seconds',
    ]);
    const none = serverMetrics(undefined);
    expect(() => none.opened('x', 1)).not.to.throw();
    expect(() => createProxyServer({ target: 'ws://127.0.0.1:1', registry: {} as never })).to.throw(TypeError, 'options.registry must be a prom-client Registry');
  });
});
