import { expect } from 'chai';
import { type RunningApp, start } from '../../examples/express.js';
import { until } from '../helpers/proxy-peers.js';
import { exampleRig, refusedStatus } from './peers.js';

describe('examples/express', () => {
  const rig = exampleRig<RunningApp>();

  it('answers its Express routes on the port the proxy shares', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url }));
    const status = await fetch(`${running.url}/api/status`);
    expect(status.status).to.equal(200);
    expect(await status.json()).to.deep.equal({ accepting: true, connections: 0 });
    const health = await fetch(`${running.url}/healthz`);
    expect([health.status, await health.text()]).to.deep.equal([200, 'ok\n']);
    const missing = await fetch(`${running.url}/nowhere`);
    expect(missing.status).to.equal(404);
    await missing.text();
  });

  it('proxies /ws/:room to the upstream\'s /rooms/:room, with the rest of the path and the query', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url }));
    const lobby = await rig.client(`${running.roomUrl('lobby')}?user=ann`);
    const history = await rig.client(`${running.roomUrl('big room')}/history?since=5&limit=10`);
    lobby.ws.send('hi from the lobby');
    history.ws.send(Buffer.from([1, 2, 3]));
    await Promise.all([lobby.waitMessages(1), history.waitMessages(1)]);
    expect(lobby.messages).to.deep.equal(['hi from the lobby']);
    expect(history.messages).to.deep.equal([Buffer.from([1, 2, 3])]);
    expect(rig.upstream.paths).to.deep.equal(['/rooms/lobby?user=ann', '/rooms/big%20room/history?since=5&limit=10']);

    // The Express route sees the proxy's live connections.
    const status = await fetch(`${running.url}/api/status`);
    expect(await status.json()).to.deep.equal({ accepting: true, connections: 2 });
  });

  it('answers 404 to an upgrade outside /ws/:room, without contacting the upstream', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url }));
    const base = running.url.replace(/^http/, 'ws');
    for (const path of ['/', '/ws', '/ws/', '/api/status', '/wsx/lobby']) {
      expect(await refusedStatus(`${base}${path}`), path).to.equal(404);
    }
    expect(rig.upstream.paths).to.deep.equal([]);
  });

  it('close() ends the connections with 1001 on both sides and resolves with the counts', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url }));
    const c = await rig.client(running.roomUrl('lobby'));
    await until(() => rig.upstream.peers.length === 1);
    expect(await running.close()).to.deep.equal({ connections: 1, closed: 1, failed: 0, destroyed: 0, handshakesAborted: 0 });
    expect((await c.closed).code).to.equal(1001);
    expect((await rig.upstream.peers[0]!.closed).code).to.equal(1001);
  });
});
