/**
 * Adversarial handshake requests (issue 10, section 2, "Handshake requests" and "Header count"):
 * each attack goes through a bare `WebSocketProxy` on a Node HTTP server and through
 * `createProxyServer`, in front of a real `ws` upstream behind a Node HTTP server with default
 * limits, and asserts its bound: the HTTP status the client gets, whether the upstream was
 * contacted, the bytes the process retains after full collections and the CPU time it spent.
 *
 * The CPU and memory bounds are generous (the process also runs the clients and the upstream): each
 * is far below what the unprotected behaviour costs (a quadratic parse of a 64 KiB header: seconds
 * of CPU; a flood read before the 101: everything the client sends, kept).
 *
 * `WSP_LOG_BOUNDS=1` prints the measured values next to each test (see handshake-rig.ts).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { binaryFrame, textFrame, validateClientRequest } from '../../src/index.js';
import { settle, waitFor, wire } from '../helpers/sockets.js';
import { RawPeer } from '../helpers/proxy-peers.js';
import { releaseAll } from '../proxy/rig.js';
import {
  MiB,
  type RawClient,
  allClosed,
  logBounds,
  measured,
  rawClient,
  rawUpstream,
  readFrames,
  retained,
  startFront,
  switchingProtocols,
  upgradeRequest,
  wsUpstream,
} from './handshake-rig.js';

const KINDS = ['bare', 'server'] as const;

/** A client frame: masked, as RFC 6455 section 5.3 requires of a client. */
function masked(...frames: Parameters<typeof wire>[0]): Buffer {
  return wire(frames, randomBytes(4));
}

/** Waits for the client's response head and returns its status. */
async function statusOf(client: RawClient): Promise<number> {
  return (await client.head).status;
}

