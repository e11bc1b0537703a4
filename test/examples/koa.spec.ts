import { expect } from 'chai';
import { type RunningApp, start } from '../../examples/koa.js';
import { exampleRig, refusedStatus } from './peers.js';

describe('examples/koa', () => {
  const rig = exampleRig<RunningApp>();

  it('proxies /ws/... to the upstream, text and binary, beside the Koa middleware on the same port', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url }));
    const c = await rig.client(`${running.wsUrl}/chat/lobby?user=ann`);
    c.ws.send('hello');
    c.ws.send(Buffer.from([0, 255]));
    await c.waitMessages(2);
    expect(c.messages).to.deep.equal(['hello', Buffer.from([0, 255])]);
    expect(rig.upstream.paths).to.deep.equal(['/chat/lobby?user=ann']);
    expect(rig.upstream.peers[0]!.messages).to.deep.equal(['hello', Buffer.from([0, 255])]);

    const home = await fetch(`${running.url}/`);
    expect(await home.json()).to.deep.equal({ hello: 'koa', websockets: 1 });
  });

  it('answers the health check through handleRequest() from a Koa middleware', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url }));
    const res = await fetch(`${running.url}/healthz`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('cache-control')).to.equal('no-store');
    expect(await res.text()).to.equal('ok\n');
  });

  it('refuses an upgrade outside /ws with 404', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url }));
    expect(await refusedStatus(running.url.replace(/^http/, 'ws'))).to.equal(404);
    expect(rig.upstream.paths).to.deep.equal([]);
  });

  it('close() ends the connections with 1001 on both sides and resolves with the counts', async () => {
    const running = rig.own(await start({ upstream: rig.upstream.url }));
    const c = await rig.client(`${running.wsUrl}/`);
    c.ws.send('x');
    await c.waitMessages(1);
    expect(await running.close()).to.deep.equal({ connections: 1, closed: 1, failed: 0, destroyed: 0, handshakesAborted: 0 });
    expect((await c.closed).code).to.equal(1001);
    expect((await rig.upstream.peers[0]!.closed).code).to.equal(1001);
  });
});
