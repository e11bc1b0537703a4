import { expect } from 'chai';
import type { Frame } from '../../src/frame.js';
import { MASK_IN_PLACE_MIN } from '../../src/protocol/encode.js';
import type { FrameObserver } from '../../src/proxy/options.js';
import { chainObservers } from '../../src/server/observers.js';
import { recordingUpstream, startUpstream } from '../helpers/proxy-harness.js';
import { recordingLogger, wsClient } from '../helpers/proxy-peers.js';
import { waitFor } from '../helpers/sockets.js';
import { onCleanup, releaseAll, turns } from '../proxy/rig.js';
import { echoUpstream, listening } from './helpers.js';

/** A direction's view: `role:type:payload` per frame observed. */
function viewOf(role: string, frame: Frame): string {
  return `${role}:${frame.type}:${frame.payload.toString()}`;
}

/** An upstream that keeps the text it receives (no echo), and the proxy's client. */
async function sinkRig(observer: { connection?: () => void; direction: (role: string) => FrameObserver | undefined }, logger = recordingLogger()) {
  const { upstream, received, sockets } = await recordingUpstream();
  onCleanup(() => upstream.close());
  const { server, url } = await listening({ target: upstream.url, logger });
  server.addObserver({ connection: observer.connection ?? (() => undefined), direction: (ctx) => observer.direction(ctx.role) });
  const client = await wsClient(url);
  onCleanup(() => client.ws.terminate());
  return { received, sockets, client, logger, server };
}

