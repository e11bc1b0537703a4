/**
 * Autobahn groups 12 and 13 in spirit: compressed messages (permessage-deflate) of 16 B to 128 KiB,
 * whole or fragmented (256 B, 4 KiB, 64 KiB frames), echoed by a compressing `ws` server, played
 * directly and through the proxy, under several parameter sets (group 13: windows and context
 * takeover on either hop). Unlike the raw-frame runner, the peers are `ws` clients: the wire
 * compression is theirs, and what is compared is what the application sees (every message echoed
 * byte for byte, in order, and a clean close), direct against proxied.
 *
 * Proxied modes: default options (compressed frames pass through where both hops allow), a stage on
 * each direction (the proxy inflates and compresses again), and `aggregateFragments: true`.
 */
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { PassThrough } from 'readable-stream';
import sinon from 'sinon';
import { WebSocket, WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import type { ProxyOptions, WebSocketProxy } from '../../src/index.js';
import { MessageDeflater, MessageInflater, type PerMessageDeflateSettings } from '../../src/protocol/deflate.js';
import { startProxy } from '../helpers/proxy-harness.js';
import { recordClient } from '../helpers/proxy-peers.js';
import { onCleanup, releaseAll } from '../proxy/rig.js';
import { payload } from './runner.js';

const SIZES = [16, 64, 256, 1024, 4096, 16384, 65536, 131072];
/** 0: one frame per message. */
const FRAGMENTS = [0, 256, 4096, 65536];

type DeflateMode = 'direct' | 'passThrough' | 'stages' | 'aggregated';
const DEFLATE_MODES: readonly DeflateMode[] = ['direct', 'passThrough', 'stages', 'aggregated'];

interface ParameterSet {
  name: string;
  /** The client's permessage-deflate (ws client options; threshold 0: every message compressed). */
  client: PerMessageDeflateOptions;
  /** The echo server's. */
  upstream: PerMessageDeflateOptions;
  /** The proxy's `perMessageDeflate`. @defaultValue true */
  proxy?: PerMessageDeflateSettings;
}

const PARAMETER_SETS: readonly ParameterSet[] = [
  { name: '13.1 defaults', client: {}, upstream: {} },
  { name: '13.2 client asks for no context takeover both ways', client: { clientNoContextTakeover: true, serverNoContextTakeover: true }, upstream: {} },
  { name: '13.3 client asks for a server window of 9 bits', client: { serverMaxWindowBits: 9 }, upstream: {} },
  { name: '13.4 client offers a client window of 9 bits', client: { clientMaxWindowBits: 9 }, upstream: {} },
  { name: '13.5 upstream: window 9, no context takeover', client: {}, upstream: { serverMaxWindowBits: 9, serverNoContextTakeover: true } },
  // ws as a server refuses (400) an offer whose server_max_window_bits is below its own setting:
  // the proxy's default offer (12 bits) is followed by a plain one, which this upstream accepts.
  {
    name: '13.6 15-bit windows everywhere',
    client: { clientMaxWindowBits: 15, serverMaxWindowBits: 15 },
    upstream: { serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
  },
];

async function echoServer(options: PerMessageDeflateOptions): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: { ...options, threshold: 0 } });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  onCleanup(() => new Promise<void>((resolve) => {
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => resolve());
  }));
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
}

function proxyOptions(mode: DeflateMode, perMessageDeflate: PerMessageDeflateSettings | true): () => ProxyOptions<WebSocketProxy> {
  if (mode === 'stages') {
    return () => ({ perMessageDeflate, transforms: { client: [new PassThrough({ objectMode: true })], upstream: [new PassThrough({ objectMode: true })] } });
  }
  if (mode === 'aggregated') return () => ({ perMessageDeflate, aggregateFragments: true });
  return () => ({ perMessageDeflate });
}

/** Sends one message, fragmented into `fragment`-byte frames (0: whole). */
function send(ws: WebSocket, data: Buffer, binary: boolean, fragment: number): void {
  if (fragment === 0 || data.length <= fragment) {
    ws.send(data, { binary });
    return;
  }
  for (let at = 0; at < data.length; at += fragment) {
    ws.send(data.subarray(at, at + fragment), { binary, fin: at + fragment >= data.length, compress: true });
  }
}

/** Plays every size and fragmentation on one connection; returns what came back, and the close. */
async function play(url: string, client: PerMessageDeflateOptions): Promise<{ echoed: (string | Buffer)[]; sent: (string | Buffer)[]; close: number; extension: string }> {
  const ws = new WebSocket(url, { perMessageDeflate: { ...client, threshold: 0 } });
  onCleanup(() => ws.terminate());
  const recorded = recordClient(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const sent: (string | Buffer)[] = [];
  for (const fragment of FRAGMENTS) {
    for (const size of SIZES) {
      const binary = size % 3 === 0;
      const data = payload(size, binary ? 'binary' : 'text');
      sent.push(binary ? data : data.toString());
      send(ws, data, binary, fragment);
    }
  }
  await recorded.waitMessages(sent.length);
  ws.close(1000, 'done');
  const { code } = await recorded.closed;
  return { echoed: recorded.messages, sent, close: code, extension: ws.extensions };
}

describe('conformance 12-13: permessage-deflate, direct vs through the proxy', () => {
  afterEach(async () => {
    sinon.restore();
    await releaseAll();
  });

  for (const set of PARAMETER_SETS) {
    describe(set.name, () => {
      for (const mode of DEFLATE_MODES) {
        it(`${mode}: ${SIZES.length * FRAGMENTS.length} compressed messages (16 B to 128 KiB, whole and in 256 B / 4 KiB / 64 KiB frames) echo intact`, async () => {
          const inflate = sinon.spy(MessageInflater.prototype, 'inflate');
          const deflate = sinon.spy(MessageDeflater.prototype, 'deflate');
          const upstream = await echoServer(set.upstream);
          let url = upstream;
          if (mode !== 'direct') {
            const proxy = await startProxy({ upstream, proxyOptions: proxyOptions(mode, set.proxy ?? true) });
            onCleanup(() => proxy.close());
            url = proxy.url;
          }
          const result = await play(url, set.client);
          expect(result.extension).to.equal('permessage-deflate');
          expect(result.echoed.length).to.equal(result.sent.length);
          result.echoed.forEach((message, i) => expect(message, `message ${i}`).to.deep.equal(result.sent[i]));
          expect(result.close).to.equal(1000);
          if (mode === 'direct' || mode === 'stages') return;
          if (set.name.startsWith('13.1')) {
            // Same parameters on both hops: nothing for zlib to do in the proxy.
            expect(inflate.called || deflate.called, 'zlib work').to.equal(false);
          }
        });
      }
    });
  }
});
