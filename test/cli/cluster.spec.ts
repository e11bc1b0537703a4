import { expect } from 'chai';
import { isMessage } from '../../src/cli/cluster.js';
import { type Client, connect, get, killLeftovers, samples, startCli } from './helpers.js';

describe('cli/cluster', () => {
  afterEach(killLeftovers);

  it('isMessage tells our IPC messages by type', () => {
    expect(isMessage({ type: 'wsp:ready', url: 'x', routes: [] }, 'wsp:ready')).to.equal(true);
    expect(isMessage({ type: 'prom-client:getMetricsReq' }, 'wsp:ready')).to.equal(false);
    expect(isMessage(null, 'wsp:ready')).to.equal(false);
    expect(isMessage('wsp:ready', 'wsp:ready')).to.equal(false);
  });

  it('--workers 2: two processes serve one port, /metrics sums them, SIGTERM drains both (1001) and exits 0', async () => {
    const cli = await startCli(['--workers', '2', '--metrics', '127.0.0.1:0']);
    expect(cli.listening).to.include({ role: 'primary', workers: 2, pid: cli.child.pid });
    const ready = cli.records().filter((record) => record.msg === 'worker ready');
    const workerPids = new Set(ready.map((record) => record.pid));
    expect(workerPids.size).to.equal(2);
    expect(workerPids.has(cli.child.pid)).to.equal(false);

    // The primary hands connections out in turn: keep them open until both workers have one.
    const clients: Client[] = [];
    const served = new Set<unknown>();
    while (served.size < 2 && clients.length < 20) {
      const client = await connect(`${cli.url}/n${clients.length}`);
      clients.push(client);
      expect(await client.ask(`hello ${clients.length}`)).to.equal(`hello ${clients.length}`);
      const record = await cli.waitFor((r) => r.msg === 'connection' && r.path === `/n${clients.length - 1}`);
      served.add(record.pid);
    }
    expect(served).to.deep.equal(workerPids);

    const metricsUrl = String(cli.listening.metrics);
    const values = samples((await get(`${metricsUrl}/metrics`)).body);
    expect(values.get('ws_proxy_connections_total{route="echo",outcome="101"}')).to.equal(clients.length);
    expect(values.get('ws_proxy_connections_active{route="echo"}')).to.equal(clients.length);
    expect(await get(`${metricsUrl}/healthz`)).to.include({ status: 200 });

    cli.child.kill('SIGTERM');
    expect(await Promise.all(clients.map((client) => client.closed))).to.deep.equal(clients.map(() => 1001));
    expect(await cli.exited).to.equal(0);
    const records = cli.records();
    expect(records.filter((record) => record.msg === 'drained').map((record) => record.pid).sort()).to.deep.equal([...workerPids].sort());
    expect(records.at(-1)).to.include({ msg: 'stopped', role: 'primary', exitCode: 0 });
    expect(cli.stderr(), 'every line, of every process, is a JSON record on stdout').to.equal('');
  });

  it('restarts a worker that dies, and logs it', async () => {
    const cli = await startCli(['--workers', '2']);
    const first = cli.records().filter((record) => record.msg === 'worker ready');
    const victim = first[0]!;
    process.kill(Number(victim.pid), 'SIGKILL');
    const died = await cli.waitFor((record) => record.msg === 'worker died');
    expect(died).to.include({ level: 'error', role: 'primary', workerPid: victim.pid, signal: 'SIGKILL' });
    const replacement = await cli.waitFor((record) => record.msg === 'worker ready' && !first.some((r) => r.pid === record.pid));
    expect(replacement.worker).to.equal(3);
    const client = await connect(`${cli.url}/`);
    expect(await client.ask('still here')).to.equal('still here');
    client.ws.close();
    await client.closed;
    expect(await cli.stop()).to.equal(0);
  });
});