describe('adversarial: handshake requests', () => {
  afterEach(releaseAll);

  describe('validateClientRequest with perMessageDeflate: malformed 64 KiB Sec-WebSocket-Extensions', () => {
    const N = 64 * 1024;
    const headers = [
      'a,'.repeat(N / 2),
      `permessage-deflate;${' '.repeat(N)}x`,
      `permessage-deflate; client_max_window_bits="${'1'.repeat(N)}`,
      `${'permessage-deflate; client_max_window_bits, '.repeat(1500)}permessage-deflate; mystery`,
    ];
    for (const header of headers) {
      it(`${JSON.stringify(header.slice(0, 24))}...: 400 in bounded CPU, and ignored without the option`, () => {
        const req = {
          method: 'GET', httpVersion: '1.1', httpVersionMajor: 1, httpVersionMinor: 1,
          headers: {
            host: '127.0.0.1', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13',
            'sec-websocket-key': randomBytes(16).toString('base64'), 'sec-websocket-extensions': header,
          },
        } as unknown as IncomingMessage;
        const cpu = process.cpuUsage();
        const check = validateClientRequest(req, { perMessageDeflate: true });
        const used = process.cpuUsage(cpu);
        expect(check).to.include({ ok: false, statusCode: 400 });
        expect((check as { reason: string }).reason).to.match(/^invalid Sec-WebSocket-Extensions header: /);
        expect((used.user + used.system) / 1000).to.be.below(200);
        expect(validateClientRequest(req).ok).to.equal(true);
      });
    }
  });

  for (const kind of KINDS) {
    describe(`through ${kind === 'bare' ? 'a bare WebSocketProxy' : 'createProxyServer'}`, () => {
      it('slowloris: requests trickled a byte at a time are cut at the headers deadline, the upstream never contacted', async () => {
        const upstream = await wsUpstream();
        // Node's own check (headersTimeout, run every connectionsCheckingInterval) uses its internal
        // timers and clock, which fake timers do not drive: a short real deadline instead.
        const front = await startFront(kind, upstream.url, {
          http: { headersTimeout: 300, requestTimeout: 300, connectionsCheckingInterval: 100 },
          server: { handshakeTimeout: 300 },
        });
        const timers: NodeJS.Timeout[] = [];
        const { result: clients, heapGrowth, cpuMs } = await measured(async () => {
          const clients: RawClient[] = [];
          for (let i = 0; i < 50; i++) {
            const client = rawClient(front.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
            // One byte every 20 ms, for ever: the request head never ends.
            const timer = setInterval(() => {
              if (!client.socket.destroyed) client.socket.write('a');
            }, 20);
            timers.push(timer);
            void client.closed.then(() => clearInterval(timer));
            clients.push(client);
          }
          try {
            await allClosed(clients, 8000);
          } finally {
            for (const timer of timers) clearInterval(timer);
          }
          return clients;
        });
        for (const client of clients) expect(await statusOf(client)).to.equal(408);
        expect(upstream.connections()).to.equal(0);
        expect(front.failures).to.deep.equal([]);
        expect(heapGrowth).to.be.below(2 * MiB);
        expect(cpuMs).to.be.below(2000);
      });

      it('2000 short headers (14.3 KiB): accepted, at most 100 forwarded, and the upstream still completes the handshake', async () => {
        const upstream = await wsUpstream();
        const front = await startFront(kind, upstream.url);
        const junk: string[] = [];
        for (let i = 0; i < 2000; i++) junk.push(`h${i.toString(36)}:1`);
        const request = upgradeRequest(junk);
        expect(request.length).to.be.within(14 * 1024, 16 * 1024);
        const { result: client, heapGrowth, cpuMs } = await measured(async () => {
          const client = rawClient(front.port, request);
          expect(await statusOf(client)).to.equal(101);
          client.socket.write(masked(textFrame('still a websocket')));
          await waitFor(() => readFrames(client.rest()).length === 1);
          return client;
        });
        expect(readFrames(client.rest())[0]!.payload.toString()).to.equal('still a websocket');
        expect(upstream.refused).to.deep.equal([]);
        const forwarded = upstream.requests[0]!.rawHeaders.length / 2;
        logBounds({ forwarded });
        // 100 of the client's, the handshake's own (Host, Upgrade, Connection, key, version,
        // extensions) and X-Forwarded-For, -Proto, -Host.
        expect(forwarded).to.be.within(100, 112);
        expect(upstream.requests[0]!.rawHeaders.slice(0, 10).filter((_, i) => i % 2 === 0))
          .to.deep.equal(['Host', 'Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version']);
        expect(heapGrowth).to.be.below(4 * MiB);
        expect(cpuMs).to.be.below(2000);
      });

      describe('64 KiB Sec-WebSocket-Protocol and Sec-WebSocket-Extensions (maxHeaderSize raised to 80 KiB)', () => {
        const N = 64 * 1024;
        const distinct: string[] = [];
        for (let i = 0, length = 0; length < N; i++) {
          distinct.push(`p${i}`);
          length += `p${i}, `.length;
        }
        // contacts: TCP connections the upstream gets. A malformed Sec-WebSocket-Extensions is
        // refused before the upstream is contacted: connect() checks the request with the deflate
        // setting it will answer with (validateClientRequest's perMessageDeflate option).
        const cases: { name: string; header: string; status: number; contacts: number }[] = [
          // CVE-2021-32640: `split(/ *, */)` over a run of spaces with no comma was quadratic.
          { name: 'a run of spaces inside one protocol', header: `Sec-WebSocket-Protocol: b${' '.repeat(N)}x`, status: 400, contacts: 0 },
          { name: '"a," x 32768 (a repeated protocol)', header: `Sec-WebSocket-Protocol: ${'a,'.repeat(N / 2)}`, status: 400, contacts: 0 },
          { name: '", " x 32768 then one protocol', header: `Sec-WebSocket-Protocol: ${', '.repeat(N / 2)}chat`, status: 101, contacts: 1 },
          { name: 'tabs and commas around a non-token', header: `Sec-WebSocket-Protocol: ${' \t,'.repeat(N / 3)}"q"`, status: 400, contacts: 0 },
          // Forwarded as offered: the upstream (16 KiB of headers) answers 431, relayed as is.
          { name: `${distinct.length} distinct protocols`, header: `Sec-WebSocket-Protocol: ${distinct.join(', ')}`, status: 431, contacts: 1 },
          { name: '"a, " x 21845 then "b" as extensions', header: `Sec-WebSocket-Extensions: ${'a, '.repeat(N / 3)}b`, status: 101, contacts: 1 },
          {
            name: '1500 permessage-deflate offers',
            header: `Sec-WebSocket-Extensions: ${'permessage-deflate; client_max_window_bits, '.repeat(1500)}permessage-deflate`,
            status: 101,
            contacts: 1,
          },
          { name: '"a," x 32768 as extensions', header: `Sec-WebSocket-Extensions: ${'a,'.repeat(N / 2)}`, status: 400, contacts: 0 },
          { name: 'a run of spaces inside an offer', header: `Sec-WebSocket-Extensions: permessage-deflate;${' '.repeat(N)}x`, status: 400, contacts: 0 },
          {
            name: 'a 64 KiB quoted parameter value',
            header: `Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits="${'1'.repeat(N)}`,
            status: 400,
            contacts: 0,
          },
        ];
        it('each is answered with its status in bounded CPU; the upstream is reached only as listed', async () => {
          const before = await retained();
          for (const { name, header, status, contacts } of cases) {
            const upstream = await wsUpstream();
            const front = await startFront(kind, upstream.url, {
              http: { maxHeaderSize: 80 * 1024 },
              server: { maxHeaderSize: 80 * 1024 },
            });
            const request = upgradeRequest([header]);
            expect(request.length, name).to.be.above(N);
            const cpu = process.cpuUsage();
            const client = rawClient(front.port, request);
            const answered = await statusOf(client);
            const used = process.cpuUsage(cpu);
            client.socket.destroy();
            logBounds({ cpuMs: (used.user + used.system) / 1000 });
            expect(answered, name).to.equal(status);
            expect(upstream.connections(), name).to.equal(contacts);
            // A linear parse of 64 KiB takes a millisecond or so; a quadratic one, seconds.
            expect((used.user + used.system) / 1000, name).to.be.below(500);
          }
          await releaseAll();
          const growth = (await retained()) - before;
          logBounds({ heapGrowth: growth });
          expect(growth).to.be.below(2 * MiB);
        });
      });

      describe('invalid Sec-WebSocket-Key', () => {
        const keys: [string, string][] = [
          ['4 bytes', 'AAAAAA=='],
          ['17 bytes', randomBytes(17).toString('base64')],
          ['not base64', '!!!!!!!!!!!!!!!!!!!!!!=='],
          ['no padding', 'AAAAAAAAAAAAAAAAAAAAAA'],
          ['16 bytes, not canonical base64', 'AAAAAAAAAAAAAAAAAAAAAB=='],
          ['two keys', `${randomBytes(16).toString('base64')}, ${randomBytes(16).toString('base64')}`],
          ['4 KiB', 'A'.repeat(4096)],
        ];
        for (const [name, key] of keys) {
          it(`${name}: 400, the upstream never contacted`, async () => {
            const upstream = await wsUpstream();
            const front = await startFront(kind, upstream.url);
            const client = rawClient(front.port, upgradeRequest([], { key }));
            expect(await statusOf(client)).to.equal(400);
            await client.closed;
            expect(upstream.connections()).to.equal(0);
            expect(front.failures.map((f) => f.status)).to.deep.equal([400]);
          });
        }
        it('no key at all: 400, the upstream never contacted', async () => {
          const upstream = await wsUpstream();
          const front = await startFront(kind, upstream.url);
          const request = upgradeRequest().replace(/Sec-WebSocket-Key: [^\r]*\r\n/, '');
          const client = rawClient(front.port, request);
          expect(await statusOf(client)).to.equal(400);
          expect(upstream.connections()).to.equal(0);
        });
      });

      it('HTTP/1.0 upgrade request: 400 ("HTTP/1.1 or higher", RFC 6455 section 4.1), the upstream never contacted', async () => {
        const upstream = await wsUpstream();
        const front = await startFront(kind, upstream.url);
        const client = rawClient(front.port, upgradeRequest([], { version: '1.0' }));
        expect(await statusOf(client)).to.equal(400);
        await client.closed;
        expect(upstream.connections()).to.equal(0);
        expect(front.failures.map((f) => f.status)).to.deep.equal([400]);
      });

      for (const aggregateFragments of [false, true]) {
        describe(`pipelined bytes after the request (aggregateFragments ${aggregateFragments})`, () => {
          it('frames in the same TCP write as the request are relayed after the 101, in order', async () => {
            const upstream = await wsUpstream();
            const front = await startFront(kind, upstream.url, { proxy: { aggregateFragments } });
            const early = masked(
              textFrame('early-1'),
              textFrame('frag-', false),
              { type: 'continuation', fin: true, rsv1: false, payload: Buffer.from('ment') },
              binaryFrame(Buffer.from([1, 2, 3])),
              textFrame('early-2'),
            );
            const client = rawClient(front.port, upgradeRequest(), early);
            expect(await statusOf(client)).to.equal(101);
            client.socket.write(masked(textFrame('late')));
            await waitFor(() => readFrames(client.rest()).length === 5);
            expect(upstream.messages).to.deep.equal(['early-1', 'frag-ment', Buffer.from([1, 2, 3]), 'early-2', 'late']);
            const echoed = readFrames(client.rest()).map((f) => (f.opcode === 2 ? [...f.payload] : f.payload.toString()));
            expect(echoed).to.deep.equal(['early-1', 'frag-ment', [1, 2, 3], 'early-2', 'late']);
          });

          it('a flood before the upstream answers: the proxy reads at most ~64 KiB of it, then relays all of it in order', async () => {
            const upstream = await rawUpstream();
            const front = await startFront(kind, upstream.url, { proxy: { aggregateFragments }, keepSockets: true });
            const before = await retained();
            const cpu = process.cpuUsage();
            const client = rawClient(front.port, upgradeRequest());
            await waitFor(() => upstream.waiting.length === 1);
            // 16 KiB binary frames numbered in their first 4 bytes, written while the socket takes
            // them, until it stops taking them (the proxy stopped reading) or 32 MiB were written.
            const payload = Buffer.alloc(16 * 1024, 7);
            let sent = 0;
            let written = 0;
            while (written < 32 * MiB) {
              payload.writeUInt32BE(sent);
              const bytes = masked(binaryFrame(payload));
              sent++;
              written += bytes.length;
              if (client.socket.write(bytes)) continue;
              const drained = await Promise.race([
                once(client.socket, 'drain').then(() => true),
                settle(150).then(() => false),
              ]);
              if (!drained) break;
            }
            const used = process.cpuUsage(cpu);
            const proxySide = front.sockets[0] as net.Socket;
            const growth = (await retained()) - before;
            logBounds({ written, bytesRead: proxySide.bytesRead, heapGrowth: growth, cpuMs: (used.user + used.system) / 1000 });
            expect(written).to.be.below(32 * MiB, 'the client could write everything: nobody stopped reading');
            expect(proxySide.bytesRead).to.be.below(256 * 1024);
            expect(growth).to.be.below(4 * MiB);
            expect((used.user + used.system) / 1000).to.be.below(2000);

            const { req, socket, head } = upstream.waiting[0]!;
            socket.write(switchingProtocols(req));
            const peer = new RawPeer(socket, head, 'server');
            expect(await statusOf(client)).to.equal(101);
            await waitFor(() => peer.frames.length === sent);
            expect(peer.frames.map((f) => f.payload.readUInt32BE(0))).to.deep.equal([...Array(sent).keys()]);
          });
        });
      }
    });
  }
});
