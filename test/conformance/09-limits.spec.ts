/**
 * Conformance group 9, limits and performance, lite (after Autobahn 9.x): large messages in one frame
 * or in fragments, a large frame streamed in chops, and 1000 small messages in a row. Nothing is timed;
 * only outcomes are asserted.
 *
 * The proxy has limits `ws` (maxPayload 100 MiB) does not: a client frame is at most
 * `clientMaxFrameSize` (default 1 MiB, exactly the limit passes), a client message at most
 * `clientMaxFragments` fragments (16384), and with `aggregateFragments: true` the frame limit applies
 * to the whole message. Over a limit the client is sent 1009 and the upstream 1001 (the issue's
 * "Limits" rule), where `ws` echoes: allowances with the proxy's documented outcome. `ws` 8.23 has a
 * fragment limit of its own (maxFragments, 16384, answered with 1008 "policy violation").
 */
import { type Allowance, type ConformanceCase, binary, conformanceGroup, fragments, payload, text, wire } from './runner.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const TOO_LARGE: Allowance = {
  why: 'one frame over clientMaxFrameSize (1 MiB by default): the proxy closes the client with 1009 and the upstream with 1001',
  expect: { events: [], close: 1009 },
};
const MESSAGE_TOO_LARGE: Allowance = {
  why: 'aggregateFragments: true applies clientMaxFrameSize (1 MiB) to the whole message: 1009 to the client, 1001 to the upstream',
  expect: { events: [], close: 1009 },
};
const TOO_MANY_FRAGMENTS: Allowance = {
  why: 'more than clientMaxFragments (16384) fragments in one message, with or without aggregation: the proxy sends 1009 to the client (every limit is 1009 in the issue), 1001 to the upstream; ws (8.23, maxFragments 16384) closes with 1008',
  expect: { events: [], close: 1009 },
};

function single(id: string, kind: 'text' | 'binary', size: number, allow?: Allowance): ConformanceCase {
  const data = payload(size, kind);
  return {
    id,
    title: `${kind} message of ${size / KiB} KiB in one frame`,
    async play(client) {
      client.send(wire({ type: kind, fin: true, rsv1: false, payload: data }));
      await client.awaitMessages(1);
    },
    expect: { events: [kind === 'text' ? text(data) : binary(data)], close: 1000 },
    ...(allow === undefined ? {} : { allow: { proxied: allow, aggregated: allow } }),
  };
}

function fragmented(id: string, kind: 'text' | 'binary', size: number, fragmentSize: number, aggregatedAllow?: Allowance): ConformanceCase {
  const data = payload(size, kind);
  const parts = Array.from({ length: Math.ceil(size / fragmentSize) }, (_, i) => data.subarray(i * fragmentSize, (i + 1) * fragmentSize));
  return {
    id,
    title: `${kind} message of ${size / KiB} KiB in ${parts.length} fragments of ${fragmentSize / KiB} KiB`,
    async play(client) {
      client.send(...fragments(kind, parts));
      await client.awaitMessages(1);
    },
    expect: { events: [kind === 'text' ? text(data) : binary(data)], close: 1000 },
    ...(aggregatedAllow === undefined ? {} : { allow: { aggregated: aggregatedAllow } }),
  };
}

function many(id: string, kind: 'text' | 'binary', count: number, size: number): ConformanceCase {
  const messages = Array.from({ length: count }, (_, i) => {
    const data = payload(size, kind);
    data.write(String(i).padStart(6, '0'), 0, 'latin1');
    return data;
  });
  return {
    id,
    title: `${count} ${kind} messages of ${size} bytes in a row`,
    async play(client) {
      client.send(...messages.map((data) => wire({ type: kind, fin: true, rsv1: false, payload: data })));
      await client.awaitMessages(count);
    },
    expect: { events: messages.map((data) => (kind === 'text' ? text(data) : binary(data))), close: 1000 },
  };
}

const roundTrips = Array.from({ length: 300 }, (_, i) => Buffer.from(`round trip ${i}`));
const streamed = payload(MiB, 'text');
const fragments16385 = payload(16385, 'binary');

const cases: ConformanceCase[] = [
  single('9.1.1', 'text', 64 * KiB),
  single('9.1.2', 'text', 256 * KiB),
  single('9.1.3', 'text', MiB),
  single('9.1.4', 'text', 4 * MiB, TOO_LARGE),
  single('9.2.1', 'binary', 64 * KiB),
  single('9.2.2', 'binary', 256 * KiB),
  single('9.2.3', 'binary', MiB),
  single('9.2.4', 'binary', 4 * MiB, TOO_LARGE),
  fragmented('9.3.1', 'text', 4 * MiB, 64 * KiB, MESSAGE_TOO_LARGE),
  fragmented('9.3.2', 'text', MiB, 4 * KiB),
  fragmented('9.4.1', 'binary', 4 * MiB, MiB, MESSAGE_TOO_LARGE),
  fragmented('9.4.2', 'binary', MiB, 256 * KiB),
  {
    id: '9.5.1',
    title: 'text message of 1 MiB in one frame, sent in 64 KiB chops',
    async play(client) {
      await client.sendChopped(wire({ type: 'text', fin: true, rsv1: false, payload: streamed }), 64 * KiB);
      await client.awaitMessages(1);
    },
    expect: { events: [text(streamed)], close: 1000 },
  },
  {
    id: '9.6.1',
    title: 'binary message in 16385 fragments of 1 byte',
    async play(client) {
      client.send(...fragments('binary', Array.from(fragments16385, (_, i) => fragments16385.subarray(i, i + 1))));
      await client.awaitMessages(1);
    },
    // ws 8.23 has the same fragment limit (maxFragments: 16384) and closes with 1008.
    expect: { events: [], close: 1008 },
    allow: { proxied: TOO_MANY_FRAGMENTS, aggregated: TOO_MANY_FRAGMENTS },
  },
  many('9.7.1', 'text', 1000, 64),
  many('9.7.2', 'binary', 1000, 64),
  many('9.7.3', 'text', 1000, 6),
  {
    id: '9.8.1',
    title: '300 round trips, one message in flight at a time',
    async play(client) {
      for (let i = 0; i < roundTrips.length; i++) {
        client.send(wire({ type: 'text', fin: true, rsv1: false, payload: roundTrips[i]! }));
        await client.awaitMessages(i + 1);
      }
    },
    expect: { events: roundTrips.map((data) => text(data)), close: 1000 },
  },
];

conformanceGroup('9 limits and performance (lite)', cases);
