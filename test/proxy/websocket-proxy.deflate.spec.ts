/**
 * permessage-deflate through a WebSocketProxy: pass-through when both hops compress alike and no
 * user code reads a direction, inflate/deflate otherwise, mixed hops, context takeover, a deflate
 * bomb, `perMessageDeflate: false`, and the same through a ProxyServer. Real `ws` peers on 127.0.0.1.
 */
import type http from 'node:http';
import { expect } from 'chai';
import { Transform } from 'readable-stream';
import sinon from 'sinon';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { WebSocket, type PerMessageDeflateOptions } from 'ws';
import { type Frame, textFrame } from '../../src/frame.js';
import type { ProxyOptions, WebSocketProxy } from '../../src/index.js';
import { MessageDeflater, MessageInflater } from '../../src/protocol/deflate.js';
import { createProxyServer } from '../../src/server/proxy-server.js';
import { type StartProxyOptions, startProxy } from '../helpers/proxy-harness.js';
import { type RecordingClient, recordClient, wsClient } from '../helpers/proxy-peers.js';
import { compressingUpstream, onCleanup, releaseAll } from './rig.js';

interface DeflateRig {
  url: string;
  requests: http.IncomingMessage[];
  client(deflate?: boolean | PerMessageDeflateOptions): Promise<RecordingClient>;
  nextSummary(): ReturnType<typeof summaryOf>;
}

async function summaryOf(done: Promise<{ summary?: import('../../src/index.js').ProxySummary }>): Promise<import('../../src/index.js').ProxySummary> {
  const { summary } = await done;
  return summary!;
}

async function rig(
  upstreamDeflate: boolean | PerMessageDeflateOptions,
  proxyOptions?: ProxyOptions<WebSocketProxy> | (() => ProxyOptions<WebSocketProxy>),
  extra: Omit<StartProxyOptions, 'upstream' | 'proxyOptions'> = {},
): Promise<DeflateRig> {
  const upstream = await compressingUpstream(upstreamDeflate);
  const proxy = await startProxy({ ...extra, upstream: upstream.url, ...(proxyOptions === undefined ? {} : { proxyOptions }) });
  onCleanup(() => proxy.close());
  return {
    url: proxy.url,
    requests: upstream.requests,
    async client(deflate = true) {
      const client = await wsClient(proxy.url, undefined, { perMessageDeflate: deflate });
      onCleanup(() => client.ws.terminate());
      return client;
    },
    nextSummary: async () => summaryOf((await proxy.nextOutcome()).done),
  };
}

/** A stage recording what it sees of each data frame (type, RSV1, text), passing frames on. */
function recorder(seen: { rsv1: boolean; text: string }[]): Transform {
  return new Transform({
    objectMode: true,
    transform(frame: Frame, _encoding, callback) {
      if (frame.type === 'text' || frame.type === 'binary' || frame.type === 'continuation') {
        seen.push({ rsv1: frame.rsv1, text: frame.payload.toString() });
      }
      callback(null, frame);
    },
  });
}

/** Sends `messages` and waits for their echo; returns what came back. */
async function roundTrip(client: RecordingClient, messages: string[]): Promise<(string | Buffer)[]> {
  for (const message of messages) client.ws.send(message);
  await client.waitMessages(messages.length);
  return client.messages.slice(0, messages.length);
}

const big = (n: number, seed = 'x'): string => `${seed}${'the quick brown fox jumps over the lazy dog '.repeat(n)}`;