describe('server/observers', () => {
  afterEach(releaseAll);

  it('addObserver(): sees every frame of both directions in order, before onFrame, on connections opened after it, until removed', async () => {
    const upstream = await echoUpstream();
    const { server, url } = await listening({
      target: upstream.url,
      // onFrame runs after the observer: the observer sees what the client sent, the peer what onFrame made.
      onFrame: (_proxy, role, type, payload) => (type === 'text' && role === 'client' ? `${payload}!` : payload),
    });
    const before = await wsClient(url);
    const seen: string[] = [];
    const proxies: unknown[] = [];
    const remove = server.addObserver({
      connection: (proxy) => proxies.push(proxy),
      direction: (ctx) => ({ observe: (frame) => void seen.push(viewOf(ctx.role, frame)) }),
    });
    before.ws.send('old');
    await before.waitMessages(1);
    const after = await wsClient(url);
    for (const text of ['a', 'b', 'c']) after.ws.send(text);
    after.ws.ping('p');
    await after.waitMessages(3);
    await waitFor(() => seen.length === 8);
    expect(after.messages).to.deep.equal(['a!', 'b!', 'c!']);
    expect(seen.filter((line) => line.startsWith('client:'))).to.deep.equal(['client:text:a', 'client:text:b', 'client:text:c', 'client:ping:p']);
    expect(seen.filter((line) => line.startsWith('upstream:'))).to.deep.equal(['upstream:text:a!', 'upstream:text:b!', 'upstream:text:c!', 'upstream:pong:p']);
    expect(proxies).to.deep.equal([server.connections[1]]);
    remove();
    const last = await wsClient(url);
    last.ws.send('gone');
    await last.waitMessages(1);
    expect(seen).to.have.length(8);
    expect(() => server.addObserver({ direction: () => undefined } as never)).to.throw(TypeError, /observer must be an object/);
    for (const client of [before, after, last]) client.ws.close();
    await Promise.all([before.closed, after.closed, last.closed]);
  });

  it('a held frame holds its direction in order; it goes on as it is released (maybe changed) or not at all when dropped', async () => {
    const holds: ((out: Frame | null) => void)[] = [];
    const { received, client } = await sinkRig({
      direction: (role) => (role !== 'client' ? undefined : {
        observe: (frame) => (frame.payload.toString().startsWith('hold') ? new Promise<Frame | null>((resolve) => holds.push(resolve)) : undefined),
      }),
    });
    for (const text of ['one', 'hold-edit', 'two', 'hold-drop', 'three']) client.ws.send(text);
    await waitFor(() => holds.length === 1);
    await turns();
    expect(received).to.deep.equal(['one']);
    holds[0]!({ type: 'text', fin: true, payload: Buffer.from('edited'), rsv1: false });
    await waitFor(() => holds.length === 2);
    await turns();
    expect(received).to.deep.equal(['one', 'edited', 'two']);
    holds[1]!(null);
    await waitFor(() => received.length === 4);
    expect(received).to.deep.equal(['one', 'edited', 'two', 'three']);
  });

  it('an observer that throws or rejects is detached and logged once; the connection goes on', async () => {
    const calls = { client: 0, upstream: 0 };
    const { received, client, logger, sockets } = await sinkRig({
      direction: (role) => ({
        observe: () => {
          calls[role as 'client' | 'upstream']++;
          if (role === 'client') throw new Error('observer bug');
          return Promise.reject(new Error('held badly'));
        },
      }),
    });
    client.ws.send('a');
    client.ws.send('b');
    await waitFor(() => received.length === 2);
    sockets[0]!.send('from upstream');
    sockets[0]!.send('again');
    await client.waitMessages(2);
    expect(received).to.deep.equal(['a', 'b']);
    expect(client.messages).to.deep.equal(['from upstream', 'again']);
    expect(calls).to.deep.equal({ client: 1, upstream: 1 });
    expect(logger.at('warn')).to.deep.equal([
      'client frame observer failed, detached: observer bug',
      'upstream frame observer failed, detached: held badly',
    ]);
    client.ws.close(1000);
    expect((await client.closed).code).to.equal(1000);
  });

  it('a payload an observer kept is not masked in place on the hop to the upstream', async () => {
    const kept: Buffer[] = [];
    const upstream = await startUpstream((ws) => ws.on('message', (data: Buffer) => ws.send(data)));
    onCleanup(() => upstream.close());
    const { server, url } = await listening({ target: upstream.url });
    server.addObserver({
      connection: () => undefined,
      direction: (ctx) => (ctx.role !== 'client' ? undefined : { observe: (frame) => void kept.push(frame.payload) }),
    });
    const client = await wsClient(url);
    onCleanup(() => client.ws.terminate());
    // Large enough for the writer to mask in place a payload it owns (MASK_IN_PLACE_MIN).
    const message = Buffer.alloc(MASK_IN_PLACE_MIN * 2, 0x5a);
    client.ws.send(message);
    await client.waitMessages(1);
    expect(client.messages[0]).to.deep.equal(message);
    expect(kept).to.have.length(1);
    expect(kept[0]!.equals(message)).to.equal(true);
  });

  it('chainObservers(): each direction gets the observers that want it; a frame one holds reaches the next once released', async () => {
    const seen: string[] = [];
    let release: ((out: Frame | null) => void) | undefined;
    const factory = chainObservers([
      { connection: () => undefined, direction: () => ({ observe: (frame) => new Promise<Frame | null>((resolve) => { seen.push(`first:${frame.payload}`); release = resolve; }) }) },
      { connection: () => undefined, direction: (ctx) => (ctx.role === 'client' ? undefined : { observe: (frame, from) => void seen.push(`second:${frame.payload}:${from}`) }) },
    ]);
    const context = { id: '1', role: 'upstream' as const, proxy: undefined };
    const observer = factory(context)!;
    const held = observer.observe({ type: 'text', fin: true, payload: Buffer.from('x'), rsv1: false }, 'upstream')!;
    expect(seen).to.deep.equal(['first:x']);
    release!({ type: 'text', fin: true, payload: Buffer.from('y'), rsv1: false });
    expect((await held)!.payload.toString()).to.equal('y');
    expect(seen).to.deep.equal(['first:x', 'second:y:upstream']);
    // Dropped by the first: the second never sees it.
    const dropped = observer.observe({ type: 'text', fin: true, payload: Buffer.from('z'), rsv1: false }, 'upstream')!;
    release!(null);
    expect(await dropped).to.equal(null);
    expect(seen).to.deep.equal(['first:x', 'second:y:upstream', 'first:z']);
  });
});
