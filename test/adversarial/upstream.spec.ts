/**
 * Adversarial upstreams (issue 10, section 2, "Readers and upstreams" and "Load"): an upstream that
 * accepts TCP and never answers, one that answers 101 with a bad `Sec-WebSocket-Accept`, one that
 * sends frames in the same packet as its 101, and many concurrent handshakes to an upstream nobody
 * listens on. Each goes through a bare `WebSocketProxy` on a Node HTTP server and through
 * `createProxyServer`, and asserts the status the client gets, the code the proxy reports, what
 * the process retains after full collections, its CPU time, and that the upstream's sockets and
 * the process's handles are released.
 *
 * `WSP_LOG_BOUNDS=1` prints the measured values next to each test (see handshake-rig.ts).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { acceptKey, settle, waitFor, wire } from '../helpers/sockets.js';
import { binaryFrame, textFrame, continuationFrame, pingFrame } from '../../src/index.js';
import { freePort } from '../handshake/helpers.js';
import { fakeTimers, releaseAll } from '../proxy/rig.js';
import {
  MiB,
  type RawClient,
  type WireFrame,
  activeResources,
  logBounds,
  allClosed,
  measured,
  rawClient,
  rawUpstream,
  readFrames,
  startFront,
  switchingProtocols,
  upgradeRequest,
} from './handshake-rig.js';

const KINDS = ['bare', 'server'] as const;

/** Messages of a frame sequence: data frames joined up to FIN (text as string, binary as bytes), controls as `ping:<payload>`. */
function messages(frames: readonly WireFrame[]): (string | number[])[] {
  const out: (string | number[])[] = [];
  let parts: Buffer[] = [];
  let opcode = 0;
  for (const frame of frames) {
    if (frame.opcode >= 8) {
      out.push(`ping:${frame.payload.toString()}`);
      continue;
    }
    if (frame.opcode !== 0) opcode = frame.opcode;
    parts.push(frame.payload);
    if (!frame.fin) continue;
    const data = Buffer.concat(parts);
    out.push(opcode === 2 ? [...data] : data.toString());
    parts = [];
  }
  return out;
}