describe('WebSocketProxy permessage-deflate', () => {
  let inflate: sinon.SinonSpy;
  let deflate: sinon.SinonSpy;

  beforeEach(() => {
    inflate = sinon.spy(MessageInflater.prototype, 'inflate');
    deflate = sinon.spy(MessageDeflater.prototype, 'deflate');
  });

  afterEach(async () => {
    sinon.restore();
    await releaseAll();
  });

  it('passes compressed frames through untouched when both hops compress and no user code reads them', async () => {
    const r = await rig(true);
    // ws's default offer is the browsers': "permessage-deflate; client_max_window_bits".
    const client = await r.client();
    expect(client.ws.extensions).to.match(/^permessage-deflate/);
    expect(r.requests[0]!.headers['sec-websocket-extensions']).to.match(/^permessage-deflate/);
    const messages = [big(100), 'short', big(500, 'y'), big(2000, 'z')];
    expect(await roundTrip(client, messages)).to.deep.equal(messages);
    // Random bytes compress to more than 16 KiB: relayed in pieces (cut-through), RSV1 kept.
    const noise = randomBytes(256 * 1024);
    client.ws.send(noise);
    await client.waitMessages(messages.length + 1);
    expect(Buffer.compare(client.messages[messages.length] as Buffer, noise)).to.equal(0);
    expect(inflate.called, 'no inflate').to.equal(false);
    expect(deflate.called, 'no deflate').to.equal(false);
    client.ws.close(1000, 'bye');
    expect(await client.closed).to.deep.equal({ code: 1000, reason: 'bye' });
    const summary = await r.nextSummary();
    expect(summary.error).to.equal(undefined);
  });

  it('passes through with aggregateFragments, fragmented compressed messages included', async () => {
    const r = await rig(true, { aggregateFragments: true });
    const client = await r.client();
    client.ws.send(big(50, 'a'), { fin: false });
    client.ws.send(big(50, 'b'), { fin: true });
    await client.waitMessages(1);
    expect(client.messages).to.deep.equal([big(50, 'a') + big(50, 'b')]);
    expect(inflate.called).to.equal(false);
    expect(deflate.called).to.equal(false);
  });

  it('inflates and deflates a direction with a stage: the stage sees plain text, the peers get the messages', async () => {
    const seen: { rsv1: boolean; text: string }[] = [];
    const r = await rig(true, () => ({ transforms: { client: [recorder(seen)] } }));
    const client = await r.client();
    const messages = [big(100), 'short', big(300, 'y')];
    expect(await roundTrip(client, messages)).to.deep.equal(messages);
    expect(seen).to.deep.equal(messages.map((text) => ({ rsv1: false, text })));
    // The client direction inflates and compresses again; the upstream's echo passes through.
    expect(inflate.called).to.equal(true);
    expect(deflate.called).to.equal(true);
    expect(inflate.thisValues.every((codec) => inflate.thisValues[0] === codec)).to.equal(true);
  });

  it('a fragmented compressed message is inflated frame by frame for a stage, and compressed again', async () => {
    const seen: { rsv1: boolean; text: string }[] = [];
    const r = await rig(true, () => ({ transforms: { client: [recorder(seen)] }, perMessageDeflate: { threshold: 0 } }));
    const client = await r.client();
    client.ws.send(big(40, 'a'), { fin: false });
    client.ws.send(big(40, 'b'), { fin: false });
    client.ws.send('end', { fin: true });
    await client.waitMessages(1);
    expect(client.messages).to.deep.equal([`${big(40, 'a')}${big(40, 'b')}end`]);
    expect(seen).to.deep.equal([{ rsv1: false, text: big(40, 'a') }, { rsv1: false, text: big(40, 'b') }, { rsv1: false, text: 'end' }]);
  });

  it('onFrame sees plain payloads and may change them; both directions inflate and deflate', async () => {
    const r = await rig(true, {
      onFrame: (_proxy, role, type, payload) => (type === 'text' && role === 'client' ? payload.toString().toUpperCase() : payload),
    });
    const client = await r.client();
    expect(await roundTrip(client, [big(100)])).to.deep.equal([big(100).toUpperCase()]);
    expect(inflate.callCount).to.be.at.least(2);
    expect(deflate.callCount).to.be.at.least(2);
  });

  it('client compressed, upstream not: the proxy inflates what the client sends and compresses what it gets', async () => {
    const r = await rig(false);
    const client = await r.client();
    expect(client.ws.extensions).to.match(/^permessage-deflate/);
    const messages = [big(100), 'short', big(1000, 'q')];
    expect(await roundTrip(client, messages)).to.deep.equal(messages);
    expect(inflate.called).to.equal(true);
    expect(deflate.called).to.equal(true);
  });

  it('upstream compressed, client not (connectUpstream then connectClient): the proxy inflates the upstream\'s messages', async () => {
    const r = await rig(true, undefined, {
      handshake: async (proxy, url, req, socket, head) => {
        await proxy.connectUpstream(url);
        await proxy.connectClient(req, socket, head);
      },
    });
    const client = await r.client(false);
    expect(client.ws.extensions).to.equal('');
    const messages = [big(100), big(700, 'w')];
    expect(await roundTrip(client, messages)).to.deep.equal(messages);
    expect(inflate.called).to.equal(true);
    expect(deflate.called).to.equal(true);
  });

  it('connect() does not ask the upstream for compression when the client did not offer it', async () => {
    const r = await rig(true);
    const client = await r.client(false);
    expect(r.requests[0]!.headers['sec-websocket-extensions']).to.equal(undefined);
    expect(await roundTrip(client, [big(100)])).to.deep.equal([big(100)]);
    expect(inflate.called).to.equal(false);
    expect(deflate.called).to.equal(false);
  });

  for (const takeover of [true, false]) {
    it(`context takeover ${takeover ? 'on' : 'off'}: repeated messages survive inflate and deflate on both hops`, async () => {
      const settings = { serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover };
      const r = await rig({ serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover },
        () => ({ transforms: { client: [recorder([])], upstream: [recorder([])] }, perMessageDeflate: settings }));
      // ws.extensions names the extension only: the answer is read from the 101.
      const ws = new WebSocket(r.url, { perMessageDeflate: true });
      onCleanup(() => ws.terminate());
      const client = recordClient(ws);
      const opened = once(ws, 'open');
      const [response] = await once(ws, 'upgrade') as [http.IncomingMessage];
      await opened;
      const answer = String(response.headers['sec-websocket-extensions']);
      expect(answer).to.match(/^permessage-deflate/);
      expect(answer.includes('client_no_context_takeover')).to.equal(!takeover);
      expect(answer.includes('server_no_context_takeover')).to.equal(!takeover);
      expect(String(r.requests[0]!.headers['sec-websocket-extensions']).includes('no_context_takeover')).to.equal(!takeover);
      const messages = [big(60), big(60), big(60, 'r'), big(60)];
      expect(await roundTrip(client, messages)).to.deep.equal(messages);
    });
  }

  it('a deflate bomb from the client gets it 1009 and the upstream 1001, before it is inflated whole', async () => {
    const r = await rig(false, { clientMaxFrameSize: 64 * 1024 });
    const client = await r.client();
    // 8 MiB of zeros compress to a few KiB: within the frame limit on the wire.
    client.ws.send(Buffer.alloc(8 * 1024 * 1024));
    const closed = await client.closed;
    expect(closed.code).to.equal(1009);
    const summary = await r.nextSummary();
    expect(summary.error?.code).to.equal('WSP_ERR_MESSAGE_TOO_LARGE');
    expect(summary.client.closeSent?.code).to.equal(1009);
    expect(summary.upstream.closeSent?.code).to.equal(1001);
    // Every inflate call returned at most the limit plus one zlib chunk.
    const results = await Promise.allSettled(inflate.returnValues as Promise<Buffer>[]);
    for (const result of results) {
      if (result.status === 'fulfilled') expect(result.value.length).to.be.at.most(64 * 1024 + 16 * 1024);
    }
  });

  it('frames the proxy sends itself go uncompressed on a compressed hop, between compressed ones', async () => {
    const upstream = await compressingUpstream(true);
    const proxy = await startProxy({ upstream: upstream.url });
    onCleanup(() => proxy.close());
    const client = await wsClient(proxy.url, undefined, { perMessageDeflate: true });
    onCleanup(() => client.ws.terminate());
    const { proxy: wsp } = await proxy.nextOutcome();
    expect(wsp.send('client', textFrame(big(100, 'proxy')))).to.equal(true);
    client.ws.send(big(100));
    await client.waitMessages(2);
    expect(client.messages).to.deep.equal([big(100, 'proxy'), big(100)]);
    expect(deflate.called).to.equal(false);
  });

  it('perMessageDeflate: false offers nothing upstream and answers nothing to the client', async () => {
    const r = await rig(true, { perMessageDeflate: false });
    const client = await r.client();
    expect(client.ws.extensions).to.equal('');
    expect(r.requests[0]!.headers['sec-websocket-extensions']).to.equal(undefined);
    expect(await roundTrip(client, [big(100)])).to.deep.equal([big(100)]);
  });

  it('works through a ProxyServer, with the option and without', async () => {
    const upstream = await compressingUpstream(true);
    for (const perMessageDeflate of [undefined, false] as const) {
      const server = createProxyServer({ target: upstream.url, ...(perMessageDeflate === undefined ? {} : { perMessageDeflate }) });
      const { port } = await server.listen(0, '127.0.0.1');
      onCleanup(() => server.close({ timeout: 200 }));
      const client = await wsClient(`ws://127.0.0.1:${port}/`, undefined, { perMessageDeflate: true });
      onCleanup(() => client.ws.terminate());
      expect(client.ws.extensions === '').to.equal(perMessageDeflate === false);
      expect(await roundTrip(client, [big(200)])).to.deep.equal([big(200)]);
    }
    expect(inflate.called).to.equal(false);
    expect(deflate.called).to.equal(false);
  });
});
