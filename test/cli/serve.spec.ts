import { readFileSync } from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import { TLS_CERT, TLS_KEY, connect, get, killLeftovers, namedUpstream, rawConnection, spawnCli, startCli } from './helpers.js';

describe('cli/serve', () => {
  afterEach(killLeftovers);

  it('--route: the first route that matches wins; the rest of the path and the query are forwarded, :params filled', async () => {
    const [chat, api] = await Promise.all([namedUpstream('chat'), namedUpstream('api')]);
    try {
      const cli = await startCli([
        '--route', `/chat/:room=${chat.url}/rooms/:room`,
        '--route', `/api=${api.url}/v1?from=proxy`,
        '--route', `/=${api.url}/fallback`,
      ]);
      expect(cli.listening.routes).to.deep.equal([
        `/chat/:room -> ${chat.url}/rooms/:room`, `/api -> ${api.url}/v1`, `/ -> ${api.url}/fallback`,
      ]);
      const cases: [string, string][] = [
        ['/chat/lobby', 'chat /rooms/lobby: m'],
        ['/chat/lobby/history?since=5', 'chat /rooms/lobby/history?since=5: m'],
        ['/api/users?id=7', 'api /v1/users?from=proxy&id=7: m'],
        ['/apix', 'api /fallback/apix: m'],
        ['/', 'api /fallback/: m'],
      ];
      for (const [path, reply] of cases) {
        const client = await connect(`${cli.url}${path}`);
        expect(await client.ask('m'), path).to.equal(reply);
        client.ws.close();
        await client.closed;
      }
      const opened = cli.records().filter((record) => record.msg === 'connection').map((record) => record.route);
      expect(opened).to.deep.equal(['/chat/:room', '/chat/:room', '/api', '/', '/']);
      expect(await cli.stop()).to.equal(0);
    } finally {
      await Promise.all([chat.close(), api.close()]);
    }
  });

  it('--inspect serves the inspector on the proxy\'s connections; with a token the log leaves its value out, and the API wants it', async () => {
    const cli = await startCli(['--inspect', '127.0.0.1:0', '--inspect-token', 's3cret']);
    const shown = String(cli.listening.inspector);
    expect(shown).to.match(/^http:\/\/127\.0\.0\.1:\d+\/\?token=\.\.\.$/);
    const base = shown.replace(/\?token=\.\.\.$/, '');
    const client = await connect(`${cli.url}/`);
    expect(await client.ask('seen')).to.equal('seen');
    expect((await get(`${base}api/connections`)).status).to.equal(401);
    const listed = await get(`${base}api/connections?token=s3cret`);
    expect(listed.status).to.equal(200);
    const connections = JSON.parse(listed.body) as { fromClient: { frames: number } }[];
    expect(connections).to.have.length(1);
    expect(connections[0]!.fromClient.frames).to.be.at.least(1);
    const page = await get(`${base}?token=s3cret`);
    expect(page.status).to.equal(200);
    expect(page.type).to.match(/^text\/html/);
    client.ws.close();
    await client.closed;
    expect(await cli.stop()).to.equal(0);
  });

  it('--tls-cert and --tls-key: serves wss://', async () => {
    const cli = await startCli(['--tls-cert', TLS_CERT, '--tls-key', TLS_KEY]);
    expect(cli.url).to.match(/^wss:\/\/127\.0\.0\.1:\d+$/);
    const client = await connect(`${cli.url}/secure`, { ca: readFileSync(TLS_CERT) });
    expect(await client.ask('over TLS')).to.equal('over TLS');
    client.ws.close();
    await client.closed;
    expect(await cli.stop()).to.equal(0);
  });

  it('listens on IPv6 with --listen [::1]:0', async function () {
    const probe = net.createServer();
    const hasIpv6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(0, '::1', () => probe.close(() => resolve(true)));
    });
    if (!hasIpv6) this.skip();
    const cli = await startCli(['--listen', '[::1]:0']);
    expect(cli.url).to.match(/^ws:\/\/\[::1\]:\d+$/);
    const client = await connect(`${cli.url}/`);
    expect(await client.ask('v6')).to.equal('v6');
    client.ws.close();
    await client.closed;
    expect((await cli.waitFor((record) => record.msg === 'connection')).remote).to.match(/^\[::1\]:\d+$/);
    expect(await cli.stop()).to.equal(0);
  });

  it('exits 1 with a fatal record when the port is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      const cli = spawnCli(['--listen', `127.0.0.1:${port}`, '--log', 'json']);
      expect(await cli.exited).to.equal(1);
      const [record] = cli.records();
      expect(record).to.include({ level: 'fatal', msg: 'cannot start' });
      expect((record!.err as { message: string }).message).to.equal(`cannot listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    } finally {
      taken.close();
    }
  });

  it('SIGTERM drains: each connected client is sent 1001, the drain waits for the last one, then exit 0', async () => {
    const cli = await startCli(['--drain-timeout', '20000']);
    const client = await connect(`${cli.url}/`);
    const stuck = await rawConnection(cli.url);
    await cli.waitFor((record) => record.msg === 'connection' && record.path === '/stuck');
    cli.child.kill('SIGTERM');
    expect(await client.closed).to.equal(1001);
    const draining = await cli.waitFor((record) => record.msg === 'draining');
    expect(draining).to.include({ signal: 'SIGTERM', timeout: 20000, connections: 2 });
    stuck.destroy();
    expect(await cli.exited).to.equal(0);
    const drained = cli.records().find((record) => record.msg === 'drained');
    expect(drained).to.include({ connections: 2, destroyed: 0 });
  });
});
