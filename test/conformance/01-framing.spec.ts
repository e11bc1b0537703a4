/**
 * Conformance group 1, framing (after Autobahn 1.1 / 1.2): text and binary messages of every length
 * form boundary (7-bit, 16-bit, 64-bit), a few larger ones, sent in one write or streamed in small
 * chops, plus non-minimal length encodings (which a receiver accepts: RFC 6455 section 5.2 binds the
 * sender only).
 */
import { type ConformanceCase, OP, binary, conformanceGroup, payload, raw, text, wire } from './runner.js';

const LENGTHS = [0, 125, 126, 127, 128, 65535, 65536];

function echoCase(id: string, kind: 'text' | 'binary', length: number, chop?: number): ConformanceCase {
  const data = payload(length, kind);
  const frame = wire({ type: kind, fin: true, rsv1: false, payload: data });
  return {
    id,
    title: `${kind} message of ${length} bytes${chop === undefined ? '' : `, sent in chops of ${chop} bytes`}`,
    async play(client) {
      if (chop === undefined) client.send(frame);
      else await client.sendChopped(frame, chop);
      await client.awaitMessages(1);
    },
    expect: { events: [kind === 'text' ? text(data) : binary(data)], close: 1000 },
  };
}

const cases: ConformanceCase[] = [];
for (const [group, kind] of [['1.1', 'text'], ['1.2', 'binary']] as const) {
  LENGTHS.forEach((length, i) => cases.push(echoCase(`${group}.${i + 1}`, kind, length)));
  cases.push(echoCase(`${group}.8`, kind, 65536, 997));
  cases.push(echoCase(`${group}.9`, kind, 125, 1));
  cases.push(echoCase(`${group}.10`, kind, 200_000));
  cases.push(echoCase(`${group}.11`, kind, 1024 * 1024));
  cases.push(echoCase(`${group}.12`, kind, 300_000, 4093));
}

// Non-minimal length encodings: "the minimal number of bytes MUST be used" binds the sender; both ws
// and the proxy accept them, and the proxy re-encodes minimally.
const short = payload(5, 'text');
const medium = payload(200, 'binary');
cases.push(
  {
    id: '1.3.1',
    title: '5-byte text with a 16-bit length',
    async play(client) {
      client.send(raw({ opcode: OP.TEXT, payload: short, lengthForm: 16 }));
      await client.awaitMessages(1);
    },
    expect: { events: [text(short)], close: 1000 },
  },
  {
    id: '1.3.2',
    title: '200-byte binary with a 64-bit length',
    async play(client) {
      client.send(raw({ opcode: OP.BINARY, payload: medium, lengthForm: 64 }));
      await client.awaitMessages(1);
    },
    expect: { events: [binary(medium)], close: 1000 },
  },
  {
    id: '1.3.3',
    title: 'empty text with a 64-bit length, then a 5-byte binary with a 16-bit length',
    async play(client) {
      client.send(raw({ opcode: OP.TEXT, payload: '', lengthForm: 64 }), raw({ opcode: OP.BINARY, payload: short, lengthForm: 16 }));
      await client.awaitMessages(2);
    },
    expect: { events: [text(''), binary(short)], close: 1000 },
  },
  {
    id: '1.4.1',
    title: 'text and binary messages of every length boundary back to back in one write',
    async play(client) {
      client.send(...LENGTHS.flatMap((length) => [
        wire({ type: 'text', fin: true, rsv1: false, payload: payload(length, 'text') }),
        wire({ type: 'binary', fin: true, rsv1: false, payload: payload(length, 'binary') }),
      ]));
      await client.awaitMessages(LENGTHS.length * 2);
    },
    expect: { events: LENGTHS.flatMap((length) => [text(payload(length, 'text')), binary(payload(length, 'binary'))]), close: 1000 },
  },
);

conformanceGroup('1 framing', cases);
