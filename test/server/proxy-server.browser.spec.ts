/**
 * A real browser's WebSocket client through a `ProxyServer`: Debian's headless Chromium (driven by
 * playwright-core) opens a `WebSocket` on the proxy from a blank page, in front of a `ws` echo
 * upstream. Chromium offers `permessage-deflate; client_max_window_bits` on every connection, masks
 * with its own keys, sends large messages in one frame and checks what it receives strictly: this is
 * the client most users put in front of the proxy, and not the `ws` package every other spec uses.
 *
 * The page does the talking (a script evaluated in it: the project compiles without the DOM's
 * types) and reports what it saw; the tests assert the bytes, the negotiated extensions on both
 * hops, the close codes and reasons both ways, a message over the client's limit, and the same
 * over TLS (the fixture certificate, taken by the browser's context).
 * Without a browser the suite is skipped, saying so once.
 */
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import type { PerMessageDeflateOptions } from 'ws';
import type { ProxyServerOptions } from '../../src/index.js';
import { tls } from '../handshake/helpers.js';
import { useChromium } from '../helpers/chromium.js';
import { waitFor } from '../helpers/sockets.js';
import { compressingUpstream, releaseAll } from '../proxy/rig.js';
import { listening } from './helpers.js';

/** A message the page sends: text as given, or `size` bytes of text or binary made in the page. */
type Outgoing = { text: string } | { textOf: number } | { binaryOf: number; random?: boolean };

/** What the page saw of one message it sent: whether its echo came back identical. */
interface Echoed {
  sent: number;
  same: boolean;
  received: number;
}

/** What the page reports of its connection. */
interface PageReport {
  extensions: string;
  echoes: Echoed[];
  /** The messages received after the echoes (see {@link Script.received}). */
  texts: string[];
  close: { code: number; reason: string; wasClean: boolean };
}

/** What the page does once open. */
interface Script {
  /** Sent one at a time, each echo awaited and compared byte for byte. */
  echo?: Outgoing[];
  /** Then sent at once, without waiting for echoes. */
  unechoed?: string[];
  /** Then this many messages received, as `texts` (binary ones as `binary:1,2,3`). @defaultValue `unechoed.length` */
  received?: number;
  /** Then the page closes with this; without it, it waits for the other side's close. */
  close?: { code: number; reason: string };
}

/** The script the page runs on a WebSocket to `url`, resolving with its report. */
function pageScript(url: string, { echo = [], unechoed = [], received = unechoed.length, close }: Script): string {
  return `(async () => {
    const messages = ${JSON.stringify(echo)};
    const unechoed = ${JSON.stringify(unechoed)};
    const textOf = (size) => {
      // Characters of 1, 3 and 4 bytes in UTF-8: the echo must keep every boundary.
      const unit = 'ab✓日🎉';
      let s = '';
      while (s.length < size) s += unit;
      // Never half of a surrogate pair: the browser would send U+FFFD for it (USVString).
      s = s.slice(0, size);
      return /[\ud800-\udbff]$/.test(s) ? s.slice(0, -1) + 'x' : s;
    };
    const binaryOf = (size, random) => {
      const bytes = new Uint8Array(size);
      if (random) for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
      else for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 255;
      return bytes;
    };
    const ws = new WebSocket(${JSON.stringify(url)});
    ws.binaryType = 'arraybuffer';
    const inbox = [];
    let wake = () => {};
    ws.onmessage = (e) => { inbox.push(e.data); wake(); };
    const closed = new Promise((resolve) => { ws.onclose = (e) => { resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean }); wake(); }; });
    const next = async () => {
      while (inbox.length === 0 && ws.readyState !== WebSocket.CLOSED) await new Promise((resolve) => { wake = resolve; });
      return inbox.shift();
    };
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('WebSocket error before open')); });
    const echoes = [];
    for (const m of messages) {
      const data = 'text' in m ? m.text : 'textOf' in m ? textOf(m.textOf) : binaryOf(m.binaryOf, m.random);
      ws.send(data);
      const got = await next();
      let same;
      if (typeof data === 'string') same = got === data;
      else {
        const back = got instanceof ArrayBuffer ? new Uint8Array(got) : null;
        same = back !== null && back.length === data.length && back.every((b, i) => b === data[i]);
      }
      echoes.push({ sent: typeof data === 'string' ? data.length : data.length, same, received: got === undefined ? -1 : typeof got === 'string' ? got.length : got.byteLength });
      if (got === undefined) break;
    }
    for (const text of unechoed) ws.send(text);
    const texts = [];
    for (let i = 0; i < ${received}; i++) {
      const got = await next();
      if (got === undefined) break;
      texts.push(typeof got === 'string' ? got : 'binary:' + new Uint8Array(got).join(','));
    }
    ${close === undefined ? '' : `ws.close(${close.code}, ${JSON.stringify(close.reason)});`}
    return { extensions: ws.extensions, echoes, texts, close: await closed };
  })()`;
}