describe('adversarial: upstreams', () => {
  afterEach(releaseAll);

  for (const kind of KINDS) {
    describe(`through ${kind === 'bare' ? 'a bare WebSocketProxy' : 'createProxyServer'}`, () => {
      it('an upstream that accepts TCP and never answers: every client gets 504 at connectTimeout, the upstream sockets are closed', async () => {
        const upstream = await rawUpstream();
        const front = await startFront(kind, upstream.url, { proxy: { connectTimeout: 5000 } });
        const { result: clients, heapGrowth, cpuMs } = await measured(async () => {
          const clock = fakeTimers();
          const clients: RawClient[] = [];
          let answered = 0;
          for (let i = 0; i < 20; i++) {
            const client = rawClient(front.port, upgradeRequest());
            void client.head.then(() => answered++);
            clients.push(client);
          }
          await waitFor(() => upstream.waiting.length === 20);
          await clock.tickAsync(4999);
          await settle(20);
          expect(answered).to.equal(0);
          await clock.tickAsync(1);
          await allClosed(clients);
          await waitFor(() => upstream.open() === 0);
          return clients;
        });
        for (const client of clients) expect((await client.head).status).to.equal(504);
        expect(front.failures).to.have.length(20);
        for (const failure of front.failures) {
          expect(failure.status).to.equal(504);
          if (kind === 'bare') expect(failure.code).to.equal('WSP_ERR_UPSTREAM_TIMEOUT');
          else expect(failure.reason).to.match(/^upstream handshake timed out: /);
        }
        expect(heapGrowth).to.be.below(2 * MiB);
        expect(cpuMs).to.be.below(2000);
      });

      const bad: [string, (key: string) => string][] = [
        ['a wrong Sec-WebSocket-Accept', () => randomBytes(20).toString('base64')],
        ['the accept of another key', () => acceptKey(randomBytes(16).toString('base64'))],
        ['the key echoed as the accept', (key) => key],
      ];
      for (const [name, accept] of bad) {
        it(`a 101 with ${name}: 502, WSP_ERR_UPSTREAM_HANDSHAKE, the upstream socket closed`, async () => {
          const upstream = await rawUpstream((req, socket) => {
            socket.write(switchingProtocols(req, accept(String(req.headers['sec-websocket-key']))));
            // A frame right behind it must not reach the client.
            socket.write(wire([textFrame('must not be relayed')]));
          });
          const front = await startFront(kind, upstream.url);
          const { result: client, heapGrowth, cpuMs } = await measured(async () => {
            const client = rawClient(front.port, upgradeRequest());
            await client.closed;
            await waitFor(() => upstream.open() === 0);
            return client;
          });
          expect((await client.head).status).to.equal(502);
          expect(client.rest().toString()).to.equal('Bad Gateway');
          expect(front.failures).to.have.length(1);
          expect(front.failures[0]!.status).to.equal(502);
          if (kind === 'bare') expect(front.failures[0]!.code).to.equal('WSP_ERR_UPSTREAM_HANDSHAKE');
          else expect(front.failures[0]!.reason).to.match(/^invalid upstream handshake response: Sec-WebSocket-Accept /);
          expect(heapGrowth).to.be.below(1 * MiB);
          expect(cpuMs).to.be.below(1000);
        });
      }

      for (const aggregateFragments of [false, true]) {
        it(`frames in the same packet as the 101 reach the client after its 101, in order (aggregateFragments ${aggregateFragments})`, async () => {
          const upstream = await rawUpstream((req, socket) => {
            // One write: the 101 head and, behind it, frames the proxy reads with it.
            socket.write(Buffer.concat([
              Buffer.from(switchingProtocols(req), 'latin1'),
              wire([
                textFrame('first'),
                textFrame('sec', false),
                pingFrame('in between'),
                continuationFrame('ond'),
                binaryFrame(Buffer.from([1, 2, 3])),
                textFrame('last'),
              ]),
            ]));
          });
          const front = await startFront(kind, upstream.url, { proxy: { aggregateFragments } });
          const { result: received, heapGrowth, cpuMs } = await measured(async () => {
            const client = rawClient(front.port, upgradeRequest());
            expect((await client.head).status).to.equal(101);
            await waitFor(() => messages(readFrames(client.rest())).length === 5);
            return readFrames(client.rest());
          });
          expect(messages(received)).to.deep.equal(['first', 'ping:in between', 'second', [1, 2, 3], 'last']);
          // Without aggregation the fragments are relayed as they came; with it, as one frame.
          expect(received.map((f) => f.opcode)).to.deep.equal(aggregateFragments ? [1, 9, 1, 2, 1] : [1, 1, 9, 0, 2, 1]);
          expect(heapGrowth).to.be.below(1 * MiB);
          expect(cpuMs).to.be.below(1000);
        });
      }

      it('500 concurrent handshakes to an upstream nobody listens on: all answered 502, memory bounded, handles back to baseline', async () => {
        const port = await freePort();
        const front = await startFront(kind, `ws://127.0.0.1:${port}/`);
        // A first round compiles the code paths: their bytecode stays in the heap, not the attack's
        // cost. (Node's free list of HTTP parsers, up to 1000 kept for reuse, still grows with the
        // attack's concurrency: a few hundred KiB of the growth below.)
        const warm = Array.from({ length: 50 }, () => rawClient(front.port, upgradeRequest()));
        await allClosed(warm);
        front.failures.length = 0;
        await settle(20);
        const handles = activeResources();
        let peak = 0;
        const { result: outcome, heapGrowth, cpuMs } = await measured(async () => {
          const base = process.memoryUsage();
          const clients: RawClient[] = [];
          for (let i = 0; i < 500; i++) clients.push(rawClient(front.port, upgradeRequest()));
          await waitFor(() => {
            const now = process.memoryUsage();
            peak = Math.max(peak, now.heapUsed + now.arrayBuffers - base.heapUsed - base.arrayBuffers);
            return clients.every((client) => client.isClosed());
          }, 15_000);
          // Only these are kept: the test's own records must not count as retained.
          const statuses = await Promise.all(clients.map(async (client) => (await client.head).status));
          const failures = front.failures.splice(0).map((f) => `${f.status} ${f.code ?? ''}`);
          return { statuses, failures: new Set(failures), count: failures.length };
        });
        expect(outcome.statuses.filter((status) => status !== 502)).to.deep.equal([]);
        expect(outcome.count).to.equal(500);
        expect(outcome.failures).to.deep.equal(new Set([kind === 'bare' ? '502 WSP_ERR_UPSTREAM_UNREACHABLE' : '502 ']));
        // Sockets close a few turns after their last byte: wait (bounded), then assert.
        await waitFor(() => activeResources() <= handles, 5000).catch(() => undefined);
        expect(activeResources(), JSON.stringify(process.getActiveResourcesInfo())).to.be.at.most(handles);
        // Under 2 KiB retained per refused handshake (the front's own record of each failure
        // included); the peak (garbage included) under 100 KiB each.
        logBounds({ peak });
        expect(heapGrowth).to.be.below(1 * MiB);
        expect(peak).to.be.below(50 * MiB);
        expect(cpuMs).to.be.below(5000);
      });
    });
  }
});

