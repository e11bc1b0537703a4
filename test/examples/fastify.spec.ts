import { expect } from 'chai';
import { type RunningApp, start } from '../../examples/fastify.js';
import { portOf, rawClient, until } from '../helpers/proxy-peers.js';
import { exampleRig } from './peers.js';

describe('examples/fastify', () => {
  const rig = exampleRig<RunningApp>();

  it('answers its Fastify routes and proxies /ws/... to the upstream on the same port', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url, log: rig.log }));
    const c = await rig.client(`${running.wsUrl}/feed?since=3`);
    c.ws.send('hello');
    await c.waitMessages(1);
    expect(c.messages).to.deep.equal(['hello']);
    expect(rig.upstream.paths).to.deep.equal(['/feed?since=3']);

    const home = await fetch(`${running.url}/`);
    expect(await home.json()).to.deep.equal({ hello: 'fastify', websockets: 1 });
    const health = await fetch(`${running.url}/healthz`);
    expect([health.status, await health.text()]).to.deep.equal([200, 'ok\n']);
  });

  it('app.close() resolves while a WebSocket client is connected: the drain in preClose sends 1001 to both sides', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url, log: rig.log }));
    const c = await rig.client(`${running.wsUrl}/feed`);
    c.ws.send('hello');
    await c.waitMessages(1);

    await running.app.close();
    expect((await c.closed).code).to.equal(1001);
    expect((await rig.upstream.peers[0]!.closed).code).to.equal(1001);
    expect(rig.lines).to.deep.equal(['drained: 1 connection(s), 1 closed, 0 failed, 0 destroyed']);
    expect(running.proxy.accepting).to.equal(false);
    expect(running.app.server.listening).to.equal(false);
  });

  it('app.close() resolves even when a client never answers the close frame: the drain destroys it after its timeout', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url, drainTimeout: 100, log: rig.log }));
    const raw = await rawClient(portOf(running.wsUrl), '/ws/feed');
    rig.onCleanup(() => raw.destroy());
    await until(() => rig.upstream.peers.length === 1);

    await running.app.close();
    expect((await raw.waitClose()).code).to.equal(1001);
    await raw.closed;
    expect(rig.lines).to.deep.equal(['drained: 1 connection(s), 0 closed, 0 failed, 1 destroyed']);
  });
});
