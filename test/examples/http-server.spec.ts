import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type RunningServer, start } from '../../examples/http-server.js';
import { closeFrame } from '../../src/frame.js';
import { portOf, rawClient, until, upgradeHeaders, upgradeRequest } from '../helpers/proxy-peers.js';
import { exampleRig } from './peers.js';

describe('examples/http-server', () => {
  const rig = exampleRig<RunningServer>();

  it('proxies a connection to the upstream and answers the health check with 200 ok', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url, log: rig.log }));
    const c = await rig.client(running.url);
    c.ws.send('hello');
    await c.waitMessages(1);
    expect(c.messages).to.deep.equal(['hello']);
    expect(rig.upstream.peers[0]!.messages).to.deep.equal(['hello']);
    const res = await fetch(running.healthUrl);
    expect([res.status, await res.text()]).to.deep.equal([200, 'ok\n']);
  });

  it('close() drains: 1001 to the client and the upstream, then resolves with how the connections ended', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url, log: rig.log }));
    const a = await rig.client(running.url);
    const b = await rig.client(running.url);
    a.ws.send('a');
    b.ws.send('b');
    await Promise.all([a.waitMessages(1), b.waitMessages(1)]);
    const result = await running.close();
    expect(result).to.deep.equal({ connections: 2, closed: 2, failed: 0, destroyed: 0, handshakesAborted: 0 });
    expect((await a.closed).code).to.equal(1001);
    expect((await b.closed).code).to.equal(1001);
    for (const peer of rig.upstream.peers) expect((await peer.closed).code).to.equal(1001);
    expect(rig.lines).to.have.length(2);
    for (const line of rig.lines) expect(line).to.match(/closed by proxy, cleanly$/);
  });

  it('answers the health check 503 and refuses new upgrades with 503 while it drains', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url, log: rig.log }));
    // A raw client does not answer the close frame by itself: the drain waits for it.
    const raw = await rawClient(portOf(running.url));
    rig.onCleanup(() => raw.destroy());
    await until(() => rig.upstream.peers.length === 1);
    const drained = running.close();
    const sent = await raw.waitClose();
    expect(sent.code).to.equal(1001);

    const health = await fetch(running.healthUrl);
    expect([health.status, await health.text()]).to.deep.equal([503, 'draining\n']);
    const refused = await upgradeRequest(portOf(running.url), upgradeHeaders());
    expect(refused.statusCode).to.equal(503);
    expect(refused.headers['retry-after']).to.equal('5');

    raw.send(closeFrame(1001));
    expect(await drained).to.deep.equal({ connections: 1, closed: 1, failed: 0, destroyed: 0, handshakesAborted: 0 });
    expect(rig.lines).to.include('refused (503): Server is shutting down');
  });

  describe('run as a program', () => {
    let child: ChildProcess | undefined;

    afterEach(() => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child = undefined;
    });

    it('drains on SIGTERM: the client gets 1001, the drain is reported, and the process exits 0', async () => {
      const program = fileURLToPath(new URL('../../examples/http-server.js', import.meta.url));
      const proc = spawn(process.execPath, [program, rig.upstream.url], {
        env: { ...process.env, PORT: '0' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      child = proc;
      const out: string[] = [];
      createInterface({ input: proc.stdout! }).on('line', (line) => out.push(line));
      const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      await until(() => out.length > 0 || proc.exitCode !== null);
      const url = /^proxy on (ws:\/\/\S+) /.exec(out[0] ?? '')?.[1];
      expect(url, out.join('\n')).to.be.a('string');

      const c = await rig.client(url!);
      c.ws.send('before the signal');
      await c.waitMessages(1);
      proc.kill('SIGTERM');
      expect((await c.closed).code).to.equal(1001);
      expect(await exited).to.deep.equal([0, null]);
      expect(out).to.have.length(4);
      expect(out[1]).to.equal('SIGTERM: draining 1 connection(s)');
      expect(out[2]).to.match(/^\[\S+\] closed by proxy, cleanly$/);
      expect(out[3]).to.equal('drained: 1 connection(s), 1 closed, 0 failed, 0 destroyed');
    });
  });
});
