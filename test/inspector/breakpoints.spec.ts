import { expect } from 'chai';
import type { WebSocket } from 'ws';
import { startUpstream } from '../helpers/proxy-harness.js';
import { wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { fakeTimers, onCleanup, releaseAll, turns } from '../proxy/rig.js';
import { listening } from '../server/helpers.js';
import { call, sse, started } from './helpers.js';

/** A proxy in front of an upstream that keeps what it receives (text as string), with an inspector. */
async function holdRig(holdTimeout?: number) {
  const received: (string | Buffer)[] = [];
  const sockets: WebSocket[] = [];
  const upstream = await startUpstream((ws) => {
    sockets.push(ws);
    ws.on('message', (data: Buffer, isBinary) => received.push(isBinary ? data : data.toString()));
  });
  onCleanup(() => upstream.close());
  const { server, url } = await listening({ target: upstream.url });
  const insp = await started({ server, ...(holdTimeout === undefined ? {} : { holdTimeout }) });
  const port = insp.address()!.port;
  const client = await wsClient(url);
  onCleanup(() => client.ws.terminate());
  return { received, sockets, port, client, insp };
}

describe('inspector/breakpoints', () => {
  afterEach(releaseAll);

  it('holds a matching message, and the frames after it, until released with edited text', async () => {
    const { received, port, client } = await holdRig();
    const page = await sse(port);
    await page.next('hello');
    const added = await call(port, 'POST', '/api/breakpoints', { from: 'client', pattern: 'secret\\d', flags: 'i' });
    expect(added.status).to.equal(200);
    expect(added.json).to.deep.equal({ id: added.json.id, from: 'client', pattern: 'secret\\d', flags: 'i' });
    expect(await page.next('breakpoints')).to.deep.equal([added.json]);
    client.ws.send('before');
    client.ws.send('SECRET1 here');
    client.ws.send('after');
    const held = await page.next('held');
    expect(held).to.include({ from: 'client', type: 'text', size: 12, text: 'SECRET1 here' });
    expect(held.deadline).to.be.a('number');
    await turns();
    // Order is kept: nothing after the held message went on.
    expect(received).to.deep.equal(['before']);
    expect((await call(port, 'GET', '/api/breakpoints')).json).to.deep.equal([added.json]);
    const released = await call(port, 'POST', `/api/held/${held.id}`, { action: 'release', text: 'redacted ✓' });
    expect(released.status).to.equal(200);
    await waitFor(() => received.length === 3);
    expect(received).to.deep.equal(['before', 'redacted ✓', 'after']);
    expect(await page.next('resolved')).to.deep.equal({ id: held.id, action: 'release' });
    const edited = await page.next('message', (row) => row.edited === true);
    expect(edited).to.include({ from: 'client', type: 'text', preview: 'redacted ✓', size: Buffer.byteLength('redacted ✓') });
    expect((await call(port, 'POST', `/api/held/${held.id}`, { action: 'release' })).status).to.equal(404);
  });

  it('drops a held message: the peer never gets it, nor does the table show it', async () => {
    const { received, port, client } = await holdRig();
    await call(port, 'POST', '/api/breakpoints', { from: 'both', pattern: '^drop' });
    client.ws.send('drop me');
    client.ws.send('keep me');
    const page = await sse(port);
    const hello = await page.next('hello');
    await waitFor(() => page.events.some((e) => e.event === 'held') || hello.held.length > 0);
    const held = hello.held[0] ?? (await page.next('held'));
    expect((await call(port, 'POST', `/api/held/${held.id}`, { action: 'drop' })).status).to.equal(200);
    await waitFor(() => received.length === 1);
    expect(received).to.deep.equal(['keep me']);
    const rows = (await call(port, 'GET', `/api/connections/${held.connection}/messages`)).json;
    expect(rows.filter((row: { from: string }) => row.from === 'client').map((row: { preview: string }) => row.preview)).to.deep.equal(['keep me']);
  });

  it('releases a held message as it is once holdTimeout passed (one shared timer)', async () => {
    const { received, port, client, insp } = await holdRig(5000);
    await call(port, 'POST', '/api/breakpoints', { from: 'client', pattern: 'wait' });
    const clock = fakeTimers();
    client.ws.send('wait 1');
    await waitFor(() => insp.hello().held.length === 1);
    clock.tick(2000);
    client.ws.send('wait 2'); // behind the first, in the same direction: held once the first goes
    await turns();
    expect(received).to.deep.equal([]);
    clock.tick(2999);
    await turns();
    expect(received).to.deep.equal([]);
    clock.tick(1);
    await waitFor(() => insp.hello().held.length === 1 && insp.hello().held[0]!.size === 6 && received.length === 1);
    expect(received).to.deep.equal(['wait 1']);
    // The second was held when the first went: its own 5 s count from then.
    clock.tick(4999);
    await turns();
    expect(received).to.have.length(1);
    clock.tick(1);
    await waitFor(() => received.length === 2);
    expect(received).to.deep.equal(['wait 1', 'wait 2']);
    expect(insp.hello().held).to.deep.equal([]);
  });

  it('matches binary messages on their base64, and edits them with base64', async () => {
    const { received, port, client, insp } = await holdRig();
    await call(port, 'POST', '/api/breakpoints', { from: 'client', pattern: '^AQID' });
    client.ws.send(Buffer.from([1, 2, 3, 4]));
    await waitFor(() => insp.hello().held.length === 1);
    const [held] = insp.hello().held;
    expect(held).to.include({ type: 'binary', base64: 'AQIDBA==', size: 4 });
    expect((await call(port, 'POST', `/api/held/${held!.id}`, { action: 'release', base64: '!!' })).status).to.equal(400);
    expect((await call(port, 'POST', `/api/held/${held!.id}`, { action: 'keep' })).status).to.equal(400);
    expect((await call(port, 'POST', `/api/held/${held!.id}`, { action: 'release', base64: 'CQ==' })).status).to.equal(200);
    await waitFor(() => received.length === 1);
    expect(received[0]).to.deep.equal(Buffer.from([9]));
  });

  it('holds a fragmented message frame by frame without aggregation, and refuses to edit a fragment', async () => {
    const { received, port, client, insp } = await holdRig();
    await call(port, 'POST', '/api/breakpoints', { from: 'client', pattern: 'part' });
    client.ws.send('part one, ', { fin: false });
    client.ws.send('two', { fin: true });
    await waitFor(() => insp.hello().held.length === 1);
    const [held] = insp.hello().held;
    expect(held).to.include({ text: 'part one, ', type: 'text' });
    const edit = await call(port, 'POST', `/api/held/${held!.id}`, { action: 'release', text: 'x' });
    expect(edit.status).to.equal(409);
    expect((await call(port, 'POST', `/api/held/${held!.id}`, { action: 'release' })).status).to.equal(200);
    await waitFor(() => received.length === 1);
    expect(received).to.deep.equal(['part one, two']);
  });

  it('refuses bad breakpoints with 400, and removes one with DELETE', async () => {
    const { port } = await holdRig();
    for (const body of [{ from: 'nobody', pattern: 'x' }, { from: 'client', pattern: '(' }, { from: 'client', pattern: 'x', flags: 'g' }, { from: 'client' }]) {
      const answer = await call(port, 'POST', '/api/breakpoints', body);
      expect(answer.status, JSON.stringify(body)).to.equal(400);
      expect(answer.json.error).to.be.a('string');
    }
    const added = (await call(port, 'POST', '/api/breakpoints', { from: 'upstream', pattern: 'x' })).json;
    expect((await call(port, 'DELETE', `/api/breakpoints/${added.id}`)).status).to.equal(200);
    expect((await call(port, 'DELETE', `/api/breakpoints/${added.id}`)).status).to.equal(404);
    expect((await call(port, 'GET', '/api/breakpoints')).json).to.deep.equal([]);
  });

  it('lets a connection whose client left end once its held message is resolved', async () => {
    const { received, port, client, insp } = await holdRig();
    const page = await sse(port);
    await call(port, 'POST', '/api/breakpoints', { from: 'client', pattern: 'x' });
    client.ws.send('x');
    const held = await page.next('held');
    client.ws.terminate();
    await turns();
    // The direction waits on the held frame (as it would on any stage); dropping it lets it end.
    expect((await call(port, 'POST', `/api/held/${held.id}`, { action: 'drop' })).status).to.equal(200);
    const closed = await page.next('close');
    expect(closed.id).to.equal(held.connection);
    expect(insp.hello().held).to.deep.equal([]);
    expect(received).to.deep.equal([]);
  });
});