/** The messages of every echo test: sizes around the header's length forms and a large one. */
const MESSAGES: Outgoing[] = [
  { text: 'hello' },
  { text: '' },
  { text: 'multi-byte: ✓ 日本語 🎉' },
  { textOf: 125 },
  { textOf: 126 },
  { textOf: 65_536 },
  { binaryOf: 0 },
  { binaryOf: 65_535 },
  { binaryOf: 65_536, random: true },
  // Under the client's default limit (clientMaxFrameSize, 1 MiB) whether counted compressed or not:
  // 450,000 UTF-16 units of the text pattern are 900,000 bytes of UTF-8.
  { textOf: 450_000 },
  { binaryOf: 1_000_000, random: true },
];

describe('ProxyServer with a browser client (headless Chromium)', function () {
  const chromium = useChromium('browser client tests');

  afterEach(releaseAll);

  async function blankPage(): Promise<Page> {
    return (await chromium.newContext()).newPage();
  }

  /** A proxy in front of a `ws` upstream that compresses or not, and echoes (or answers with `reply`). */
  async function rig(
    upstreamDeflate: boolean | PerMessageDeflateOptions,
    options: Omit<ProxyServerOptions, 'target'> = {},
    reply?: Parameters<typeof compressingUpstream>[1],
  ): Promise<{ url: string; upstream: Awaited<ReturnType<typeof compressingUpstream>> }> {
    const upstream = await compressingUpstream(upstreamDeflate, reply);
    const { url } = await listening({ target: upstream.url, ...options });
    return { url: `${url}/chat`, upstream };
  }

  function expectAllEchoed(report: PageReport): void {
    expect(report.echoes.map((e) => e.same), JSON.stringify(report.echoes)).to.deep.equal(MESSAGES.map(() => true));
  }

  it('both hops compressed: every message comes back intact, and the close (code and reason) goes through', async () => {
    const { url, upstream } = await rig(true);
    const page = await blankPage();
    const report = await page.evaluate<PageReport>(pageScript(url, { echo: MESSAGES, close: { code: 4001, reason: 'bye ✓' } }));

    expectAllEchoed(report);
    expect(report.extensions).to.match(/^permessage-deflate/);
    // The proxy offered the upstream what the browser offered, and the upstream took it.
    expect(upstream.requests[0]!.headers['sec-websocket-extensions']).to.match(/permessage-deflate/);
    expect(upstream.sockets[0]!.extensions).to.equal('permessage-deflate');
    expect(report.close).to.deep.equal({ code: 4001, reason: 'bye ✓', wasClean: true });
  });

  it('over TLS (wss://, the proxy\'s tls option), both hops compressed: every message comes back intact', async () => {
    const upstream = await compressingUpstream(true);
    const { port } = await listening({ target: upstream.url, tls });
    // The fixture certificate is self-signed (for 127.0.0.1): the browser is told to take it.
    const page = await (await chromium.newContext({ ignoreHTTPSErrors: true })).newPage();
    const report = await page.evaluate<PageReport>(pageScript(`wss://127.0.0.1:${port}/chat`, { echo: MESSAGES, close: { code: 1000, reason: 'done' } }));

    expectAllEchoed(report);
    expect(report.extensions).to.match(/^permessage-deflate/);
    expect(upstream.sockets[0]!.extensions).to.equal('permessage-deflate');
    expect(report.close).to.deep.equal({ code: 1000, reason: 'done', wasClean: true });
  });

  it('the upstream closes: the browser gets its code and reason, cleanly', async () => {
    // The echo, then the close: the page is then waiting for the other side's close.
    const { url } = await rig(true, {}, (ws, data, isBinary) => {
      ws.send(data, { binary: isBinary });
      ws.close(4002, 'server going: 日本');
    });
    const page = await blankPage();
    const seen = await page.evaluate<PageReport>(pageScript(url, { echo: [{ text: 'hello' }] }));
    expect(seen.echoes.map((e) => e.same)).to.deep.equal([true]);
    expect(seen.close).to.deep.equal({ code: 4002, reason: 'server going: 日本', wasClean: true });
  });

  it('an upstream without compression: the browser still gets every message intact', async () => {
    const { url, upstream } = await rig(false);
    const page = await blankPage();
    const report = await page.evaluate<PageReport>(pageScript(url, { echo: MESSAGES, close: { code: 1000, reason: '' } }));

    expectAllEchoed(report);
    expect(upstream.sockets[0]!.extensions).to.equal('');
    expect(report.close).to.deep.equal({ code: 1000, reason: '', wasClean: true });
  });

  it('perMessageDeflate: false: nothing negotiated on either hop, every message intact', async () => {
    const { url, upstream } = await rig(true, { perMessageDeflate: false });
    const page = await blankPage();
    const report = await page.evaluate<PageReport>(pageScript(url, { echo: MESSAGES, close: { code: 1000, reason: '' } }));

    expectAllEchoed(report);
    expect(report.extensions).to.equal('');
    expect(upstream.requests[0]!.headers['sec-websocket-extensions']).to.equal(undefined);
    expect(upstream.sockets[0]!.extensions).to.equal('');
  });

  it('an onFrame that rewrites the upstream\'s text: the browser receives the new text, compressed hops kept', async () => {
    const { url, upstream } = await rig(true, {
      onFrame: (_proxy, role, type, payload) => (role === 'upstream' && type === 'text' ? payload.toString().toUpperCase() : payload),
    });
    const page = await blankPage();
    const report = await page.evaluate<PageReport>(pageScript(url, { unechoed: [`shout ✓ ${'x'.repeat(2000)}`, 'quiet'], close: { code: 1000, reason: '' } }));

    expect(report.texts).to.deep.equal([`SHOUT ✓ ${'X'.repeat(2000)}`, 'QUIET']);
    expect(report.extensions).to.match(/^permessage-deflate/);
    expect(upstream.sockets[0]!.extensions).to.equal('permessage-deflate');
  });

  it('fragmented messages from the upstream, split inside characters, compressed: the browser gets them whole', async () => {
    const text = Buffer.from('✓ 日本語, fragmented 🎉');
    // threshold 0: `ws` compresses even these few bytes (RSV1 on each message's first fragment).
    const { url } = await rig({ threshold: 0 }, {}, (ws, data) => {
      if (data.toString() !== 'fragments please') return;
      // Cut inside the 3-byte ✓ and the 4-byte 🎉: each fragment alone is not valid UTF-8.
      const cuts = [0, 1, 2, text.length - 2, text.length];
      for (let i = 0; i + 1 < cuts.length; i++) ws.send(text.subarray(cuts[i], cuts[i + 1]), { binary: false, fin: i + 2 === cuts.length, compress: true });
      ws.send(Buffer.from([1, 2, 3]), { binary: true, fin: false, compress: true });
      ws.send(Buffer.from([4, 5]), { fin: true, compress: true });
    });
    const page = await blankPage();
    const report = await page.evaluate<PageReport>(pageScript(url, { unechoed: ['fragments please'], received: 2, close: { code: 1000, reason: '' } }));

    expect(report.texts).to.deep.equal([text.toString(), 'binary:1,2,3,4,5']);
    expect(report.close.wasClean).to.equal(true);
  });

  it('a message over clientMaxFrameSize: the browser gets 1009, the upstream 1001', async () => {
    const { url, upstream } = await rig(true, { clientMaxFrameSize: 64 * 1024 });
    const page = await blankPage();
    // Random bytes: compressed or not, the message is over the limit.
    const report = await page.evaluate<PageReport>(pageScript(url, { echo: [{ binaryOf: 200_000, random: true }] }));

    expect(report.echoes).to.deep.equal([{ sent: 200_000, same: false, received: -1 }]);
    expect(report.close.code).to.equal(1009);
    await waitFor(() => upstream.closeCodes.length === 1);
    expect(upstream.closeCodes).to.deep.equal([1001]);
  });
});
