import { expect } from 'chai';
import * as prom from 'prom-client';
import { answerHealth, loadPromClient, processRegistry, serveMetrics } from '../../src/cli/metrics.js';
import { connect, get, killLeftovers, rawConnection, samples, startCli } from './helpers.js';

describe('cli/metrics', () => {
  afterEach(killLeftovers);

  it('loads prom-client; a process registry holds Node\'s default metrics', async () => {
    const loaded = await loadPromClient();
    expect(loaded.Registry).to.equal(prom.Registry);
    const registry = processRegistry(loaded, false);
    expect(samples(await registry.metrics()).has('process_cpu_user_seconds_total')).to.equal(true);
  });

  it('serves /metrics with the registry\'s content type, /healthz, and 404 elsewhere', async () => {
    const registry = new prom.Registry();
    new prom.Counter({ name: 'made_up_total', help: 'x', registers: [registry] }).inc(3);
    let healthy = true;
    const endpoint = await serveMetrics({ host: '127.0.0.1', port: 0 }, {
      metrics: () => registry.metrics(),
      contentType: registry.contentType,
      health: (_req, res) => answerHealth(res, healthy, 'draining'),
    });
    try {
      expect(endpoint.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      const metrics = await get(`${endpoint.url}/metrics`);
      expect(metrics.status).to.equal(200);
      expect(metrics.type).to.equal(registry.contentType);
      expect(samples(metrics.body).get('made_up_total')).to.equal(3);
      expect(await get(`${endpoint.url}/healthz`)).to.include({ status: 200, body: 'ok\n' });
      healthy = false;
      expect(await get(`${endpoint.url}/healthz`)).to.include({ status: 503, body: 'draining\n' });
      expect((await get(`${endpoint.url}/other`)).status).to.equal(404);
    } finally {
      await endpoint.close();
    }
  });

  it('--metrics serves the server\'s metrics and Node\'s, and /healthz from the server\'s state', async () => {
    const cli = await startCli(['--metrics', '127.0.0.1:0']);
    const metricsUrl = String(cli.listening.metrics);
    expect(metricsUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = await connect(`${cli.url}/a`);
    expect(await client.ask('x')).to.equal('x');
    const scraped = await get(`${metricsUrl}/metrics`);
    expect(scraped.type).to.equal(prom.Registry.PROMETHEUS_CONTENT_TYPE);
    const values = samples(scraped.body);
    expect(values.get('ws_proxy_connections_total{route="echo",outcome="101"}')).to.equal(1);
    expect(values.get('ws_proxy_connections_active{route="echo"}')).to.equal(1);
    expect(values.has('process_cpu_user_seconds_total')).to.equal(true);
    expect(await get(`${metricsUrl}/healthz`)).to.include({ status: 200 });

    // While it drains (a client that never answers the close keeps it draining) /healthz says 503.
    const stuck = await rawConnection(cli.url);
    await cli.waitFor((record) => record.msg === 'connection' && record.path === '/stuck');
    cli.child.kill('SIGTERM');
    await cli.waitFor((record) => record.msg === 'draining');
    expect(await client.closed).to.equal(1001);
    expect((await get(`${metricsUrl}/healthz`)).status).to.equal(503);
    stuck.destroy();
    expect(await cli.exited).to.equal(0);
  });
});
